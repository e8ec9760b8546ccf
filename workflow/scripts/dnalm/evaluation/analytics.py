"""Checkpoint analytics: does a cheap metric of a language model predict the ones users care
about?

The points are the kept checkpoints of one pretraining run (``pretrain.train.
keep_checkpoints``; dnalm.training.checkpoint.keep_weights), at most ``max_checkpoints`` of
them evenly spaced with the first and the last always in (:func:`pick`), or the final models
of the runs of a scaling sweep. At every point the same fixed, seeded sets are measured
(:func:`evaluate_points`):

* ``bits_per_nt`` (cheap): on ``n_windows`` windows of ``window_nt`` nt from the validation
  split of the run's corpus, the mean over windows of -log2 p(window) / nt: a causal model's
  log-likelihood of the window's tokens after [BOS], a masked model's pseudo-log-likelihood
  (the ``dnalm score`` path, :func:`dnalm.evaluation.robustness.lm_scorer`);
* ``rc_r`` (cheap): the Pearson correlation of the windows' log-likelihoods per nt with those
  of their reverse complements, the ``rc`` row of the robustness panel (1: the model scores
  both strands alike);
* ``probe_accuracy`` (downstream): the logistic-regression species probe
  (:func:`dnalm.evaluation.probe.fit_probe`, ``probe.cv_folds``) on the embeddings
  (``probe.layer``, ``probe.pooling``) of at most ``probe_per_class`` fragments per species
  from each of the train and test splits of the probe task: test accuracy;
* ``vep_auroc`` (downstream): the AUROC with which the zero-shot score of the variant-effect
  stage (log-likelihood ratio alt vs ref, ``vep.window``, ``vep.edge``, ``vep.rc_average``)
  separates ``vep_class`` SNVs (nonsense or missense) from synonymous ones, on at most
  ``n_variants`` of the stage's simulated SNVs (the AUROC of -score, as the vep table).

Each value carries a 95% percentile bootstrap interval over its items (windows, test
fragments, variants; variants resampled within class). :func:`correlations` then gives, for
each cheap metric against each downstream one, Spearman's rank correlation over the points
with a 95% percentile bootstrap interval over points (resamples where one side is constant
are dropped; NaN with fewer than 3 points). A negative rho of bits/nt with accuracy says that
a lower validation loss went with a better probe.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy import stats

from dnalm.core.alphabet import reverse_complement
from dnalm.core.artifacts import read_run_record
from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write
from dnalm.core.metrics import auroc
from dnalm.evaluation.robustness import choose_windows, corr_interval, lm_scorer, mean_interval
from dnalm.evaluation.variants import load_contigs, read_vcf

log = logging.getLogger(__name__)

#: metrics that cost little (validation loss and strand symmetry) and those users care about
CHEAP = ("bits_per_nt", "rc_r")
DOWNSTREAM = ("probe_accuracy", "vep_auroc")
METRICS = CHEAP + DOWNSTREAM
#: columns of the per-point table (each metric with its interval)
COLUMNS = [
    "run",
    "point",
    "step",
    *[c for m in METRICS for c in (m, f"{m}_ci95_low", f"{m}_ci95_high")],
    "n_windows",
    "n_probe_test",
    "n_variants",
]
CORRELATION_COLUMNS = [
    "run",
    "cheap",
    "downstream",
    "spearman_rho",
    "ci95_low",
    "ci95_high",
    "n_points",
]

T = TypeVar("T")


def pick(points: Sequence[T], n: int) -> list[T]:
    """At most `n` of `points` (in order), evenly spaced, the first and the last always in."""
    if n < 2:
        raise ValueError(f"need at least 2 points, got {n}")
    if len(points) <= n:
        return list(points)
    idx = np.unique(np.round(np.linspace(0, len(points) - 1, n)).astype(int))
    return [points[i] for i in idx]


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(stats.rankdata(x), stats.rankdata(y))[0, 1])


def spearman_interval(
    x: Sequence[float], y: Sequence[float], n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float, int]:
    """(rho, 95% low, 95% high, points) of Spearman's rank correlation of the paired values
    (average ranks for ties; pairs with a NaN left out). The interval: percentiles of rho over
    `n_boot` seeded resamples of the pairs, those with a constant side dropped."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    n = len(a)
    est = _rho(a, b)
    if not math.isfinite(est):
        return est, math.nan, math.nan, n
    rng = np.random.default_rng(seed)
    boots = np.array([_rho(a[i], b[i]) for i in rng.integers(0, n, (n_boot, n))])
    boots = boots[np.isfinite(boots)]
    if not len(boots):
        return est, math.nan, math.nan, n
    return est, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)), n


def auroc_interval(
    scores: np.ndarray, labels: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """AUROC of `scores` for the boolean `labels` and its percentile bootstrap interval,
    each class resampled within itself (so every resample has both)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    est = auroc(scores, labels)
    if not math.isfinite(est):
        return est, math.nan, math.nan
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        boots.append(auroc(scores[i], labels[i]))
    return est, float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


# ---------------------------------------------------------------- the fixed sets


def probe_subset(table: pd.DataFrame, per_class: int, seed: int, where: str) -> pd.DataFrame:
    """At most `per_class` rows of each label from each of the train and test splits of a
    probe task table (columns id, sequence, split, label), a seeded choice."""
    missing = {"id", "sequence", "split", "label"} - set(table.columns)
    if missing:
        raise InputFormatError(
            f"{where}: not a probe task table (missing columns {sorted(missing)})"
        )
    parts = []
    for split in ("train", "test"):
        rows = table[table["split"] == split]
        if rows.empty:
            raise InputFormatError(f"{where}: the probe task has no {split} rows")
        for _, group in rows.groupby("label", sort=True):
            parts.append(group.sample(n=min(per_class, len(group)), random_state=seed))
    return pd.concat(parts).reset_index(drop=True)


def vep_subset(simulated: pd.DataFrame, n: int, damaging: str, seed: int, where: str):
    """At most `n` of the simulated SNVs of class `damaging` and synonymous (a seeded choice,
    the two classes in their proportions); InputFormatError when a class is absent."""
    rows = simulated[simulated["class"].isin([damaging, "synonymous"])]
    for cls in (damaging, "synonymous"):
        if not (rows["class"] == cls).any():
            raise InputFormatError(
                f"{where}: no {cls} SNV among the simulated variants; raise vep.n_variants or "
                "choose the other analytics.vep_class"
            )
    if len(rows) > n:
        rows = rows.sample(n=n, random_state=seed)
    return rows.reset_index(drop=True)


@dataclass
class FixedSets:
    """What every point is measured on (module docstring)."""

    windows: list[str]
    probe: pd.DataFrame | None = None  # probe_subset
    variants: list = field(default_factory=list)  # dnalm.evaluation.variants.Variant
    damaging: np.ndarray | None = None  # per variant: True for the vep_class
    contigs: Mapping[str, str] = field(default_factory=dict)


def fixed_sets(
    validation: Sequence[str | os.PathLike],
    settings: Mapping,
    probe_table: str | os.PathLike | None = None,
    simulated: str | os.PathLike | None = None,
    vcf: str | os.PathLike | None = None,
    fasta: str | os.PathLike | None = None,
) -> FixedSets:
    """The fixed sets of a run: validation windows (from the FASTAs `validation`), the probe
    fragments (from the probe task's table, when given) and the SNVs (from the vep stage's
    simulated table, its VCF and the FASTA of the sequences they sit on, when given)."""
    seed = int(settings["seed"])
    windows = choose_windows(
        list(validation), int(settings["n_windows"]), int(settings["window_nt"]), 0, seed
    )
    sets = FixedSets(windows)
    if probe_table is not None:
        table = pd.read_csv(probe_table, sep="\t")
        sets.probe = probe_subset(table, int(settings["probe_per_class"]), seed, str(probe_table))
    if simulated is not None:
        chosen = vep_subset(pd.read_csv(simulated, sep="\t"), int(settings["n_variants"]),
                            str(settings["vep_class"]), seed, str(simulated))  # fmt: skip
        by_id = {v.id: v for v in read_vcf(vcf).variants}
        unknown = sorted(set(chosen["id"]) - set(by_id))
        if unknown:
            raise InputFormatError(
                f"{vcf}: SNVs {unknown[:5]} of {simulated} are missing; rerun rule vep_simulate"
            )
        sets.variants = [by_id[i] for i in chosen["id"]]
        sets.damaging = (chosen["class"] != "synonymous").to_numpy()
        sets.contigs = load_contigs(fasta, {v.chrom for v in sets.variants})
    return sets


def checkpoint_points(model_dir: str | os.PathLike, max_n: int) -> list[tuple]:
    """The points of a pretraining run: at most `max_n` of its kept checkpoints
    (:func:`pick`), as ``(step-N, N, model_dir, checkpoint folder)``; InputFormatError naming
    the folder and the fix when it kept fewer than two."""
    from dnalm.training.checkpoint import kept_checkpoints  # lazy: torch

    root = os.path.join(model_dir, "checkpoints")
    kept = kept_checkpoints(root)
    if len(kept) < 2:
        raise InputFormatError(
            f"{root}: {len(kept)} kept checkpoint(s); analytics needs two or more. The run keeps "
            "one at every checkpoint when it is under analytics.runs (pretrain.train."
            "keep_checkpoints); lower its eval_interval or checkpoint_interval for more, and "
            "rerun its pretraining"
        )
    return [(f"step-{step}", step, model_dir, folder) for step, folder in pick(kept, max_n)]


def sweep_points(model_dirs: Mapping[str, str | os.PathLike]) -> list[tuple]:
    """The points of a sweep: each run's final model, ``(run, its steps, folder, None)``."""
    return [
        (name, int(read_run_record(folder).get("steps", 0)), folder, None)
        for name, folder in model_dirs.items()
    ]


# ---------------------------------------------------------------- measuring a point


def window_metrics(score: Callable, windows: Sequence[str], n_boot: int, seed: int) -> dict:
    """bits_per_nt and rc_r of a scorer (total log-likelihood in nats per sequence) on
    `windows`, each with its interval."""
    nt = np.array([len(w) for w in windows], float)
    ll = np.asarray(score(list(windows)), float)
    rc = np.asarray(score([reverse_complement(w) for w in windows]), float)
    bits = -ll / nt / math.log(2)
    out = dict(zip(("bits_per_nt", "bits_per_nt_ci95_low", "bits_per_nt_ci95_high"),
                   mean_interval(bits, n_boot, seed), strict=True))  # fmt: skip
    out.update(zip(("rc_r", "rc_r_ci95_low", "rc_r_ci95_high"),
                   corr_interval(ll / nt, rc / nt, n_boot, seed), strict=True))  # fmt: skip
    return out


def probe_metrics(
    embeddings: np.ndarray, probe: pd.DataFrame, cv_folds: int, n_boot: int, seed: int
) -> dict:
    """Test accuracy (with its interval over test fragments) of the logistic-regression
    species probe on `embeddings` (one row per row of `probe`)."""
    from dnalm.evaluation.probe import fit_probe  # lazy: scikit-learn only where fitted

    train = (probe["split"] == "train").to_numpy()
    test = (probe["split"] == "test").to_numpy()
    labels = probe["label"].astype(str).to_numpy()
    res = fit_probe(embeddings[train], labels[train], embeddings[test], labels[test],
                    kind="logreg", cv_folds=cv_folds, seed=seed)  # fmt: skip
    correct = (res.y_pred == labels[test]).astype(float)
    keys = ("probe_accuracy", "probe_accuracy_ci95_low", "probe_accuracy_ci95_high")
    return {**dict(zip(keys, mean_interval(correct, n_boot, seed), strict=True)),
            "n_probe_test": int(test.sum())}  # fmt: skip


def evaluate_lm(lm, hf_tok, to_text, sets: FixedSets, settings: Mapping) -> dict[str, Any]:
    """Every metric of one loaded model (dnalm.evaluation.inference.LoadedModel, with the
    Hugging Face tokenizer of its folder for the embeddings) on the fixed sets. `settings`:
    the analytics section plus ``probe`` (layer, pooling, batch_size, cv_folds) and ``vep``
    (window, edge, rc_average)."""
    # lazy: torch and the model code stay out of the DAG build (the plan imports this module)
    from dnalm.evaluation.embed import embed_sequences

    # lazy: the scoring of variants needs torch
    from dnalm.evaluation.vep import score_variants

    n_boot, seed = int(settings["n_boot"]), int(settings["seed"])
    lm.model.eval()
    row: dict[str, Any] = {"n_windows": len(sets.windows)}
    row.update(window_metrics(lm_scorer(lm, eos=False), sets.windows, n_boot, seed))
    if sets.probe is not None:
        p = settings["probe"]
        emb, _, _ = embed_sequences(
            lm.model,
            hf_tok,
            sets.probe["sequence"].tolist(),
            layer=int(p["layer"]),
            pooling=str(p["pooling"]),
            batch_size=int(p["batch_size"]),
            max_length=lm.context,
            to_text=to_text,
            ids=sets.probe["id"].tolist(),
        )
        row.update(probe_metrics(emb, sets.probe, int(p["cv_folds"]), n_boot, seed))
    if sets.variants:
        v = settings["vep"]
        found = score_variants(lm, sets.contigs, sets.variants, int(v["window"]), v["edge"],
                               bool(v["rc_average"]))  # fmt: skip
        scores = np.array([s for s, _, _ in found])
        keys = ("vep_auroc", "vep_auroc_ci95_low", "vep_auroc_ci95_high")
        row.update(zip(keys, auroc_interval(-scores, sets.damaging, n_boot, seed), strict=True))
        row["n_variants"] = len(sets.variants)
    return row


def evaluate_points(
    run: str,
    points: Sequence[tuple[str, int, str | os.PathLike, os.PathLike | None]],
    sets: FixedSets,
    settings: Mapping,
    device: str = "cpu",
) -> pd.DataFrame:
    """The table of `run`: one row per point ``(label, step, model folder, kept checkpoint
    folder or None)``; a checkpoint's weights are loaded into the model of its run's folder
    (same architecture and tokenizer), a sweep run's folder is used as it is."""
    # lazy: torch and the model code stay out of the DAG build (the plan imports this module)
    from dnalm.evaluation.embed import load_text_tokenizer

    # lazy: the model loader needs torch
    from dnalm.evaluation.inference import load_lm

    # lazy: the checkpoint reader needs torch
    from dnalm.training.checkpoint import load_weights

    rows = []
    loaded: dict[str, tuple] = {}
    for label, step, folder, weights in points:
        key = str(folder)
        if key not in loaded:
            hf_tok, to_text, _ = load_text_tokenizer(folder)
            loaded = {key: (load_lm(folder, device), hf_tok, to_text)}  # one model at a time
        lm, hf_tok, to_text = loaded[key]
        if weights is not None:
            load_weights(weights, lm.model, device=device)
        row = {"run": run, "point": label, "step": int(step)}
        row.update(evaluate_lm(lm, hf_tok, to_text, sets, settings))
        log.info(
            "%s %s: %.4f bits/nt, rc r %.3f, probe %.3f, vep AUROC %.3f",
            run, label, row["bits_per_nt"], row["rc_r"], row.get("probe_accuracy", math.nan),
            row.get("vep_auroc", math.nan),
        )  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def correlations(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Spearman's rho over the points of `table` (one run) of each cheap metric against each
    downstream one that was measured, with its bootstrap interval over points."""
    rows = []
    run = str(table["run"].iloc[0]) if len(table) else ""
    for cheap in CHEAP:
        for down in DOWNSTREAM:
            if table[down].isna().all():
                continue
            rho, lo, hi, n = spearman_interval(table[cheap], table[down], n_boot, seed)
            rows.append([run, cheap, down, rho, lo, hi, n])
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def write_table(df: pd.DataFrame, out_tsv: str | os.PathLike) -> None:
    with atomic_write(out_tsv) as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")


def read_table(path: str | os.PathLike, columns: Sequence[str] = tuple(COLUMNS)) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputFormatError(f"{path}: not a checkpoint-analytics table (missing {missing})")
    return df
