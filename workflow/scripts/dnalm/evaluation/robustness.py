"""The robustness panel: is a model's score of a sequence robust to what should not matter?

On a fixed, seeded set of test windows (:func:`choose_windows`: ``n_windows`` windows of
``window_nt`` nt from the held-out sequences of the model's corpus, each with room around it
for the shifts and phases below), a model's per-sequence score is its log-likelihood:
causal models the sum of log p(token | tokens before it) after [BOS], masked models the
pseudo-log-likelihood (:func:`dnalm.evaluation.inference.score_many`, the ``dnalm score``
path), in nats, divided by the window's length in nt (nats per nt). The panel
(:func:`panel`, one row per test and setting):

* ``rc``: the Pearson correlation of the scores of the windows and of their reverse
  complements, and the mean absolute difference (a model equivariant under reverse
  complement scores 1 and 0).
* ``shift`` s = 1..5 (``shifts``): the window moved s nt downstream: correlation with the
  unshifted scores and the mean absolute change.
* ``phase`` o = 0..k-1 (k-mer and codon tokenizers, k nt per token): the window started o nt
  later (same length), the mean score; ``length_mod`` r = 0..k-1: the window cut by r nt at
  its end, the mean score. Their spreads (largest minus smallest mean) are the rows
  ``phase_spread`` and ``length_spread``; ``flag`` is 1 on them when the spread exceeds
  ``phase_threshold`` nats per nt (default 0.02, about 1.5% of the 1.39 nats per nt of a
  uniform guess: the windows of two phases share all but a few nt, so their means differ by
  far less unless the tokenizer reads one phase worse, as a 6-mer tokenizer does with a
  length that is not a multiple of 6).
* ``indel`` d (``indel_distances``): one base deleted d nt downstream of the window's centre:
  the mean change of the window's total log-likelihood (nats; the deleted base's own term
  goes with it) and its mean absolute value.

Every row carries the mean and a 95% percentile bootstrap interval over windows
(:func:`dnalm.core.stats.bootstrap` for means; resampled windows for correlations).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, read_fasta
from dnalm.core.stats import accuracy_stats, bootstrap

log = logging.getLogger(__name__)

#: scores (total log-likelihood, nats) of sequences
Scorer = Callable[[Sequence[str]], np.ndarray]
COLUMNS = [
    "model",
    "test",
    "setting",
    "value",
    "ci95_low",
    "ci95_high",
    "mean_abs_change",
    "n_windows",
    "flag",
]


def check_settings(settings: Mapping) -> None:
    """ConfigErrors naming the robustness key at fault."""
    for key in ("n_windows", "window_nt"):
        if int(settings[key]) < 2:
            raise ConfigError(f"robustness.{key} must be >= 2, got {settings[key]}")
    half = int(settings["window_nt"]) // 2
    for s in settings["shifts"]:
        if int(s) < 1:
            raise ConfigError(f"robustness.shifts: {s} is not a shift of >= 1 nt")
    for d in settings["indel_distances"]:
        if not 0 <= int(d) < half:
            raise ConfigError(
                f"robustness.indel_distances: {d} is not within the half window (0..{half - 1} "
                f"nt from the centre of a {settings['window_nt']}-nt window); lower it or raise "
                "robustness.window_nt"
            )
    if float(settings["phase_threshold"]) <= 0:
        raise ConfigError(
            f"robustness.phase_threshold must be > 0 nats per nt, got {settings['phase_threshold']}"
        )


def pad_nt(settings: Mapping, k: int) -> int:
    """Room a window needs after it: the largest shift and phase."""
    return max([0, *(int(s) for s in settings["shifts"])]) + k


def choose_windows(
    paths: Sequence[str | os.PathLike], n: int, length: int, pad: int, seed: int
) -> list[str]:
    """`n` seeded windows of `length` + `pad` nt without N, one per held-out sequence long
    enough (fewer, with a warning, when fewer are); InputFormatError naming the files when
    none is."""
    seqs = [s.upper() for p in paths for _, s, _ in read_fasta(p)]
    need = length + pad
    rng = np.random.default_rng(seed)
    ok = [s for s in seqs if len(s) >= need]
    if not ok:
        raise InputFormatError(
            f"{', '.join(map(str, paths))}: no held-out sequence is {need} nt long "
            f"(window_nt {length} + {pad} for shifts and phases); lower robustness.window_nt"
        )
    out = []
    for i in rng.permutation(len(ok)):
        s = ok[i]
        start = int(rng.integers(0, len(s) - need + 1))
        w = s[start : start + need]
        if set(w) <= set("ACGT"):
            out.append(w)
        if len(out) == n:
            break
    if not out:
        raise InputFormatError(f"{', '.join(map(str, paths))}: every window holds a non-ACGT base")
    if len(out) < n:
        log.warning("%d windows (wanted %d): the test split is short", len(out), n)
    return out


def corr_interval(
    a: np.ndarray, b: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float, float]:
    """Pearson r of paired values and its percentile bootstrap interval over pairs."""

    def r(x, y):
        if np.std(x) == 0 or np.std(y) == 0:
            return math.nan
        return float(np.corrcoef(x, y)[0, 1])

    est = r(a, b)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(a), len(a))
        boots.append(r(a[i], b[i]))
    v = np.asarray(boots)
    v = v[np.isfinite(v)]
    if not len(v) or not math.isfinite(est):
        return est, math.nan, math.nan
    return est, float(np.quantile(v, 0.025)), float(np.quantile(v, 0.975))


def mean_interval(values: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    iv = bootstrap(accuracy_stats(np.asarray(values, float)), "accuracy", n_boot=n_boot, seed=seed)
    return iv.estimate, iv.low, iv.high


def panel(
    model: str,
    score: Scorer,
    windows: Sequence[str],
    settings: Mapping,
    k: int = 1,
    n_boot: int = 1000,
) -> pd.DataFrame:
    """The panel of one model (module docstring). `windows`: windows of ``window_nt`` plus
    :func:`pad_nt` nt; `k`: nt per token of the model's tokenizer (phase rows when k > 1)."""
    check_settings(settings)
    length = int(settings["window_nt"])
    seed = int(settings["seed"])
    threshold = float(settings["phase_threshold"])
    base = [w[:length] for w in windows]
    n = len(base)

    def per_nt(seqs):
        return np.asarray(score(seqs), float) / np.array([len(s) for s in seqs], float)

    ref = per_nt(base)
    rows = []

    def add(test, setting, est, lo, hi, change=math.nan, flag=0):
        rows.append(
            {
                "model": model,
                "test": test,
                "setting": setting,
                "value": est,
                "ci95_low": lo,
                "ci95_high": hi,
                "mean_abs_change": change,
                "n_windows": n,
                "flag": flag,
            }
        )

    rc = per_nt([reverse_complement(w) for w in base])
    add(
        "rc",
        "reverse_complement",
        *corr_interval(ref, rc, n_boot, seed),
        float(np.abs(rc - ref).mean()),
    )
    for s in settings["shifts"]:
        moved = per_nt([w[int(s) : int(s) + length] for w in windows])
        add(
            "shift",
            str(s),
            *corr_interval(ref, moved, n_boot, seed),
            float(np.abs(moved - ref).mean()),
        )
    if k > 1:
        spreads = {}
        for test, cut in (
            ("phase", lambda w, o: w[o : o + length]),
            ("length_mod", lambda w, r: w[: length - r]),
        ):
            means = []
            for o in range(k):
                vals = per_nt([cut(w, o) for w in windows])
                est, lo, hi = mean_interval(vals, n_boot, seed)
                means.append(est)
                add(test, str(o), est, lo, hi, float(np.abs(vals - ref).mean()))
            spreads[test] = max(means) - min(means)
        for test in ("phase", "length_mod"):
            spread = spreads[test]
            name = "phase_spread" if test == "phase" else "length_spread"
            add(name, f"k={k}", spread, math.nan, math.nan, flag=int(spread > threshold))
    totals = np.asarray(score(base), float)
    centre = length // 2
    for d in settings["indel_distances"]:
        at = centre + int(d)
        cut = [w[:at] + w[at + 1 :] for w in base]
        delta = np.asarray(score(cut), float) - totals
        add("indel", str(d), *mean_interval(delta, n_boot, seed), float(np.abs(delta).mean()))
    out = pd.DataFrame(rows, columns=COLUMNS)
    flagged = out[out["flag"] == 1]
    log.info(
        "%s: rc r %.4f, %d windows%s",
        model,
        out.loc[out["test"] == "rc", "value"].iloc[0],
        n,
        f"; phase flag on {list(flagged['test'])}" if len(flagged) else "",
    )
    return out


def write_panel(df: pd.DataFrame, out_tsv: str | os.PathLike) -> None:
    with atomic_write(out_tsv) as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")


def read_panel(path: str | os.PathLike) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(f"{path}: not a robustness panel (missing columns {missing})")
    return df


def lm_scorer(lm, eos: bool = True) -> Scorer:
    """Total log-likelihood (nats) of each sequence under a loaded model
    (:class:`dnalm.evaluation.inference.LoadedModel`), as ``dnalm score`` gives it: causal
    models [BOS] tokens [EOS] scored after [BOS]; masked models the pseudo-log-likelihood.
    `eos` False: no [EOS] (the sequence's own tokens only)."""
    from dnalm.evaluation.inference import score_many  # lazy: torch stays out of the DAG build

    def score(seqs: Sequence[str]) -> np.ndarray:
        ids = [lm.encode(s, name=f"window {i}", eos=eos) for i, s in enumerate(seqs)]
        return np.array([float(np.nansum(v)) for v in score_many(lm, ids)])

    return score
