"""Genome and region windows for pretraining corpora, split without leakage (and the
windows of a task corpus, :func:`task_windows`).

One sample at a time, one contig in memory at a time (the genome FASTA is streamed):

1. **Blocks.** Each contig is cut into contiguous blocks of ``split.block_size`` nt; each
   block goes to train/validation/test by a seeded hash of (sample, contig, block index)
   with ``splits.fractions`` (``method: blocks``), or each contig is one block and the
   contigs named under ``split.contigs.{sample}`` go to validation/test, the rest to train
   (``method: contigs``).
2. **Pieces.** A genome corpus uses each whole block; a regions corpus uses the union of
   its target regions (:func:`dnalm.genome.regions.target_regions`), each region assigned
   to the block of its start and clipped to it. With ``n_runs: split`` pieces are cut at
   runs of at least ``min_n_run`` N.
3. **Windows.** Inside each piece, windows of ``window`` nt start every ``stride`` nt; the
   last one may be shorter (down to ``min_length``, by default ``window``) and windows stop
   at the piece end. So no window spans two blocks, hence two splits. Windows with more
   than ``max_n_fraction`` N (any base other than A/C/G/T) are dropped and counted.
4. **Exclusion.** Training windows that overlap any interval to exclude (task windows
   placed on a genome, BED regions) are removed; contigs are matched by exact name.

Output: ``{train,validation,test}.fa.gz`` with records ``{contig}:{start}-{end}({strand})``
(0-based half-open; case kept; with ``both_strands`` each window is followed by its reverse
complement, strand ``-``), ``windows.tsv`` (per split: blocks, windows, nt, dropped for N,
excluded), ``contigs.tsv`` (per contig: length and nt per split) and ``overlaps.tsv`` (the
intervals to exclude that overlap a window of a split, before and after exclusion).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dnalm.core.alphabet import BASES, reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, read_fasta
from dnalm.core.log import progress_disabled
from dnalm.genome.corpora import check_contig_lists
from dnalm.genome.regions import overlaps_union, read_bed, target_regions, union

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
RECORD_RE = re.compile(r"^(?P<contig>.+):(?P<start>\d+)-(?P<end>\d+)\((?P<strand>[+-])\)$")
_ACGT = np.zeros(256, dtype=bool)
for _b in BASES + BASES.lower():
    _ACGT[ord(_b)] = True


def block_split(
    sample: str, contig: str, index: int, seed: int, fractions: Mapping[str, float]
) -> str:
    """The split of block `index` of a contig: u = first 64 bits of
    sha1("{seed}\\t{sample}\\t{contig}\\t{index}") / 2**64 against the cumulative fractions."""
    h = hashlib.sha1(f"{seed}\t{sample}\t{contig}\t{index}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < fractions["train"]:
        return "train"
    return "validation" if u < fractions["train"] + fractions["validation"] else "test"


def contig_blocks(
    sample: str, contig: str, length: int, split: Mapping[str, Any], fractions: Mapping
) -> list[tuple[int, int, str]]:
    """(start, end, split) of the blocks of one contig."""
    if split["method"] == "contigs":
        held = split["contigs"].get(sample, {})
        part = next((p for p in ("validation", "test") if contig in held.get(p, ())), "train")
        return [(0, length, part)]
    size = split["block_size"]
    return [
        (s, min(s + size, length), block_split(sample, contig, i, split["seed"], fractions))
        for i, s in enumerate(range(0, length, size))
    ]


def window_starts(
    start: int, end: int, window: int, stride: int, min_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windows inside [start, end): starts every `stride`, each `window` long or cut at the
    end; the last is the first that reaches `end`; shorter than `min_length` is dropped."""
    s = np.arange(start, end, stride, dtype=np.int64)
    e = np.minimum(s + window, end)
    first_at_end = np.searchsorted(e, end)  # e is non-decreasing
    s, e = s[: first_at_end + 1], e[: first_at_end + 1]
    keep = e - s >= min_length
    return s[keep], e[keep]


def _n_runs(seq: str, min_run: int) -> tuple[np.ndarray, np.ndarray]:
    runs = [(m.start(), m.end()) for m in re.finditer(f"[Nn]{{{min_run},}}", seq)]
    arr = np.array(runs, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _cut_at_runs(s: int, e: int, rs: np.ndarray, re_: np.ndarray) -> list[tuple[int, int]]:
    """[s, e) minus the N runs (rs, re_) (sorted, disjoint)."""
    lo, hi = np.searchsorted(re_, s, side="right"), np.searchsorted(rs, e, side="left")
    out, cur = [], s
    for a, b in zip(rs[lo:hi].tolist(), re_[lo:hi].tolist(), strict=True):
        if a > cur:
            out.append((cur, min(a, e)))
        cur = max(cur, b)
    if cur < e:
        out.append((cur, e))
    return out


def _pieces(block_s: int, block_e: int, regions: tuple[np.ndarray, np.ndarray] | None):
    if regions is None:
        return [(block_s, block_e)]
    rs, re_ = regions
    lo, hi = np.searchsorted(rs, block_s), np.searchsorted(rs, block_e)
    return [
        (a, min(b, block_e)) for a, b in zip(rs[lo:hi].tolist(), re_[lo:hi].tolist(), strict=True)
    ]


def contig_windows(
    sample: str,
    contig: str,
    seq: str,
    spec: Mapping[str, Any],
    fractions: Mapping[str, float],
    regions: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every candidate window of one contig: arrays start, end, split (index into SPLITS),
    n_frac, block (global block index within the contig), plus the block list."""
    blocks = contig_blocks(sample, contig, len(seq), spec["split"], fractions)
    runs = _n_runs(seq, spec["min_n_run"]) if spec["n_runs"] == "split" else None
    starts, ends, splits, block_ids = [], [], [], []
    for b, (bs, be, part) in enumerate(blocks):
        for ps, pe in _pieces(bs, be, regions):
            for s, e in _cut_at_runs(ps, pe, *runs) if runs is not None else [(ps, pe)]:
                ws, we = window_starts(s, e, spec["window"], spec["stride"], spec["min_length"])
                starts.append(ws)
                ends.append(we)
                splits.append(np.full(ws.size, SPLITS.index(part), np.int8))
                block_ids.append(np.full(ws.size, b, np.int64))
    cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt)  # noqa: E731
    start, end = cat(starts, np.int64), cat(ends, np.int64)
    not_acgt = ~_ACGT[np.frombuffer(seq.encode("ascii", "replace"), np.uint8)]
    cum = np.zeros(len(seq) + 1, dtype=np.uint32)
    np.cumsum(not_acgt, out=cum[1:])
    n_count = cum[end].astype(np.int64) - cum[start].astype(np.int64)
    return {
        "start": start,
        "end": end,
        "split": cat(splits, np.int8),
        "block": cat(block_ids, np.int64),
        "n_frac": n_count / np.maximum(end - start, 1),
        "blocks": blocks,
    }


def task_intervals(df: pd.DataFrame, end_inclusive: bool) -> pd.DataFrame:
    """(id, split, chrom, start, end) with `end` made exclusive (+1 when the table's ends
    are inclusive, as in DNA-LLM's window names chr22_10510500_10510799 for 300 bp)."""
    out = df[["id", "split", "chrom", "start", "end"]].copy()
    out["chrom"] = out["chrom"].astype(str)
    out["start"] = out["start"].astype(np.int64)
    out["end"] = out["end"].astype(np.int64) + (1 if end_inclusive else 0)
    return out


def _by_contig(intervals: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, pd.DataFrame]]:
    """source -> contig -> its intervals."""
    return {src: dict(tuple(df.groupby("chrom", sort=False))) for src, df in intervals.items()}


def _union_of(df: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    if df is None or not len(df):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return union(df["start"].to_numpy(), df["end"].to_numpy())


def cut_windows(
    sample: str,
    genome: str | os.PathLike,
    out: Mapping[str, str | os.PathLike],
    spec: Mapping[str, Any],
    fractions: Mapping[str, float],
    *,
    corpus: str,
    features: pd.DataFrame | None = None,
    exclude: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Cut one sample's genome into windows; write out['train'|'validation'|'test'] (FASTA),
    out['summary'] (windows.tsv), out['contigs'] and out['overlaps']. `exclude` maps a
    source name (task or BED file) to intervals (id, split, chrom, start, end; half-open);
    they are removed from train when spec['exclude_tasks'] (tasks) or always (BED files
    under exclude_regions: their source names start with 'bed:'). Returns the summary."""
    if spec["source"] == "regions" and features is None:
        raise ConfigError(f"corpora.{corpus}: a regions corpus needs the features of {sample}")
    exclude = dict(exclude or {})
    by_contig = _by_contig(exclude)
    stats = {
        p: dict.fromkeys(("n_blocks", "n_windows", "nt", "n_dropped_n", "n_excluded"), 0)
        for p in SPLITS
    }
    hits: set[tuple[str, str, str, str]] = set()  # (split, stage, source, id)
    contig_rows = []
    seen: dict[str, int] = {}  # contig -> its header line
    bar = tqdm(desc=f"{sample}: windows", unit=" nt", unit_scale=True, disable=progress_disabled())
    with contextlib.ExitStack() as stack:
        fhs = {p: stack.enter_context(atomic_write(out[p])) for p in SPLITS}
        for header, seq, lineno in read_fasta(genome):
            contig = header.split(maxsplit=1)[0] if header else ""
            if not contig:
                raise InputFormatError(f"{genome}:{lineno}: a record without a contig name")
            if contig in seen:
                raise InputFormatError(
                    f"{genome}: two records are named {contig!r} (headers at lines "
                    f"{seen[contig]} and {lineno}); contig names must be unique: remove or "
                    "rename one"
                )
            seen[contig] = lineno
            regions = None
            if spec["source"] == "regions":
                regions = target_regions(
                    features, contig, len(seq), spec["features"], spec["upstream"]
                )
            w = contig_windows(sample, contig, seq, spec, fractions, regions)
            row = {"sample": sample, "contig": contig, "length": len(seq)}
            for p in SPLITS:
                nt = sum(be - bs for bs, be, part in w["blocks"] if part == p)
                row[f"{p}_nt"] = nt
                stats[p]["n_blocks"] += sum(1 for *_, part in w["blocks"] if part == p)
            contig_rows.append(row)
            keep = w["n_frac"] <= spec["max_n_fraction"]
            for i, p in enumerate(SPLITS):
                stats[p]["n_dropped_n"] += int(np.count_nonzero(~keep & (w["split"] == i)))
            train = w["split"] == 0
            excluded = np.zeros(keep.size, dtype=bool)
            for src, contigs in by_contig.items():
                df = contigs.get(contig)
                if df is None:
                    continue
                u = _union_of(df)
                hit = overlaps_union(w["start"], w["end"], *u)
                if not src.startswith("task:") or spec["exclude_tasks"]:
                    excluded |= hit & train & keep
                # which intervals overlap a kept window of each split, before exclusion
                for i, p in enumerate(SPLITS):
                    sel = keep & (w["split"] == i)
                    ws = union(w["start"][sel], w["end"][sel])
                    over = overlaps_union(df["start"].to_numpy(), df["end"].to_numpy(), *ws)
                    hits.update((p, "before_exclusion", src, x) for x in df["id"][over])
            stats["train"]["n_excluded"] += int(np.count_nonzero(excluded))
            kept = keep & ~excluded
            for src, contigs in by_contig.items():
                df = contigs.get(contig)
                if df is None:
                    continue
                for i, p in enumerate(SPLITS):
                    sel = kept & (w["split"] == i)
                    ws = union(w["start"][sel], w["end"][sel])
                    over = overlaps_union(df["start"].to_numpy(), df["end"].to_numpy(), *ws)
                    hits.update((p, "after_exclusion", src, x) for x in df["id"][over])
            for i, p in enumerate(SPLITS):
                idx = np.flatnonzero(kept & (w["split"] == i))
                fh = fhs[p]
                for s, e in zip(w["start"][idx].tolist(), w["end"][idx].tolist(), strict=True):
                    sub = seq[s:e]
                    fh.write(f">{contig}:{s}-{e}(+)\n{sub}\n")
                    if spec["both_strands"]:
                        fh.write(f">{contig}:{s}-{e}(-)\n{reverse_complement(sub)}\n")
                strands = 2 if spec["both_strands"] else 1
                stats[p]["n_windows"] += idx.size * strands
                stats[p]["nt"] += int((w["end"][idx] - w["start"][idx]).sum()) * strands
            bar.update(len(seq))
        bar.close()
        names = sorted(seen)
        check_contig_lists({corpus: spec}, lambda s: names if s == sample else None)
        summary = pd.DataFrame([{"sample": sample, "split": p, **stats[p]} for p in SPLITS])
        with atomic_write(out["summary"]) as fh:
            summary.to_csv(fh, sep="\t", index=False)
        with atomic_write(out["contigs"]) as fh:
            pd.DataFrame(contig_rows).to_csv(fh, sep="\t", index=False)
        overlaps = pd.DataFrame(sorted(hits), columns=["split", "stage", "source", "id"])
        overlaps.insert(0, "sample", sample)
        with atomic_write(out["overlaps"]) as fh:
            overlaps.to_csv(fh, sep="\t", index=False)
    for p in SPLITS:
        log.info("%s %s: %s", sample, p, stats[p])
    return summary


def parse_record_name(name: str) -> tuple[str, int, int, str]:
    """contig, start, end, strand of a window record name."""
    m = RECORD_RE.match(name.split(maxsplit=1)[0])
    if not m:
        raise InputFormatError(f"window record name {name!r} is not contig:start-end(strand)")
    return m["contig"], int(m["start"]), int(m["end"]), m["strand"]


def leakage_table(
    corpus: str,
    contigs: pd.DataFrame,
    overlaps: pd.DataFrame,
    sources: Mapping[str, pd.DataFrame],
    excluded_sources: Sequence[str],
) -> pd.DataFrame:
    """Per split and source of intervals (a task's test windows, or a BED file's regions):
    how many overlap a pretraining window of that split (train: before and after the
    exclusion), and how their contigs match the corpus's contigs (exact names)."""
    rows = []
    corpus_contigs = set(contigs["contig"].astype(str))
    for src, df in sources.items():
        is_task = src.startswith("task:")
        test = df[df["split"] == "test"] if is_task else df
        task_contigs = sorted(set(test["chrom"].astype(str)))
        on = test["chrom"].astype(str).isin(corpus_contigs)
        shared = sorted(set(task_contigs) & corpus_contigs)
        if shared:
            note = (
                f"exact contig names: {int(on.sum())} of {len(test)} on pretraining contig(s) "
                f"{', '.join(shared[:10])}"
            )
        else:
            listed = ", ".join(sorted(corpus_contigs)[:8])
            more = " ..." if len(corpus_contigs) > 8 else ""
            named = ", ".join(task_contigs[:10]) or "-"
            note = (
                f"0 possible: no pretraining contig is named {named} (exact contig names; "
                f"pretraining contigs: {listed}{more})"
            )
        ids = set(test["id"])
        for p in SPLITS:
            o = overlaps[(overlaps["source"] == src) & (overlaps["split"] == p)]
            o = o[o["id"].isin(ids)]
            before = o.loc[o["stage"] == "before_exclusion", "id"].nunique()
            after = o.loc[o["stage"] == "after_exclusion", "id"].nunique()
            rows.append(
                {
                    "corpus": corpus,
                    "split": p,
                    "source": src,
                    "windows": "test" if is_task else "all",
                    "n_windows": len(test),
                    "n_on_pretraining_contigs": int(on.sum()),
                    "overlapping_before_exclusion": before if p == "train" else pd.NA,
                    "overlapping": after,
                    "excluded_from_train": src in excluded_sources,
                    "contig_match": note,
                }
            )
    cols = [
        "corpus", "split", "source", "windows", "n_windows", "n_on_pretraining_contigs",
        "overlapping_before_exclusion", "overlapping", "excluded_from_train", "contig_match",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def load_exclusions(
    task_tables: Mapping[str, tuple[str | os.PathLike, bool]], beds: Sequence[str]
) -> dict[str, pd.DataFrame]:
    """Intervals to keep out of pretraining training data, by source: 'task:{name}' from a
    task's data.tsv (its chrom/start/end columns; value: (path, ends inclusive?)) and
    'bed:{path}' from each BED file. A task table without coordinates gives no intervals
    (logged)."""
    out: dict[str, pd.DataFrame] = {}
    for task, (path, inclusive) in task_tables.items():
        head = pd.read_csv(path, sep="\t", nrows=0).columns
        if not {"chrom", "start", "end"} <= set(head):
            log.warning(
                "%s: task %s has no chrom/start/end columns; nothing to exclude", path, task
            )
            continue
        df = pd.read_csv(
            path, sep="\t", usecols=["id", "split", "chrom", "start", "end"],
            dtype={"id": str, "chrom": str},
        )  # fmt: skip
        df = df.dropna(subset=["chrom", "start", "end"])
        for col in ("start", "end"):
            bad = pd.to_numeric(df[col], errors="coerce").isna()
            if bad.any():
                first = df[bad].iloc[0]
                raise InputFormatError(
                    f"{path}: task {task}, item {first['id']}: {col} {first[col]!r} is not an "
                    "integer; give chrom/start/end as BED coordinates (0-based start, end "
                    "exclusive) in the task's table, or leave the three columns out"
                )
        out[f"task:{task}"] = task_intervals(df, inclusive)
    for bed in beds:
        out[f"bed:{bed}"] = read_bed(bed)
    return out


def task_windows(
    task_data: str | os.PathLike,
    out: Mapping[str, str | os.PathLike],
    spec: Mapping[str, Any],
    fractions: Mapping[str, float],
    *,
    corpus: str,
) -> pd.DataFrame:
    """A task corpus (``source: task``): the sequences of the task's ``task_splits`` (read
    from its data.tsv: id, sequence, split), each cut into windows as a genome block is
    (:func:`window_starts`), each whole item sent to the corpus's train/validation/test by
    the hash of :func:`block_split` over (task, id) with ``splits.fractions``. So only
    sequences of the named task splits enter pretraining: a corpus of the training split
    never holds a window of the task's validation or test items. Records are
    ``{id}:{start}-{end}(+)`` (case kept). Writes out['train'|'validation'|'test'] and
    out['summary'] (per split: items, windows, nt; and the task splits read)."""
    df = pd.read_csv(
        task_data, sep="\t", usecols=["id", "sequence", "split"], dtype=str, keep_default_na=False
    )
    chosen = df[df["split"].isin(spec["task_splits"])]
    if chosen.empty:
        raise InputFormatError(
            f"{task_data}: corpora.{corpus}: task {spec['task']} has no items in the splits "
            f"{spec['task_splits']} (its splits: {sorted(set(df['split']))})"
        )
    stats = {p: dict.fromkeys(("n_items", "n_windows", "nt"), 0) for p in SPLITS}
    with contextlib.ExitStack() as stack:
        fhs = {p: stack.enter_context(atomic_write(out[p])) for p in SPLITS}
        for item, seq in zip(chosen["id"], chosen["sequence"], strict=True):
            part = block_split(spec["task"], item, 0, spec["seed"], fractions)
            starts, ends = window_starts(
                0, len(seq), spec["window"], spec["stride"], spec["min_length"]
            )
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                fhs[part].write(f">{item}:{s}-{e}(+)\n{seq[s:e]}\n")
            stats[part]["n_items"] += 1
            stats[part]["n_windows"] += starts.size
            stats[part]["nt"] += int((ends - starts).sum())
    summary = pd.DataFrame(
        [
            {"task": spec["task"], "task_splits": ",".join(spec["task_splits"]), "split": p}
            | stats[p]
            for p in SPLITS
        ]
    )
    with atomic_write(out["summary"]) as fh:
        summary.to_csv(fh, sep="\t", index=False)
    for p in SPLITS:
        log.info("task corpus %s %s: %s", corpus, p, stats[p])
    return summary
