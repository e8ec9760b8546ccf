"""The per-base TF-binding task of DNA-LLM (its chr22 windows and scores), or a user's own per-base
table (TSV) or BED intervals on a genome FASTA; windows are grouped so overlapping ones share
a split."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import open_text
from dnalm.core.log import progress_disabled
from dnalm.kinds.tasks import BUILTIN_TASKS
from dnalm.tasks.common import (
    DEFAULT_FRACTIONS,
    SPLITS,
    WINDOW_NAME,
    NormCounts,
    check_exists,
    check_fractions,
    log_norm,
    normalize_sequence,
    read_table,
    stable_u64,
    write_task,
)

log = logging.getLogger(__name__)


def parse_window_name(name: str) -> tuple[str, int, int] | None:
    """chrom, start, end from names like chr22_10510500_10510799 or chr22:100-400."""
    m = WINDOW_NAME.match(name)
    if not m:
        return None
    return m["chrom"], int(m["start"]), int(m["end"])


def group_windows(
    chrom: Sequence[str], start: np.ndarray, end: np.ndarray, distance: int = 0
) -> np.ndarray:
    """Group ids for closed intervals [start, end]: windows on one chromosome that overlap,
    abut, or are at most `distance` bp apart end up in one group (single-linkage over the
    position-sorted windows). Returns an int array aligned with the input."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    chrom_arr = np.asarray(chrom, dtype=object)
    order = sorted(range(len(start)), key=lambda i: (chrom_arr[i], start[i]))
    groups = np.empty(len(start), dtype=np.int64)
    gid, cur_chrom, cur_end = -1, None, 0
    for i in order:
        if chrom_arr[i] != cur_chrom or start[i] > cur_end + 1 + distance:
            gid += 1
            cur_chrom, cur_end = chrom_arr[i], end[i]
        else:
            cur_end = max(cur_end, end[i])
        groups[i] = gid
    return groups


def _hash_split(keys: Sequence[str], fractions: tuple[float, float, float], seed: int) -> list:
    f_train, f_val, _ = fractions
    out = []
    for k in keys:
        u = stable_u64(f"{seed}:{k}") / 2**64
        out.append("train" if u < f_train else "validation" if u < f_train + f_val else "test")
    return out


def _format_targets(mat_rows: Iterable[np.ndarray]) -> list[str]:
    # str(float) is the shortest text that reads back to the same float64
    return [",".join(map(str, r.tolist())) for r in mat_rows]


def _read_dnallm(sequences: Path, scores: Path, counts: NormCounts) -> tuple[pd.DataFrame, list]:
    """The DNA-LLM format: sequences TSV (sequence, window_name) + scores TSV whose column j
    (header = window name) holds the per-base scores of window j."""
    seq_df = read_table(sequences, ["sequence", "window_name"], "window sequences")
    names = seq_df["window_name"].str.strip().tolist()
    dup = pd.Series(names)[pd.Series(names).duplicated()]
    if len(dup):
        raise InputFormatError(f"{sequences}: window name {dup.iloc[0]!r} occurs twice")
    try:
        with open_text(scores) as fh:
            sc = pd.read_csv(fh, sep="\t", dtype=np.float64, engine="c")
    except ValueError as err:
        raise InputFormatError(f"{scores}: scores must be numbers ({err})") from err
    score_names = [str(c).strip() for c in sc.columns]
    sc.columns = score_names
    if len(set(score_names)) != len(score_names):
        first = pd.Series(score_names)[pd.Series(score_names).duplicated()].iloc[0]
        raise InputFormatError(f"{scores}: window name {first!r} occurs twice in the header")
    if score_names != names:
        missing = [n for n in names if n not in set(score_names)]
        extra = [n for n in score_names if n not in set(names)]
        if missing or extra:
            first = next(
                (j for j, (a, b) in enumerate(zip(names, score_names, strict=False)) if a != b),
                min(len(names), len(score_names)),
            )
            a = names[first] if first < len(names) else "<none>"
            b = score_names[first] if first < len(score_names) else "<none>"
            raise InputFormatError(
                f"window names differ between {sequences} and {scores}: first mismatch at window "
                f"{first + 1}: {a!r} (sequences, line {first + 2}) vs {b!r} (scores column "
                f"{first + 1}); {len(missing)} name(s) only in the sequences file, {len(extra)} "
                "only in the scores file"
            )
        log.info("%s: score columns are in a different order; matched by window name", scores)
    mat = sc[names].to_numpy(dtype=np.float64).T  # (W, L) one row per window
    nan = np.isnan(mat)
    # a shorter column is padded with NaN at the bottom: its length is up to the last number
    n_scores = np.where(nan.all(1), 0, mat.shape[1] - np.argmax(~nan[:, ::-1], axis=1))
    seqs = []
    rows = []
    for j, (raw, name) in enumerate(zip(seq_df["sequence"].tolist(), names, strict=True)):
        where = f"{sequences}:{j + 2} (window {name})"
        seq, n_iupac, n_u = normalize_sequence(raw, where, counts)
        if nan[j, : n_scores[j]].any():
            pos = int(np.argmax(nan[j, : n_scores[j]])) + 1
            raise InputFormatError(
                f"{scores}: window {name!r} (column {j + 1}) has a missing/NaN score at base "
                f"{pos} (line {pos + 1}); every base needs a number"
            )
        if n_scores[j] != len(seq):
            raise InputFormatError(
                f"window {name!r}: {n_scores[j]} score(s) in {scores} (column {j + 1}) but its "
                f"sequence ({where}) has {len(seq)} bases; they must be equal"
            )
        seqs.append(seq)
        rows.append(
            {
                "id": name,
                "sequence": seq,
                "source": str(sequences),
                "source_line": j + 2,
                "scores_source": str(scores),
                "scores_column": j + 1,
                "n_iupac_to_n": n_iupac,
                "n_u_to_t": n_u,
            }
        )
    df = pd.DataFrame.from_records(rows)
    targets = [mat[j, : n_scores[j]] for j in range(len(names))]
    coords = []
    for j, name in enumerate(names):
        c = parse_window_name(name)
        if c is None:
            raise InputFormatError(
                f"{sequences}:{j + 2}: window name {name!r} does not give a position "
                "(expected chrom_start_end, e.g. chr22_10510500_10510799); positions are "
                "needed to keep overlapping windows in one split"
            )
        coords.append(c)
    df["chrom"] = [c[0] for c in coords]
    df["start"] = [c[1] for c in coords]
    df["end"] = [c[2] for c in coords]  # as in the name (inclusive: end - start + 1 = length)
    return df, targets


def _parse_targets(text: str, where: str) -> np.ndarray:
    try:
        arr = np.array([float(x) for x in text.split(",")], dtype=np.float64)
    except ValueError as err:
        raise InputFormatError(f"{where}: targets must be comma-separated numbers ({err})") from err
    if np.isnan(arr).any():
        pos = int(np.argmax(np.isnan(arr))) + 1
        raise InputFormatError(f"{where}: NaN target at base {pos}; every base needs a number")
    return arr


def _read_pb_tsv(path: Path, counts: NormCounts) -> tuple[pd.DataFrame, list, bool]:
    """Generic per-base TSV/CSV: sequence, targets (+ optional id, chrom, start, end with BED
    conventions: 0-based start, end exclusive, default end = start + length)."""
    df = read_table(path, ["sequence", "targets"], "per-base targets")
    has_pos = "chrom" in df.columns and "start" in df.columns
    rows, targets = [], []
    for i, r in enumerate(df.to_dict("records")):
        where = f"{path}:{i + 2}"
        seq, n_iupac, n_u = normalize_sequence(r["sequence"], where, counts)
        t = _parse_targets(str(r["targets"]), where)
        if len(t) != len(seq):
            raise InputFormatError(
                f"{where}: {len(t)} target(s) for a sequence of {len(seq)} bases; need one per base"
            )
        rec = {k: v for k, v in r.items() if k not in ("sequence", "targets")}
        rec.update(
            id=str(r.get("id") or f"row{i + 2}"),
            sequence=seq,
            source=str(path),
            source_line=i + 2,
            n_iupac_to_n=n_iupac,
            n_u_to_t=n_u,
        )
        if has_pos:
            try:
                start = int(r["start"])
                end = int(r["end"]) if str(r.get("end", "")).strip() else start + len(seq)
            except ValueError as err:
                raise InputFormatError(f"{where}: start/end must be integers ({err})") from err
            rec.update(chrom=str(r["chrom"]), start=start, end=end)
        rows.append(rec)
        targets.append(t)
    return pd.DataFrame.from_records(rows), targets, has_pos


def _read_pb_bed(
    bed: Path, genome: Path, scores: Path, counts: NormCounts
) -> tuple[pd.DataFrame, list]:
    """BED (chrom, start, end, name[, score, strand]) + genome FASTA (pyfaidx) + scores TSV
    (name<TAB>comma-separated scores, in the 5'->3' order of the reported sequence, i.e.
    already reversed for '-' strand windows, whose sequence is reverse-complemented)."""
    import pyfaidx  # lazy: pyfaidx loads only for a BED + genome input

    check_exists([genome])
    score_by_name: dict[str, tuple[str, int]] = {}
    with open_text(scores) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise InputFormatError(
                    f"{scores}:{lineno}: expected 2 TAB-separated fields (name, comma-separated "
                    f"scores), found {len(parts)}"
                )
            if lineno == 1 and parts[0].strip().lower() == "name":
                continue
            if parts[0] in score_by_name:
                raise InputFormatError(f"{scores}:{lineno}: name {parts[0]!r} occurs twice")
            score_by_name[parts[0]] = (parts[1], lineno)
    try:
        fa = pyfaidx.Fasta(str(genome), as_raw=True, rebuild=False)
    except Exception as err:  # pyfaidx raises several types for unreadable/unindexable files
        raise InputFormatError(
            f"{genome}: cannot open the genome FASTA with pyfaidx ({err}); use an uncompressed "
            "or bgzip-compressed FASTA in a writable folder (for its .fai index)"
        ) from err
    rows, targets = [], []
    with fa, open_text(bed) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\r\n").split("\t")
            where = f"{bed}:{lineno}"
            if len(f) < 4:
                raise InputFormatError(
                    f"{where}: BED needs at least 4 columns (chrom, start, end, name), "
                    f"found {len(f)}"
                )
            chrom, name = f[0], f[3]
            try:
                start, end = int(f[1]), int(f[2])
            except ValueError as err:
                raise InputFormatError(f"{where}: start/end must be integers") from err
            if chrom not in fa:
                raise InputFormatError(f"{where}: chromosome {chrom!r} not in {genome}")
            if not (0 <= start < end <= len(fa[chrom])):
                raise InputFormatError(
                    f"{where}: interval {chrom}:{start}-{end} outside the chromosome "
                    f"(length {len(fa[chrom])})"
                )
            seq, n_iupac, n_u = normalize_sequence(fa[chrom][start:end], where, counts)
            strand = f[5] if len(f) > 5 else "+"
            if strand == "-":
                seq = reverse_complement(seq)
            if name not in score_by_name:
                raise InputFormatError(f"{where}: window {name!r} has no scores in {scores}")
            text, sline = score_by_name[name]
            t = _parse_targets(text, f"{scores}:{sline} (window {name})")
            if len(t) != len(seq):
                raise InputFormatError(
                    f"{scores}:{sline}: window {name!r} has {len(t)} score(s) but its interval "
                    f"({where}) is {len(seq)} bases; they must be equal"
                )
            rows.append(
                {
                    "id": name,
                    "sequence": seq,
                    "chrom": chrom,
                    "start": start,
                    "end": end,
                    "strand": strand,
                    "source": str(bed),
                    "source_line": lineno,
                    "scores_source": str(scores),
                    "scores_line": sline,
                    "n_iupac_to_n": n_iupac,
                    "n_u_to_t": n_u,
                }
            )
            targets.append(t)
    if not rows:
        raise InputFormatError(f"{bed}: no intervals")
    return pd.DataFrame.from_records(rows), targets


def build_tf_binding(
    out_dir: str | os.PathLike,
    sequences: str | os.PathLike,
    scores: str | os.PathLike | None = None,
    fmt: str = "dnallm",
    genome: str | os.PathLike | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    group_distance: int = 0,
) -> pd.DataFrame:
    """A per-base regression task (e.g. TF binding scores along each window).

    Formats (`fmt`):
      - ``dnallm``: `sequences` = TSV with header ``sequence<TAB>window_name``; `scores` = TSV
        with one column per window (header = window names, same set as `sequences`), one row
        per base. Window names give positions: ``chrom_start_end`` (end inclusive).
      - ``tsv``: `sequences` = CSV/TSV with ``sequence`` and ``targets`` (comma-separated, one
        per base), optional ``id``, ``chrom``, ``start``, ``end`` (BED conventions). Without
        chrom/start rows are grouped by identical sequence only (a warning says so).
      - ``bed``: `sequences` = BED with a name column (strand in column 6 optional),
        `genome` = FASTA read with pyfaidx, `scores` = TSV ``name<TAB>scores``.

    The split groups windows that overlap, abut or lie within `group_distance` bp and assigns
    each group by a seeded hash of its first window's position, with `fractions` =
    (train, validation, test); validation is for early stopping, test is used once."""
    fr = check_fractions(fractions)
    if fmt not in ("dnallm", "tsv", "bed"):
        raise ConfigError(f"tf_binding: unknown format {fmt!r}; use dnallm, tsv or bed")
    if group_distance < 0:
        raise ConfigError(f"tf_binding: group_distance must be >= 0, got {group_distance}")
    seq_path = Path(sequences)
    inputs = [seq_path]
    counts = NormCounts()
    has_pos = True
    if fmt == "dnallm":
        if scores is None:
            raise ConfigError("tf_binding: the dnallm format needs a scores file")
        inputs.append(Path(scores))
        check_exists(inputs)
        df, targets = _read_dnallm(seq_path, Path(scores), counts)
        closed_end = df["end"].to_numpy()
    elif fmt == "tsv":
        check_exists(inputs)
        df, targets, has_pos = _read_pb_tsv(seq_path, counts)
        closed_end = df["end"].to_numpy() - 1 if has_pos else None
    else:
        if scores is None or genome is None:
            raise ConfigError("tf_binding: the bed format needs a scores file and a genome FASTA")
        inputs += [Path(scores), Path(genome)]
        check_exists(inputs)
        df, targets = _read_pb_bed(seq_path, Path(genome), Path(scores), counts)
        closed_end = df["end"].to_numpy() - 1
    log_norm(counts, str(seq_path))

    if has_pos:
        groups = group_windows(df["chrom"].tolist(), df["start"].to_numpy(), closed_end,
                               group_distance)  # fmt: skip
        first = df.groupby(groups, sort=True).agg(chrom=("chrom", "first"), start=("start", "min"))
        gkeys = [f"{c}:{s}" for c, s in zip(first["chrom"], first["start"], strict=True)]
        ends = pd.Series(closed_end).groupby(groups, sort=True).max().to_numpy()
        glabel = [f"{k}-{e}" for k, e in zip(gkeys, ends, strict=True)]
    else:
        log.warning(
            "%s: no chrom/start columns, so windows cannot be grouped by position; rows with "
            "identical sequences share a split, but overlapping windows may straddle splits",
            seq_path,
        )
        uniq, groups = np.unique(df["sequence"].to_numpy(), return_inverse=True)
        gkeys = list(uniq)
        glabel = [f"seq{g}" for g in range(len(uniq))]
    gsplit = np.array(_hash_split(gkeys, fr, seed), dtype=object)
    df["split"] = gsplit[groups]
    df["group"] = np.array(glabel, dtype=object)[groups]
    df["targets"] = _format_targets(tqdm(targets, desc="targets", disable=progress_disabled()))
    df["n_nonzero_targets"] = [int(np.count_nonzero(t)) for t in targets]
    df["target_sum"] = [float(t.sum()) for t in targets]
    for split in SPLITS:
        if fr[SPLITS.index(split)] > 0 and not (df["split"] == split).any():
            log.warning("tf_binding: the %s split is empty (too few position groups)", split)
    params = {
        "task": "tf_binding",
        "format": fmt,
        "fractions": list(fr),
        "seed": seed,
        "group_distance": group_distance,
        "grouped_by_position": has_pos,
        "n_groups": len(gkeys),
    }
    kind = BUILTIN_TASKS.get("tf_binding").kind
    return write_task(out_dir, df, kind, params, inputs)
