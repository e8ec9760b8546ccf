"""Scaling sweeps: the summary table of a sweep's runs and a power-law fit of test bits/nt
against training compute on the compute frontier.

Compute is estimated per run as ``C = F * D``: D the tokens seen in training (run.json
``tokens_seen``) and F the training FLOPs per token of
:func:`dnalm.modeling.flops.training_flops_per_token`, ``6 N`` with N the non-embedding
parameters (forward and backward of the weights; Kaplan et al. 2020) plus the attention
score/value products, ``12 * n_layer * block_size * d_model`` (PaLM, appendix B). For the
tiny models of a CPU sweep the attention term is a large share of F, which is why it is kept.

The **compute frontier** is the runs that reach a lower test bits/nt than every run of
less or equal compute. Two fits of test bits/nt L against C are offered (``fit.form``):

* ``loglog`` (default): ``L = a * C^-b``, a straight line in log-log space (least squares on
  ln L); 2 parameters. Sound over a small compute range, and the only stable choice for the
  few points of a small sweep.
* ``offset``: ``L = a * C^-b + c``, a power law with an irreducible loss c (Hoffmann et al.
  2022); 3 parameters, nonlinear least squares (scipy.optimize.curve_fit).

Both are fitted with a centred log compute (conditioning), and a, b, c are reported with
standard errors from the covariance of the least-squares fit (scaled by the residual
variance; a by the delta method). A fit needs at least one point more than it has
parameters (3 for loglog, 4 for offset); with fewer, :func:`fit_power_law` refuses and the
table and the figure say ``no fit: N points``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.artifacts import METRICS_JSON, RUN_JSON, read_metrics, read_run_record
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write
from dnalm.modeling.flops import training_flops_per_token

FIT_PARAMS = {"loglog": ("a", "b"), "offset": ("a", "b", "c")}
FIT_POINTS = ("frontier", "all")

SUMMARY_COLUMNS = (
    "sweep", "model", "size", "preset", "n_layer", "n_head", "d_model", "budget",
    "budget_tokens", "seed", "params", "non_embedding_params", "steps", "tokens_seen",
    "flops_per_token", "flops", "train_seconds", "test_loss", "test_bits_per_nt", "baseline",
    "baseline_bits_per_nt", "on_frontier", "fit_bits_per_nt",
)  # fmt: skip


@dataclass
class PowerLawFit:
    """The result of :func:`fit_power_law`: `params`/`stderr` by name (a, b, and c for the
    offset form), or `refused` with the reason (then `params` is empty)."""

    form: str
    n_points: int
    params: dict[str, float] = field(default_factory=dict)
    stderr: dict[str, float] = field(default_factory=dict)
    refused: str | None = None

    @property
    def ok(self) -> bool:
        return self.refused is None

    def predict(self, compute: Any) -> np.ndarray:
        c = np.asarray(compute, dtype=float)
        if not self.ok:
            return np.full(c.shape, np.nan)
        p = self.params
        return p["a"] * c ** (-p["b"]) + p.get("c", 0.0)

    def formula(self) -> str:
        """'L = 3.1·C^-0.052 + 1.9' (or the reason there is no fit)."""
        if not self.ok:
            return str(self.refused)
        p, s = self.params, self.stderr
        text = f"L = {p['a']:.3g}·C^(−{p['b']:.3g} ± {s['b']:.2g})"
        if "c" in p:
            text += f" + {p['c']:.3g} ± {s['c']:.2g}"
        return text


def fit_power_law(compute: Sequence[float], loss: Sequence[float], form: str = "loglog"):
    """Fit ``L = a C^-b`` (form 'loglog') or ``L = a C^-b + c`` ('offset') to the points
    (compute, loss); refuse (PowerLawFit.refused) with fewer than parameters + 1 points or
    when the nonlinear fit does not converge."""
    if form not in FIT_PARAMS:
        raise ConfigError(f"fit form {form!r}: choose one of {', '.join(FIT_PARAMS)}")
    from scipy.optimize import curve_fit  # lazy: SciPy's optimizer loads only for the power-law fit

    c = np.asarray(compute, dtype=float)
    y = np.asarray(loss, dtype=float)
    keep = np.isfinite(c) & np.isfinite(y) & (c > 0) & (y > 0)
    c, y = c[keep], y[keep]
    n, k = len(c), len(FIT_PARAMS[form])
    result = PowerLawFit(form, n)
    if n < k + 1:
        result.refused = f"no fit: {n} points ({form} has {k} parameters, needs {k + 1})"
        return result
    x = np.log(c)
    m = float(x.mean())  # centred log compute: ln a = ln a' + b m
    if form == "loglog":
        # ln L = ln a' - b (x - m): linear least squares, covariance scaled by the residuals
        def model(xx, la, b):
            return la - b * (xx - m)

        p0 = [float(np.log(y).mean()), 0.05]
        target = np.log(y)
    else:

        def model(xx, la, b, cc):
            return np.exp(la - b * (xx - m)) + cc

        spread = float(y.max() - y.min()) or 1e-3
        p0 = [math.log(spread), 0.1, float(y.min()) - 0.5 * spread]
        target = y
    try:
        popt, pcov = curve_fit(model, x, target, p0=p0, maxfev=20000)
    except (RuntimeError, ValueError) as err:
        result.refused = f"no fit: {form} did not converge on {n} points ({err})"
        return result
    if not np.all(np.isfinite(pcov)):
        result.refused = f"no fit: {form} on {n} points has no finite uncertainty"
        return result
    la, b = float(popt[0]), float(popt[1])
    ln_a = la + b * m
    var_ln_a = pcov[0, 0] + m * m * pcov[1, 1] + 2 * m * pcov[0, 1]
    a = math.exp(ln_a)
    result.params = {"a": a, "b": b}
    result.stderr = {"a": a * math.sqrt(max(var_ln_a, 0.0)), "b": math.sqrt(pcov[1, 1])}
    if form == "offset":
        result.params["c"] = float(popt[2])
        result.stderr["c"] = math.sqrt(pcov[2, 2])
    return result


def compute_frontier(compute: Sequence[float], loss: Sequence[float]) -> np.ndarray:
    """Boolean mask of the frontier points: lower loss than every point of less or equal
    compute (ties in compute: the lowest loss only)."""
    c = np.asarray(compute, dtype=float)
    y = np.asarray(loss, dtype=float)
    on = np.zeros(len(c), dtype=bool)
    best = math.inf
    for i in np.lexsort((y, c)):  # by compute, then loss
        if np.isfinite(y[i]) and np.isfinite(c[i]) and y[i] < best:
            on[i] = True
            best = y[i]
    return on


def run_row(folder: str | os.PathLike, point: Mapping[str, Any]) -> dict[str, Any]:
    """One summary row from a model folder (run.json, metrics.json) and its grid point
    (sweep, model, size, budget, tokens, seed)."""
    folder = Path(folder)
    run = read_run_record(folder, "pretraining run record")
    metrics = read_metrics(folder, "pretraining test metrics")
    params = run.get("params") or {}
    arch = run.get("arch") or {}
    non_emb = params.get("non_embedding")
    if not isinstance(non_emb, int) or not arch:
        raise InputFormatError(f"{folder / RUN_JSON}: no params.non_embedding or arch")
    fpt = run.get("flops_per_token")
    if fpt is None:  # older run records
        fpt = training_flops_per_token(arch, non_emb, int(run["block_size"]))
    tokens = int(run.get("tokens_seen") or 0)
    model, base = metrics.get("model") or {}, metrics.get("baseline") or {}
    if model.get("bits_per_nt") is None:
        raise InputFormatError(f"{folder / METRICS_JSON}: no model.bits_per_nt")
    return {
        "sweep": point["sweep"],
        "model": point["model"],
        "size": point["size"],
        "preset": run.get("preset"),
        "n_layer": arch.get("n_layer"),
        "n_head": arch.get("n_head"),
        "d_model": arch.get("d_model"),
        "budget": point["budget"],
        "budget_tokens": point["tokens"],
        "seed": point.get("seed"),
        "params": params.get("total"),
        "non_embedding_params": non_emb,
        "steps": run.get("steps"),
        "tokens_seen": tokens,
        "flops_per_token": float(fpt),
        "flops": float(fpt) * tokens,
        "train_seconds": run.get("train_seconds"),
        "test_loss": model.get("loss"),
        "test_bits_per_nt": float(model["bits_per_nt"]),
        "baseline": base.get("name"),
        "baseline_bits_per_nt": base.get("bits_per_nt"),
    }


def sweep_summary(
    points: Sequence[Mapping[str, Any]],
    model_dirs: Mapping[str, str | os.PathLike],
    form: str = "loglog",
    fit_points: str = "frontier",
) -> tuple[pd.DataFrame, PowerLawFit]:
    """The summary table of a sweep (one row per run, SUMMARY_COLUMNS) and the fit of test
    bits/nt against FLOPs on the frontier (`fit_points` 'frontier') or on every run ('all')."""
    if fit_points not in FIT_POINTS:
        raise ConfigError(f"fit points {fit_points!r}: choose one of {', '.join(FIT_POINTS)}")
    if not points:
        raise ConfigError("a sweep without runs has nothing to summarise")
    rows = [run_row(model_dirs[p["model"]], p) for p in points]
    df = pd.DataFrame(rows)
    df["on_frontier"] = compute_frontier(df["flops"], df["test_bits_per_nt"])
    use = df["on_frontier"] if fit_points == "frontier" else np.ones(len(df), dtype=bool)
    fit = fit_power_law(df.loc[use, "flops"], df.loc[use, "test_bits_per_nt"], form)
    df["fit_bits_per_nt"] = fit.predict(df["flops"])
    return df[list(SUMMARY_COLUMNS)], fit


def fit_table(fit: PowerLawFit, fit_points: str, n_runs: int) -> pd.DataFrame:
    """The fit as rows (name, value, stderr): status, form, points, then a, b (and c)."""
    rows = [
        ("status", "fitted" if fit.ok else fit.refused, ""),
        ("form", "L = a*C^-b" if fit.form == "loglog" else "L = a*C^-b + c", ""),
        ("points", f"{fit.n_points} ({fit_points} of {n_runs} runs)", ""),
        ("formula", fit.formula(), ""),
    ]
    rows += [(k, f"{v:.6g}", f"{fit.stderr[k]:.3g}") for k, v in fit.params.items()]
    return pd.DataFrame(rows, columns=["name", "value", "stderr"])


def write_summary(df: pd.DataFrame, fit: PowerLawFit, fit_points: str, summary, fit_tsv):
    """summary.tsv and fit.tsv, each atomically."""
    with atomic_write(summary) as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    with atomic_write(fit_tsv) as fh:
        fit_table(fit, fit_points, len(df)).to_csv(fh, sep="\t", index=False)
