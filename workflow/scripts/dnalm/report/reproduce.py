"""The reproduction table (config `reproduce.rows`): each published number beside ours.

Each row names a paper, a metric, the published number(s) and where our number comes from:

* ``source: pretrain`` — ``model`` (a ``pretrain.models`` entry; its seed replicates
  ``X``, ``X_seed{s}`` are folded) and ``value`` (``perplexity``, ``loss`` or
  ``bits_per_nt`` of the test split, from each replicate's ``metrics.json``). With
  ``baseline: NAME`` the row reports that count baseline of the model's test split instead
  (e.g. ``codon_trigram``; one number, no seeds). A model row is compared with the baseline
  named by ``compare_to`` (default: the strongest, ``metrics["baseline"]``): lower is
  better; ``beats_baseline`` says in how many seeds the model is below it, and the delta
  column is the seed mean of model minus baseline with its seed range (metrics.json holds
  no per-window losses, so there is no bootstrap here).
* ``source: finetune`` — ``task`` and ``run`` (a fine-tuning run or a baseline such as
  ``onehot_cnn``): its folded row of ``results/finetune/{task}/comparison.tsv`` (seed mean,
  sd, per-seed values) and the table's paired bootstrap 95% CI of its difference to the
  task's best baseline.
* ``source: probe`` — ``model`` and ``regime`` (``pretrained``, ``random-init``,
  ``fine-tuned``, ``external``, ``dnatext``; default pretrained): its accuracy in
  ``results/probe/probe_table.tsv``, compared with the k-mer frequency probe (the
  ``kmer-baseline`` row) by the difference of accuracies and its normal-approximation 95%
  CI for two independent proportions (conservative: both are scored on the same fragments).

A row without ``published`` is a control or an addition of ours that the paper never ran
(a random-weights control, another model on the paper's task): its published cell stays
empty in ``table.tsv`` and shows "—" in ``table.md``, so no paper number stands beside a
number the paper has no counterpart for.

Output: ``table.tsv`` (one row per config row; columns in :data:`COLUMNS`) and ``table.md``
(the same as a Markdown table; :func:`render_tsv` gives it again from a kept ``table.tsv``).
Published numbers are copied from the config; nothing here checks them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write

SOURCES = ("pretrain", "finetune", "probe")
PRETRAIN_VALUES = ("perplexity", "loss", "bits_per_nt")
PROBE_REGIMES = ("pretrained", "random-init", "fine-tuned", "external", "dnatext")
ROW_KEYS = {
    "pretrain": {"model", "value", "baseline", "compare_to"},
    "finetune": {"task", "run"},
    "probe": {"model", "regime"},
}
COMMON_KEYS = {"paper", "metric", "published", "source", "deviation", "note"}
COLUMNS = (
    "paper",
    "metric",
    "published",
    "ours",
    "ours_sd",
    "ours_per_seed",
    "n_seeds",
    "baseline",
    "baseline_value",
    "beats_baseline",
    "delta",
    "delta_ci95_low",
    "delta_ci95_high",
    "deviation",
)


def check_rows(rows: Any) -> list[dict[str, Any]]:
    """The `reproduce.rows` list, checked (ConfigError names the row and key)."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise ConfigError(f"reproduce.rows: must be a list of rows, got {rows!r}")
    out = []
    for i, row in enumerate(rows):
        where = f"reproduce.rows[{i}]"
        if not isinstance(row, Mapping):
            raise ConfigError(f"{where}: must be a mapping, got {row!r}")
        source = row.get("source")
        if source not in SOURCES:
            raise ConfigError(f"{where}.source: {source!r} is not one of {', '.join(SOURCES)}")
        unknown = sorted(set(row) - COMMON_KEYS - ROW_KEYS[source])
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {unknown} for source {source} "
                f"(known: {sorted(COMMON_KEYS | ROW_KEYS[source])})"
            )
        for key in ("paper", "metric"):
            if not isinstance(row.get(key), str) or not row[key]:
                raise ConfigError(f"{where}.{key}: required text")
        published = row.get("published")
        values = [] if published is None else published
        values = values if isinstance(values, list) else [values]
        # an empty list is no published number, as check_rows' own output gives it
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise ConfigError(
                f"{where}.published: a number or a list of numbers (leave it out for a "
                "control the paper never ran)"
            )
        needed = {"pretrain": ("model",), "finetune": ("task", "run"), "probe": ("model",)}
        for key in needed[source]:
            if not isinstance(row.get(key), str) or not row[key]:
                raise ConfigError(f"{where}.{key}: required for source {source}")
        clean = {**row, "published": [float(v) for v in values]}
        if source == "pretrain":
            clean.setdefault("value", "perplexity")
            if clean["value"] not in PRETRAIN_VALUES:
                raise ConfigError(
                    f"{where}.value: {clean['value']!r} is not one of {', '.join(PRETRAIN_VALUES)}"
                )
        if source == "probe":
            clean.setdefault("regime", "pretrained")
            if clean["regime"] not in PROBE_REGIMES:
                raise ConfigError(
                    f"{where}.regime: {clean['regime']!r} is not one of {', '.join(PROBE_REGIMES)}"
                )
        out.append(clean)
    return out


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{x:.{digits}g}"


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    sd = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    return float(arr.mean()), sd


def _read_json(path: str | os.PathLike) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InputFormatError(f"{path}: cannot read metrics ({err})") from None


def _baseline(metrics: Mapping[str, Any], name: str | None, path: str) -> dict[str, Any]:
    if name is None:
        return metrics["baseline"]
    for b in metrics.get("baselines") or [metrics["baseline"]]:
        if b["name"] == name:
            return b
    names = [b["name"] for b in metrics.get("baselines") or [metrics["baseline"]]]
    raise InputFormatError(f"{path}: no baseline {name!r} (baselines: {names})")


def pretrain_row(row: Mapping[str, Any], metric_files: Sequence[str]) -> dict[str, Any]:
    """Our number of a `source: pretrain` row from its replicates' metrics.json files."""
    value = row["value"]
    metrics = [_read_json(p) for p in metric_files]
    if row.get("baseline"):
        b = _baseline(metrics[0], row["baseline"], metric_files[0])
        return {"ours": b[value], "ours_per_seed": [b[value]], "n_seeds": 1}
    ours = [m["model"][value] for m in metrics]
    bases = [
        _baseline(m, row.get("compare_to"), p) for m, p in zip(metrics, metric_files, strict=True)
    ]
    deltas = [o - b[value] for o, b in zip(ours, bases, strict=True)]
    wins = sum(d < 0 for d in deltas)
    mean, sd = _mean_sd(ours)
    return {
        "ours": mean,
        "ours_sd": sd,
        "ours_per_seed": ours,
        "n_seeds": len(ours),
        "baseline": bases[0]["name"],
        "baseline_value": float(np.mean([b[value] for b in bases])),
        "beats_baseline": f"{'yes' if wins == len(deltas) else 'no'} ({wins}/{len(deltas)} "
        "seeds below; lower is better; range over seeds)",
        "delta": float(np.mean(deltas)),
        "delta_ci95_low": min(deltas),
        "delta_ci95_high": max(deltas),
    }


def finetune_row(row: Mapping[str, Any], comparison: str | os.PathLike) -> dict[str, Any]:
    """Our number of a `source: finetune` row from the task's comparison.tsv."""
    table = pd.read_csv(comparison, sep="\t")
    hit = table[table["run"] == row["run"]]
    if hit.empty:
        raise InputFormatError(
            f"{comparison}: no row {row['run']!r} (rows: {', '.join(map(str, table['run']))})"
        )
    r = hit.iloc[0]
    main = "accuracy" if "accuracy" in table.columns else "pearson_r"
    per_seed = [float(v) for v in str(r.get(f"{main}_per_seed", r[main])).split(";") if v]
    out = {
        "ours": float(r[main]),
        "ours_sd": float(r.get(f"{main}_sd", math.nan)),
        "ours_per_seed": per_seed,
        "n_seeds": int(r.get("n_seeds", len(per_seed))),
        "baseline": str(r.get("best_baseline", "")),
    }
    best = table[table["run"] == out["baseline"]]
    if len(best):
        out["baseline_value"] = float(best.iloc[0][main])
    if r["run"] == out["baseline"] or r.get("regime") == "baseline":
        out["beats_baseline"] = "(a baseline)"
        return out
    low, high = float(r["delta_ci95_low"]), float(r["delta_ci95_high"])
    verdict = "yes" if low > 0 else "no" if high < 0 else "not resolved"
    out.update(
        beats_baseline=f"{verdict} (paired bootstrap 95% CI of the difference)",
        delta=float(r["delta_vs_best_baseline"]),
        delta_ci95_low=low,
        delta_ci95_high=high,
    )
    return out


def probe_row(row: Mapping[str, Any], probe_table: str | os.PathLike) -> dict[str, Any]:
    """Our number of a `source: probe` row from probe_table.tsv."""
    table = pd.read_csv(probe_table, sep="\t")
    if "probe_kind" in table:  # the logistic-regression rows (probe.kinds adds others)
        table = table[table["probe_kind"].fillna("logreg") == "logreg"]
    hit = table[(table["model"] == row["model"]) & (table["regime"] == row["regime"])]
    if hit.empty:
        shown = ", ".join(
            f"{m} ({g})" for m, g in zip(table["model"], table["regime"], strict=True)
        )
        raise InputFormatError(
            f"{probe_table}: no row for model {row['model']!r}, regime {row['regime']!r} "
            f"(rows: {shown})"
        )
    r = hit.iloc[0]
    out = {"ours": float(r["accuracy"]), "ours_per_seed": [float(r["accuracy"])], "n_seeds": 1}
    base = table[table["regime"] == "kmer-baseline"]
    if base.empty:
        return out
    b = base.iloc[0]
    p1, p2, n1, n2 = float(r["accuracy"]), float(b["accuracy"]), int(r["n_test"]), int(b["n_test"])
    delta = p1 - p2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    low, high = delta - 1.96 * se, delta + 1.96 * se
    verdict = "yes" if low > 0 else "no" if high < 0 else "not resolved"
    out.update(
        baseline=str(b["model"]),
        baseline_value=p2,
        beats_baseline=f"{verdict} (normal-approximation 95% CI of the difference)",
        delta=delta,
        delta_ci95_low=low,
        delta_ci95_high=high,
    )
    return out


def build_table(
    rows: Sequence[Mapping[str, Any]],
    pretrain_metrics: Mapping[str, Sequence[str]],
    comparisons: Mapping[str, str],
    probe_table: str | None,
) -> pd.DataFrame:
    """The table: `pretrain_metrics` maps a model to its replicates' metrics.json paths,
    `comparisons` a task to its comparison.tsv."""
    out = []
    for row in check_rows(list(rows)):
        if row["source"] == "pretrain":
            ours = pretrain_row(row, pretrain_metrics[row["model"]])
        elif row["source"] == "finetune":
            ours = finetune_row(row, comparisons[row["task"]])
        else:
            if probe_table is None:
                raise InputFormatError("reproduce: a probe row needs the probe table")
            ours = probe_row(row, probe_table)
        out.append(
            {
                "paper": row["paper"],
                "metric": row["metric"],
                "published": "; ".join(_fmt(v) for v in row["published"]),
                "ours": ours["ours"],
                "ours_sd": ours.get("ours_sd", math.nan),
                "ours_per_seed": "; ".join(_fmt(v) for v in ours["ours_per_seed"]),
                "n_seeds": ours["n_seeds"],
                "baseline": ours.get("baseline", ""),
                "baseline_value": ours.get("baseline_value", math.nan),
                "beats_baseline": ours.get("beats_baseline", ""),
                "delta": ours.get("delta", math.nan),
                "delta_ci95_low": ours.get("delta_ci95_low", math.nan),
                "delta_ci95_high": ours.get("delta_ci95_high", math.nan),
                "deviation": " ".join(str(row.get("deviation", "")).split()),
            }
        )
    return pd.DataFrame(out, columns=list(COLUMNS))


def markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: ours as mean ± sd (n seeds) with the per-seed values, the
    difference to the baseline with its interval."""
    head = (
        "| paper | metric | published | ours (mean ± sd, per seed) | baseline "
        "| beats baseline (delta, 95% interval) | deviation from the paper |"
    )
    lines = [head, "|" + "---|" * 7]
    for r in table.itertuples():
        ours = _fmt(r.ours)
        if r.n_seeds > 1:
            ours += f" ± {_fmt(r.ours_sd, 2)} (n={r.n_seeds}: {r.ours_per_seed})"
        base = f"{r.baseline} {_fmt(r.baseline_value)}".strip()
        beats = r.beats_baseline
        if isinstance(r.delta, float) and math.isfinite(r.delta):
            beats += (
                f"; {_fmt(r.delta, 3)} [{_fmt(r.delta_ci95_low, 3)}, {_fmt(r.delta_ci95_high, 3)}]"
            )
        published = r.published if isinstance(r.published, str) and r.published else "—"
        cells = [r.paper, r.metric, published, ours, base, beats, r.deviation]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render_tsv(path: str | os.PathLike) -> str:
    """The Markdown table of a written ``table.tsv`` (the same text as its ``table.md``)."""
    text = ("paper", "metric", "published", "ours_per_seed", "baseline", "beats_baseline")
    table = pd.read_csv(path, sep="\t", dtype=dict.fromkeys((*text, "deviation"), str))
    return markdown(table.fillna(dict.fromkeys((*text, "deviation"), "")))


def write_table(table: pd.DataFrame, out_tsv: str | os.PathLike, out_md: str | os.PathLike) -> None:
    with atomic_write(out_tsv) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    with atomic_write(out_md) as fh:
        fh.write(markdown(table))
