"""The embeddings files of the probing stage, torch-free: what an embeddings ``.npz`` and its
JSON sidecar hold (:class:`Embeddings`), the layer-wise file of the layer probe
(:class:`LayerEmbeddings`: every chosen layer and pooling of each sequence, from the same
forward pass), their readers and writers, and the task table the embedding step reads.

Written by :mod:`dnalm.evaluation.embed` (which needs torch and transformers) and read by the
probes, the UMAPs and their figures, which therefore start without loading torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_path, atomic_write
from dnalm.tasks.common import load_task

#: Regimes a probe row can have (``kmer-baseline`` is written by dnalm.evaluation.probe,
#: ``dnatext`` by dnalm.multimodal.probe_embed: the DNA-only and DNA+text models of that stage).
REGIMES = ("pretrained", "fine-tuned", "random-init", "external", "dnatext", "kmer-baseline")
REQUIRED_COLUMNS = ("id", "sequence", "split")


@dataclass
class Embeddings:
    """What an embeddings .npz holds, plus its sidecar."""

    ids: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) str
    split: np.ndarray  # (N,) str
    embeddings: np.ndarray  # (N, D) float32
    n_tokens: np.ndarray  # (N,) int32
    meta: dict[str, Any] = field(default_factory=dict)

    def subset(self, split: str | Sequence[str]) -> Embeddings:
        """The rows of one split (or several)."""
        splits = [split] if isinstance(split, str) else list(split)
        keep = np.isin(self.split, splits)
        return Embeddings(
            self.ids[keep],
            self.labels[keep],
            self.split[keep],
            self.embeddings[keep],
            self.n_tokens[keep],
            dict(self.meta),
        )


def sidecar_path(npz_path: str | os.PathLike) -> Path:
    """The JSON sidecar of an embeddings file: ``x.npz`` -> ``x.json``."""
    return Path(npz_path).with_suffix(".json")


def load_embeddings(path: str | os.PathLike) -> Embeddings:
    """Read an embeddings .npz (no pickles) and its sidecar (empty meta when absent)."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: embeddings file not found; run the embed step first")
    with np.load(path, allow_pickle=False) as z:
        missing = {"ids", "labels", "split", "embeddings"} - set(z.files)
        if missing:
            raise InputFormatError(f"{path}: not a dnalm embeddings file (missing {missing})")
        n_tokens = z["n_tokens"] if "n_tokens" in z.files else np.zeros(len(z["ids"]), np.int32)
        emb = Embeddings(z["ids"], z["labels"], z["split"], z["embeddings"], n_tokens)
    side = sidecar_path(path)
    if side.is_file():
        emb.meta = json.loads(side.read_text(encoding="utf-8"))
    return emb


def read_table(table: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """A task table (DataFrame, task folder or data.tsv) checked for id, sequence, split.

    ``label`` is optional (empty strings when absent, e.g. regression tasks)."""
    if isinstance(table, pd.DataFrame):
        df, where = table, "table"
    else:
        df, where = load_task(table), str(table)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(f"{where}: missing column(s) {missing}; need {REQUIRED_COLUMNS}")
    out = pd.DataFrame(
        {
            "id": df["id"].astype(str).to_numpy(),
            "sequence": df["sequence"].astype(str).to_numpy(),
            "split": df["split"].astype(str).to_numpy(),
            "label": df["label"].astype(str).to_numpy() if "label" in df else "",
        }
    )
    dup = out["id"].duplicated()
    if dup.any():
        raise InputFormatError(
            f"{where}: duplicate id {out['id'][dup].iloc[0]!r}; ids must be unique"
        )
    return out


def _npz_path(out_npz: str | os.PathLike) -> Path:
    out_npz = Path(out_npz)
    if out_npz.suffix != ".npz":
        raise ConfigError(f"{out_npz}: the embeddings file name must end in .npz")
    return out_npz


def _write_npz_and_sidecar(out_npz: Path, meta: dict[str, Any], **arrays: np.ndarray) -> Path:
    """The .npz of `arrays` and its JSON sidecar of `meta`, each written atomically."""
    with atomic_path(out_npz, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    with atomic_write(sidecar_path(out_npz)) as fh:
        fh.write(json.dumps(meta, indent=2, default=str) + "\n")
    return out_npz


def _row_arrays(emb: Embeddings | LayerEmbeddings) -> dict[str, np.ndarray]:
    """The per-sequence columns both embeddings files hold: ids, labels and split."""
    return {k: np.asarray(getattr(emb, k), dtype=str) for k in ("ids", "labels", "split")}


def write_embeddings(out_npz: str | os.PathLike, emb: Embeddings) -> Path:
    """Write an embeddings .npz and its JSON sidecar, each atomically."""
    return _write_npz_and_sidecar(
        _npz_path(out_npz),
        emb.meta,
        **_row_arrays(emb),
        embeddings=np.asarray(emb.embeddings, dtype=np.float32),
        n_tokens=np.asarray(emb.n_tokens, dtype=np.int32),
    )


@dataclass
class LayerEmbeddings:
    """What a layer-wise embeddings .npz holds (the layer probe's input), plus its sidecar:
    ``embeddings[i, a, b]`` is sequence i's vector at hidden-state layer ``layers[a]``
    (0 = the embedding output) pooled by ``poolings[b]``."""

    ids: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) str
    split: np.ndarray  # (N,) str
    embeddings: np.ndarray  # (N, L, P, D) float32
    layers: np.ndarray  # (L,) int64, hidden-state indices from 0
    poolings: np.ndarray  # (P,) str
    meta: dict[str, Any] = field(default_factory=dict)

    def features(self, layer: int, pooling: str) -> np.ndarray:
        """The (N, D) vectors of one hidden-state layer and pooling."""
        a = np.flatnonzero(self.layers == layer)
        b = np.flatnonzero(self.poolings == pooling)
        if not a.size or not b.size:
            raise InputFormatError(
                f"no layer {layer} / pooling {pooling!r} in this layer-wise file (layers "
                f"{self.layers.tolist()}, poolings {self.poolings.tolist()})"
            )
        return self.embeddings[:, int(a[0]), int(b[0])]


LAYER_ARRAYS = ("ids", "labels", "split", "embeddings", "layers", "poolings")


def write_layer_embeddings(out_npz: str | os.PathLike, emb: LayerEmbeddings) -> Path:
    """Write a layer-wise embeddings .npz and its JSON sidecar, each atomically."""
    out_npz = _npz_path(out_npz)
    x = np.asarray(emb.embeddings, dtype=np.float32)
    if x.ndim != 4 or x.shape[1:3] != (len(emb.layers), len(emb.poolings)):
        raise ConfigError(
            f"{out_npz}: layer-wise embeddings must be (N, layers, poolings, D), got {x.shape}"
        )
    return _write_npz_and_sidecar(
        out_npz,
        emb.meta,
        **_row_arrays(emb),
        embeddings=x,
        layers=np.asarray(emb.layers, dtype=np.int64),
        poolings=np.asarray(emb.poolings, dtype=str),
    )


def load_layer_embeddings(path: str | os.PathLike) -> LayerEmbeddings:
    """Read a layer-wise embeddings .npz (no pickles) and its sidecar."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: layer-wise embeddings file not found")
    with np.load(path, allow_pickle=False) as z:
        missing = set(LAYER_ARRAYS) - set(z.files)
        if missing:
            raise InputFormatError(f"{path}: not a layer-wise embeddings file (missing {missing})")
        emb = LayerEmbeddings(*(z[k] for k in LAYER_ARRAYS))
    side = sidecar_path(path)
    if side.is_file():
        emb.meta = json.loads(side.read_text(encoding="utf-8"))
    return emb
