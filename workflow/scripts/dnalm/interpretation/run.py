"""One attribution run: a fine-tuned task model or the one-hot CNN on test sequences of its
task -> ``attributions.npz``, ``summary.tsv`` (bound-vs-unbound AUROC per method for per-base
tasks; discovered motifs against the known ones for classification) and a figure.

Which test sequences (:func:`choose_rows`, seeded): per-base tasks take ``n_windows`` test
windows that hold both bound (target > 0) and unbound bases, so that every explained window
can show where the binding site is; classification takes ``n_windows`` test sequences split
evenly over the classes; sequence regression ``n_windows`` test rows at random.

``attributions.npz``: ``ids`` (N,), ``codes`` (N, L) int8 (A,C,G,T,N = 0..4; padding 4),
``mask`` (N, L) bool (bases explained: real bases, for token models those a token covers),
``cls`` (N,) class index explained (0 for regression), ``targets`` (N, L) float32 (per-base
tasks) or ``labels`` (N,) str, and per method ``{method}`` (N, L) float32 per-position
attribution, plus ``ism_delta`` (N, L, 4) and ``{method}_hyp`` (N, L, 4) where the method
has a per-base-letter matrix (ISM; the gradients of the one-hot CNN).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from dnalm.core.alphabet import CODE_TO_BASE, encode_sequences
from dnalm.core.artifacts import (
    ATTRIBUTIONS_NPZ,
    FINETUNE_JSON,
    SUMMARY_TSV,
    WEIGHTS_SAFETENSORS,
    read_metrics,
)
from dnalm.core.config import CNNTrainConfig, FinetuneTrainConfig
from dnalm.core.device import select_device
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_path, atomic_write
from dnalm.finetuning.finetune import Tokenize
from dnalm.finetuning.tables import class_labels, task_kind
from dnalm.interpretation import attribution as attr
from dnalm.interpretation import motifs
from dnalm.kinds.tasks import TASK_KINDS
from dnalm.modeling.cnn import OneHotCNN, OneHotCNNClassifier
from dnalm.modeling.external import HFTokenizer
from dnalm.modeling.loader import load_model_folder
from dnalm.modeling.models import model_context
from dnalm.tasks.common import load_task

log = logging.getLogger(__name__)


@dataclass
class InterpretSettings:
    n_windows: int = 50
    methods: tuple[str, ...] = attr.METHODS
    ig_steps: int = 32
    batch_size: int = 256
    seed: int = 0
    device: str = "cpu"
    seqlet_width: int = 10
    seqlets_per_sequence: int = 2
    seqlet_quantile: float = 0.9
    cluster_join: float = 0.6
    min_seqlets: int = 5
    known_motifs: Mapping[str, str] | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> InterpretSettings:
        d = dict(d or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"interpret: unknown setting(s) {unknown}")
        if "methods" in d:
            bad = sorted(set(d["methods"]) - set(attr.METHODS))
            if bad or not d["methods"]:
                raise ConfigError(
                    f"interpret.methods: {bad or 'empty'}; choose from {list(attr.METHODS)}"
                )
            d["methods"] = tuple(d["methods"])
        s = cls(**d)
        if s.n_windows < 1:
            raise ConfigError(f"interpret.n_windows must be >= 1, got {s.n_windows}")
        if s.ig_steps < 2:
            raise ConfigError(f"interpret.ig_steps must be >= 2, got {s.ig_steps}")
        return s


def choose_rows(test: pd.DataFrame, kind: str, n: int, seed: int = 0) -> pd.DataFrame:
    """The test rows to explain (module docstring), in a seeded order."""
    rng = np.random.default_rng(seed)
    if TASK_KINDS.get(kind).per_base:
        ok = [
            bool((t > 0).any() and (t <= 0).any())
            for t in (np.asarray(x, np.float32) for x in test["targets"])
        ]
        pool = test[np.asarray(ok, bool)]
        if pool.empty:
            raise InputFormatError("no test window has both bound and unbound bases")
        pick = rng.permutation(len(pool))[:n]
        return pool.iloc[np.sort(pick)].reset_index(drop=True)
    if TASK_KINDS.get(kind).classes:
        labels = sorted(test["label"].astype(str).unique())
        per = max(1, n // len(labels))
        parts = []
        for lab in labels:
            rows = test[test["label"].astype(str) == lab]
            parts.append(rows.iloc[np.sort(rng.permutation(len(rows))[:per])])
        return pd.concat(parts).reset_index(drop=True)
    pick = rng.permutation(len(test))[:n]
    return test.iloc[np.sort(pick)].reset_index(drop=True)


# ----------------------------------------------------------------------------- models


@dataclass
class Explainer:
    """What the methods need of one model: a codes scorer for ISM and a gradient method."""

    kind: str
    family: str  # "onehot" | "token"
    score: attr.CodesScorer
    gradients: Any  # (codes, mask, cls, method) -> (N, L) track, (N, L, 4) or None
    covered: Any  # (codes, mask) -> (N, L) bool: bases the model sees


def onehot_explainer(
    run_dir: Path, kind: str, n_classes: int, device, s: InterpretSettings
) -> Explainer:
    """The one-hot CNN of a baseline run folder (``model.safetensors`` + ``metrics.json``)."""

    rec = read_metrics(run_dir, "the run's metrics")
    cfg = CNNTrainConfig.from_dict(rec.get("config") or {})
    if TASK_KINDS.get(kind).per_base:
        net = OneHotCNN(cfg.channels, cfg.kernel_size, cfg.dropout)
    else:
        n_out = TASK_KINDS.get(kind).n_outputs(n_classes)
        net = OneHotCNNClassifier(n_out, cfg.channels, cfg.kernel_size, cfg.dropout, cfg.pooling)
    weights = run_dir / WEIGHTS_SAFETENSORS
    if not weights.is_file():
        raise InputFormatError(f"{weights}: the one-hot CNN's weights are missing")
    net.load_state_dict(load_file(str(weights)))
    model = attr.OneHotScalar(net.to(device).eval(), kind)

    def gradients(codes, mask, cls, method):
        a = attr.onehot_gradients(model, codes, mask, cls, method, steps=s.ig_steps, device=device)
        return a.sum(-1), a - a.mean(-1, keepdims=True)

    return Explainer(
        kind, "onehot", attr.onehot_scorer(model, device), gradients, lambda c, m: m.copy()
    )


def token_explainer(run_dir: Path, kind: str, device, s: InterpretSettings) -> Explainer:
    """A fine-tuning run's ``model/`` folder (backbone + head) with its tokenizer: dnalm's,
    or the transformers tokenizer of a fine-tuned external model (wrapped as fine-tuning
    wraps it, :class:`dnalm.modeling.external.HFTokenizer`)."""
    loaded = load_model_folder(run_dir / "model", kind="finetuned", device=device)
    if loaded.finetune.get("kind") != kind:
        raise InputFormatError(
            f"{run_dir}/model was fine-tuned for a {loaded.finetune.get('kind')} task, not {kind}"
        )
    if loaded.dna_tokenizer:
        tok = loaded.tokenizer
        special = {v for v in tok.special_ids.values() if v is not None}
    else:
        tok = HFTokenizer(loaded.tokenizer)
        special = {int(v) for v in tok.hf.all_special_ids}
    context = model_context(loaded.config)
    cfg = FinetuneTrainConfig.from_dict(loaded.finetune["config"])
    per_base = TASK_KINDS.get(kind).per_base
    tf = Tokenize(tok, context, per_base, False, cfg)
    gen = torch.Generator().manual_seed(0)
    model = attr.TokenScalar(loaded.model, kind)
    model.requires_grad_(True)
    offset = 0 if tok.bos_id is None else 1

    def tokenize(codes, mask):
        batch = {
            "codes": torch.as_tensor(codes),
            "mask": torch.as_tensor(mask, dtype=torch.bool),
            "y": torch.zeros(len(codes)),
        }
        return tf(batch, gen)

    def base_map(codes, mask):
        out = np.full(np.shape(codes), -1, np.int64)
        for i, (c, m) in enumerate(zip(codes, mask, strict=True)):
            seq = CODE_TO_BASE[c[: int(m.sum())]].tobytes().decode("ascii")
            idx = tok.base_to_token_index(seq)
            idx = np.where(idx >= 0, idx + offset, -1)
            out[i, : len(idx)] = np.where(idx < context, idx, -1)
        return out

    pad = tok.pad_id if tok.pad_id is not None else (tok.eos_id or 0)

    def gradients(codes, mask, cls, method):
        track = attr.token_gradients(
            model, tokenize, base_map, codes, mask, cls, method,
            pad_id=pad, special_ids=special, steps=s.ig_steps, device=device,
        )  # fmt: skip
        return track, None

    return Explainer(
        kind,
        "token",
        attr.token_scorer(model, tokenize, device),
        gradients,
        lambda c, m: m & (base_map(c, m) >= 0),
    )


# ----------------------------------------------------------------------------- entry point


def interpret_run(
    run_dir: str | os.PathLike,
    task: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    settings: InterpretSettings | Mapping[str, Any] | None = None,
    *,
    run_name: str | None = None,
    task_name: str | None = None,
) -> pd.DataFrame:
    """Explain test sequences of `task` with the model of `run_dir` (a one-hot CNN baseline
    folder or a fine-tuning run with ``model/``); write ``attributions.npz`` and
    ``summary.tsv`` to `out_dir` and return the summary."""
    t0 = time.perf_counter()
    s = (
        settings
        if isinstance(settings, InterpretSettings)
        else InterpretSettings.from_dict(settings)
    )
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    df = task if isinstance(task, pd.DataFrame) else load_task(task, targets_as_arrays=True)
    kind = task_kind(df, None)
    if TASK_KINDS.get(kind).per_base and isinstance(df["targets"].iloc[0], str):
        df = df.assign(targets=[np.array(t.split(","), np.float32) for t in df["targets"]])
    test = df[df["split"] == "test"]
    if test.empty:
        raise InputFormatError(f"{task_name or 'task'}: no test rows to explain")
    order = class_labels(df, None) if TASK_KINDS.get(kind).classes else None
    rows = choose_rows(test, kind, s.n_windows, s.seed)
    device = select_device(s.device)
    torch.manual_seed(s.seed)
    if (run_dir / "model" / FINETUNE_JSON).is_file():
        ex = token_explainer(run_dir, kind, device, s)
    else:
        ex = onehot_explainer(run_dir, kind, len(order or []), device, s)

    width = int(rows["sequence"].str.len().max())
    codes, lengths = encode_sequences(list(rows["sequence"]), width)
    real = np.arange(width)[None, :] < lengths[:, None]  # what the models read
    mask = ex.covered(codes, real)  # what the attributions are reported on
    cls = (
        np.array([order.index(str(v)) for v in rows["label"]], np.int64)
        if order
        else np.zeros(len(rows), np.int64)
    )
    arrays: dict[str, np.ndarray] = {
        "ids": rows["id"].astype(str).to_numpy(dtype=str),
        "codes": codes,
        "mask": mask,
        "cls": cls,
    }
    if TASK_KINDS.get(kind).per_base:
        targets = np.zeros((len(rows), width), np.float32)
        for i, t in enumerate(rows["targets"]):
            targets[i, : len(t)] = t
        arrays["targets"] = targets
    else:
        arrays["labels"] = rows["label"].astype(str).to_numpy(dtype=str)
    timings = {}
    for method in s.methods:
        t = time.perf_counter()
        if method == "ism":
            delta = attr.ism(ex.score, codes, real, cls, s.batch_size) * mask[..., None]
            track, hyp = attr.ism_track(delta)
            arrays["ism_delta"] = delta
        else:
            track, hyp = ex.gradients(codes, real, cls, method)
        arrays[method] = np.where(mask, track, 0.0).astype(np.float32)
        if hyp is not None:
            arrays[f"{method}_hyp"] = (hyp * mask[..., None]).astype(np.float32)
        timings[method] = time.perf_counter() - t
        log.info("%s: %s on %d sequences in %.1f s", run_name, method, len(rows), timings[method])

    with atomic_path(out_dir / ATTRIBUTIONS_NPZ) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    summary = summarize(arrays, kind, s, order)
    summary.insert(0, "run", run_name or run_dir.name)
    summary.insert(0, "task", task_name)
    summary.insert(2, "model_family", ex.family)
    summary["time_s"] = summary["method"].map(timings)
    with atomic_write(out_dir / SUMMARY_TSV) as fh:
        summary.to_csv(fh, sep="\t", index=False, float_format="%.4g")
    log.info("%s: done in %.1f s", run_name, time.perf_counter() - t0)
    return summary


DEFAULT_KNOWN = {"OCT4": "ATGCAAAT", "MAFK": "TGCTGAC"}


def summarize(
    arrays: Mapping[str, np.ndarray],
    kind: str,
    s: InterpretSettings,
    order: Sequence[str] | None,
) -> pd.DataFrame:
    """One row per method (per-base tasks: bound-vs-unbound AUROC), or per method x class x
    discovered motif x known motif (classification)."""
    rows: list[dict[str, Any]] = []
    for method in s.methods:
        track = arrays[method]
        if TASK_KINDS.get(kind).per_base:
            rows.append({"method": method, **motifs.bound_auroc(track, arrays["targets"],
                                                                arrays["mask"])})  # fmt: skip
        elif TASK_KINDS.get(kind).classes:
            known = dict(s.known_motifs or DEFAULT_KNOWN)
            for k, label in enumerate(order or []):
                sel = arrays["cls"] == k
                seqlets = motifs.find_seqlets(
                    track[sel], arrays["codes"][sel], arrays["mask"][sel],
                    s.seqlet_width, s.seqlets_per_sequence, s.seqlet_quantile,
                )  # fmt: skip
                clusters = motifs.cluster_seqlets(
                    seqlets, arrays["codes"][sel], s.seqlet_width, s.cluster_join, s.min_seqlets
                )
                found = motifs.compare_motifs(clusters, known)
                if not found:
                    found = [{"motif_rank": 0, "n_seqlets": 0, "consensus": ""}]
                for r in found:
                    rows.append(
                        {"method": method, "class": label, "n_sequences": int(sel.sum()),
                         "n_seqlets_total": len(seqlets), **r}
                    )  # fmt: skip
        else:
            rows.append({"method": method, "n_sequences": len(track)})
    return pd.DataFrame(rows)
