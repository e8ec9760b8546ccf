"""The CDS QC summary across samples: counts per sample and drop reason, lengths and GC, read
from the per-sample CDS tables, and its reader (the figure is drawn from both tables by
:mod:`dnalm.report.cds_plots`, in a report step of its own)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from dnalm.core.io import (
    atomic_write,
)
from dnalm.genome.cds_record import REASONS, drop_warnings

log = logging.getLogger(__name__)


def read_cds_tables(tsv_paths: Iterable[str | os.PathLike]):
    """Concatenate per-sample QC tables (as written by :func:`write_cds_outputs`)."""
    import pandas as pd  # lazy: pandas (~0.5 s) stays out of `dnalm cds`, which imports this module

    frames = [
        pd.read_csv(
            p,
            sep="\t",
            dtype={"cds_id": str, "record": str, "locus_tag": str, "gene": str, "sample": str},
            keep_default_na=False,
            na_values=[""],
        )
        for p in tsv_paths
    ]
    if not frames:
        raise ValueError("no CDS tables given")
    return pd.concat(frames, ignore_index=True)


def _as_bool(series):
    return series.map(lambda v: {"True": True, "False": False}.get(str(v), v))


def qc_summary(tsv_paths: Iterable[str | os.PathLike]):
    """One row per sample: CDS counts (total, kept, dropped by reason), median length and
    GC of kept CDS, the % of kept CDS with /translation whose translation matches, and
    ``drop_warning``: each drop reason that removes more than :data:`HIGH_DROP_FRACTION` of
    the sample's CDS, with the likely fix (empty when none does)."""
    import pandas as pd  # lazy: pandas (~0.5 s) stays out of `dnalm cds`, which imports this module

    df = read_cds_tables(tsv_paths)
    rows = []
    for sample, g in df.groupby("sample", sort=False):
        kept = g[g["status"] == "kept"]
        tm = _as_bool(kept["translation_match"]).dropna()
        row: dict[str, Any] = {
            "sample": sample,
            "n_cds": len(g),
            "kept": len(kept),
            "dropped": len(g) - len(kept),
            "median_length": float(kept["length"].median()) if len(kept) else float("nan"),
            "median_gc": float(kept["gc"].median()) if len(kept) else float("nan"),
            "n_with_translation": len(tm),
            "pct_translation_match": 100.0 * float(tm.astype(bool).mean())
            if len(tm)
            else float("nan"),
        }
        for reason in REASONS:
            row[f"dropped_{reason}"] = int((g["status"] == reason).sum())
        warned = drop_warnings(g["status"].value_counts().to_dict(), len(g))
        row["drop_warning"] = " | ".join(warned)
        for line in warned:
            log.warning("sample %s: %s", sample, line)
        rows.append(row)
    out = pd.DataFrame(rows)
    empty = [c for c in out.columns if c.startswith("dropped_") and not out[c].any()]
    return out.drop(columns=empty)


def write_qc_summary(tsv_paths: Sequence[str | os.PathLike], summary_path: str | os.PathLike):
    """Write the cross-sample summary TSV (:func:`qc_summary`) and return it."""
    summary = qc_summary(tsv_paths)
    with atomic_write(summary_path) as fh:
        summary.to_csv(fh, sep="\t", index=False, na_rep="", lineterminator="\n")
    return summary


def read_qc_summary(summary_path: str | os.PathLike):
    """The summary TSV written by :func:`write_qc_summary`, as it was written: sample IDs
    stay strings (``"01"`` is not read as 1), empty numbers are missing values, an empty
    ``drop_warning`` is the empty string."""
    import pandas as pd  # lazy: pandas (~0.5 s) stays out of `dnalm cds`, which imports this module

    df = pd.read_csv(
        summary_path,
        sep="\t",
        dtype={"sample": str, "drop_warning": str},
        keep_default_na=False,
        na_values=[""],
    )
    if "drop_warning" in df:
        df["drop_warning"] = df["drop_warning"].fillna("")
    return df
