"""Readers of the test-prediction files every fine-tuning run and baseline writes.

* ``predictions.npz`` (per-base tasks): ``ids`` (N,), ``predictions`` and ``targets``
  (N, L) float32 padded with 0, ``lengths`` (N,);
* ``predictions.tsv`` (sequence tasks): ``id``, ``label``, ``predicted`` (and, for
  classification, ``p_<class>`` per class).

Both name the file at fault when it is missing or malformed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.errors import InputFormatError

NPZ_KEYS = ("ids", "predictions", "targets", "lengths")
TSV_COLUMNS = ("id", "label", "predicted")


def read_per_base(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a per-base ``predictions.npz`` (ids as str)."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: per-base predictions file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in NPZ_KEYS if k not in z.files]
            if missing:
                raise InputFormatError(f"{path}: predictions archive lacks {missing}")
            out = {k: z[k] for k in NPZ_KEYS}
    except (ValueError, OSError) as err:  # not a zip / object arrays
        raise InputFormatError(f"{path}: not a readable predictions .npz ({err})") from err
    n = len(out["ids"])
    if n == 0:
        raise InputFormatError(f"{path}: predictions archive holds no windows")
    if out["predictions"].shape != out["targets"].shape or out["targets"].shape[0] != n:
        raise InputFormatError(
            f"{path}: predictions {out['predictions'].shape}, targets "
            f"{out['targets'].shape} and ids ({n},) disagree"
        )
    out["ids"] = out["ids"].astype(str)
    return out


def position_mask(lengths: np.ndarray, width: int) -> np.ndarray:
    """(N, width) bool: True at the real positions of each padded window."""
    return np.arange(width)[None, :] < np.asarray(lengths)[:, None]


def read_sequence(path: str | Path) -> pd.DataFrame:
    """A sequence task's ``predictions.tsv`` (id as str)."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: predictions table not found")
    try:
        df = pd.read_csv(path, sep="\t", dtype={"id": str, "label": str, "predicted": str})
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise InputFormatError(f"{path}: not a readable predictions table ({err})") from err
    missing = [c for c in TSV_COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(f"{path}: predictions table lacks columns {missing}")
    if df["id"].duplicated().any():
        raise InputFormatError(
            f"{path}: duplicate ids, e.g. {df['id'][df['id'].duplicated()].iloc[0]}"
        )
    return df
