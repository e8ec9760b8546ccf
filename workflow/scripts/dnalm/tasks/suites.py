"""Tasks of public benchmark suites (Genomic Benchmarks, the Nucleotide Transformer
downstream tasks, GUE, a plain CSV folder) as ordinary sequence classification tasks.

Each task of a ``suites`` config entry is a folder ``<source>/<task>`` in the suite's own
layout (:mod:`dnalm.kinds.suites` declares each format's files and official metric). The
readers ``read_<format>`` turn its files into rows with the suite's own train/test split
(and its validation split where it has one); :func:`build_suite_task` writes the task as
every sequence task is written (:func:`dnalm.tasks.sequence.write_sequence_task`), carving
validation from the suite's train split with the entry's share and seed where the suite
has none, and records the suite, its format, revision and official metric in task.json.

Genomic Benchmarks stores most sets as coordinates, as its ``loc2seq`` resolves them: one
``train/<class>.csv.gz`` and ``test/<class>.csv.gz`` per class of ``metadata.yaml`` with
the columns ``id, region, start, end, strand``; the sequence is the Python slice
``contig[start:end]`` of the region's record (0-based start, end exclusive), reverse
complemented on strand ``-``; the record name is the first word of its FASTA header, with
``chr`` put in front for ``extra_processing: ENSEMBL_HUMAN_GENOME`` or
``ENSEMBL_MOUSE_GENOME`` and the version cut from ENST ids for
``ENSEMBL_HUMAN_TRANSCRIPTOME``. The genome is the one each class's ``url`` names
(downloaded through the data stage's downloader by the rule download_task_file), or a
FASTA given by the entry's ``genome`` key.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dnalm.core.errors import InputFormatError
from dnalm.core.io import read_unique_fasta, read_yaml
from dnalm.core.letters import reverse_complement
from dnalm.kinds.suites import SUITE_FORMATS
from dnalm.kinds.tasks import BUILTIN_TASKS, TASK_KINDS
from dnalm.tasks.common import NormCounts, log_norm, normalize_sequence, read_table
from dnalm.tasks.sequence import write_sequence_task

log = logging.getLogger(__name__)

#: Genomic Benchmarks' coordinate columns, in its order
GB_COLUMNS = ("id", "region", "start", "end", "strand")
#: metadata.yaml ``extra_processing`` -> the record-name transform loc2seq applies
GB_NAME_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "ENSEMBL_HUMAN_GENOME": lambda name: "chr" + name,
    "ENSEMBL_MOUSE_GENOME": lambda name: "chr" + name,
    "ENSEMBL_HUMAN_TRANSCRIPTOME": lambda name: re.sub(r"ENST([0-9]*)[.][0-9]*", r"ENST\1", name),
}


# ----------------------------------------------------------------------------- layout


def gb_metadata(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The classes of a Genomic Benchmarks metadata.yaml: class -> {url, type,
    extra_processing}. InputFormatError names the file and what is wrong."""
    path = Path(path)
    meta = read_yaml(path)
    classes = meta.get("classes") if isinstance(meta, Mapping) else None
    if not isinstance(classes, Mapping) or len(classes) < 2:
        raise InputFormatError(
            f"{path}: a Genomic Benchmarks metadata.yaml needs `classes:` with at least two "
            "classes, each with `url` (its reference genome) and `type: fa.gz`"
        )
    out = {}
    for name, spec in classes.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("url"), str):
            raise InputFormatError(
                f"{path}: class {name!r} has no `url` of its reference genome; add "
                "`url: <FASTA URL>` under classes.{name}"
            )
        if spec.get("type", "fa.gz") != "fa.gz":
            raise InputFormatError(
                f"{path}: class {name!r} has reference type {spec.get('type')!r}; only fa.gz "
                "(a gzipped FASTA) is read, as loc2seq does"
            )
        extra = spec.get("extra_processing")
        if extra is not None and extra not in GB_NAME_TRANSFORMS:
            raise InputFormatError(
                f"{path}: class {name!r} has extra_processing {extra!r}, which loc2seq does "
                f"not define (known: {', '.join(GB_NAME_TRANSFORMS)}); remove it if the "
                "genome's record names already match the `region` column"
            )
        out[str(name)] = {"url": spec["url"], "type": "fa.gz", "extra_processing": extra}
    return out


def suite_files(fmt: str, folder: str | os.PathLike) -> dict[str, Path]:
    """The files of one suite task folder by key (``metadata``, ``train__<class>`` for
    Genomic Benchmarks; the suite's split names otherwise), each checked to exist.
    InputFormatError names the missing file and the layout the format needs."""
    desc = SUITE_FORMATS.get(fmt)
    folder = Path(folder)
    files: dict[str, Path] = {}
    for rel in desc.files:
        files[rel.split(".")[0]] = folder / rel
    for rel in desc.optional_files:
        if (folder / rel).is_file():
            files[rel.split(".")[0]] = folder / rel
    if fmt == "genomic_benchmarks" and (folder / "metadata.yaml").is_file():
        files = {"metadata": folder / "metadata.yaml"}
        for cls in gb_metadata(folder / "metadata.yaml"):
            for split in ("train", "test"):
                files[f"{split}__{cls}"] = folder / split / f"{cls}.csv.gz"
    if fmt == "genomic_benchmarks":
        layout = (
            "metadata.yaml and train/<class>.csv.gz, test/<class>.csv.gz for every class "
            "metadata.yaml names"
        )
    else:
        layout = ", ".join(desc.files)
        if desc.optional_files:
            layout += f" (and optionally {', '.join(desc.optional_files)})"
    for path in files.values():
        if not path.is_file():
            raise InputFormatError(
                f"{path}: missing; a {fmt} task folder holds {layout} ({desc.summary}); "
                "check the suite's source and the task name"
            )
    return files


# ----------------------------------------------------------------------------- readers


def _row(seq: str, label: str, split: str, where: str, counts: NormCounts, **extra) -> dict:
    sequence, n_iupac, n_u = normalize_sequence(seq, where, counts)
    source, _, line = where.rpartition(":")
    return {
        **extra,
        "sequence": sequence,
        "label": label,
        "preset": split,
        "source": source,
        "source_line": line,
        "n_iupac_to_n": n_iupac,
        "n_u_to_t": n_u,
    }


def _split_files(fmt: str, files: Mapping[str, Path]) -> list[tuple[Path, str]]:
    return [(files[k], ours) for k, ours in SUITE_FORMATS.get(fmt).splits if k in files]


def _read_label_tables(fmt: str, files: Mapping[str, Path], counts: NormCounts) -> list[dict]:
    rows = []
    for path, split in _split_files(fmt, files):
        df = read_table(path, ["sequence", "label"], f"{fmt} {split}")
        for i, r in enumerate(df.to_dict("records")):
            label = str(r["label"]).strip()
            if not label:
                raise InputFormatError(f"{path}:{i + 2}: empty label; give the row's class")
            rows.append(_row(r["sequence"], label, split, f"{path}:{i + 2}", counts))
    return rows


def read_gue(files: Mapping[str, Path], genomes: Mapping[str, Path], counts: NormCounts):
    """GUE: train.csv, dev.csv (our validation) and test.csv with ``sequence,label``."""
    return _read_label_tables("gue", files, counts)


def read_csv(files: Mapping[str, Path], genomes: Mapping[str, Path], counts: NormCounts):
    """A plain folder: train.csv, test.csv, optional dev.csv with ``sequence,label``."""
    return _read_label_tables("csv", files, counts)


def read_nt_downstream(files: Mapping[str, Path], genomes: Mapping[str, Path], counts: NormCounts):
    """NT downstream: train.parquet and test.parquet with ``sequence`` and ``label`` (and
    ``name``, kept as the item's name)."""
    rows = []
    for path, split in _split_files("nt_downstream", files):
        try:
            df = pd.read_parquet(path)
        except Exception as err:  # pyarrow's errors have no common base
            raise InputFormatError(
                f"{path}: not a readable Parquet file ({err}); download the task's "
                f"{split}.parquet again"
            ) from err
        missing = [c for c in ("sequence", "label") if c not in df.columns]
        if missing:
            raise InputFormatError(
                f"{path}: missing column(s) {missing} (found {list(df.columns)}); an NT "
                "downstream file has `sequence` and `label`"
            )
        for i, r in enumerate(df.to_dict("records")):
            where = f"{path}:{i + 1}"  # row number (parquet has no lines)
            name = {"name": str(r["name"])} if "name" in r and r["name"] is not None else {}
            rows.append(_row(str(r["sequence"]), str(r["label"]), split, where, counts, **name))
    return rows


def _coordinates(where: str, r: Mapping[str, Any]) -> tuple[str, int, int, str]:
    """(region, start, end, strand) of one row, checked but for the record's length."""
    region, strand = str(r["region"]), str(r["strand"]).strip()
    try:
        start, end = int(r["start"]), int(r["end"])
    except ValueError:
        raise InputFormatError(
            f"{where}: start {r['start']!r} / end {r['end']!r} are not integers"
        ) from None
    if strand not in ("+", "-"):
        raise InputFormatError(f"{where}: strand {strand!r}; write + or -")
    if not 0 <= start < end:
        raise InputFormatError(f"{where}: start {start} / end {end}; need 0 <= start < end")
    return region, start, end, strand


def _cut(genome: Path, extra: str | None, items: Mapping[str, list[tuple]]) -> dict[tuple, str]:
    """The sequences of `items` ({region: [(key, where, start, end, strand)]}) cut from the
    FASTA `genome`, one record in memory at a time (a human chromosome, not the genome)."""
    transform = GB_NAME_TRANSFORMS[extra] if extra else (lambda name: name)
    out: dict[tuple, str] = {}
    seen = set()
    for name, record, _ in read_unique_fasta(genome):
        region = transform(name)
        if region not in items:
            continue
        seen.add(region)
        n = len(record)
        for key, where, start, end, strand in items[region]:
            if end > n:
                raise InputFormatError(
                    f"{where}: [{start}, {end}) is not within {region} (length {n}, 0-based "
                    "start, end exclusive); this row does not belong to this reference "
                    "genome: check metadata.yaml's url or remove the row"
                )
            seq = record[start:end]
            out[key] = reverse_complement(seq) if strand == "-" else seq
    for region in sorted(set(items) - seen):
        where = items[region][0][1]
        raise InputFormatError(
            f"{where}: region {region!r} is not a record of the reference {genome}; check "
            "metadata.yaml's url and extra_processing (or the suite's `genome`)"
        )
    return out


def read_genomic_benchmarks(
    files: Mapping[str, Path], genomes: Mapping[str, Path], counts: NormCounts
) -> list[dict]:
    """Genomic Benchmarks coordinates resolved against the reference genome(s) (see the
    module docstring); `genomes` maps each class's ``url`` to its local FASTA."""
    classes = gb_metadata(files["metadata"])
    records: list[tuple[str, str, str, dict, tuple]] = []  # split, class, where, row, coords
    # (genome, extra_processing) -> region -> the rows cut from it
    wanted: dict[tuple[Path, str | None], dict[str, list[tuple]]] = {}
    for cls in classes:
        genome = (Path(genomes[classes[cls]["url"]]), classes[cls]["extra_processing"])
        for split in ("train", "test"):
            path = files[f"{split}__{cls}"]
            df = read_table(path, list(GB_COLUMNS), "Genomic Benchmarks")
            for i, r in enumerate(df.to_dict("records")):
                where = f"{path}:{i + 2}"
                region, start, end, strand = coords = _coordinates(where, r)
                item = (len(records), where, start, end, strand)
                wanted.setdefault(genome, {}).setdefault(region, []).append(item)
                records.append((split, cls, where, r, coords))
    seqs: dict[int, str] = {}
    for (genome, extra), items in wanted.items():
        seqs.update(_cut(genome, extra, items))
    rows = []
    for k, (split, cls, where, r, (region, start, end, strand)) in enumerate(records):
        rows.append(
            _row(
                seqs[k],
                cls,
                split,
                where,
                counts,
                name=f"{cls}_{split}_{r['id']}",
                region=region,
                start=start,
                end=end,
                strand=strand,
            )
        )
    return rows


READERS = {
    "genomic_benchmarks": read_genomic_benchmarks,
    "nt_downstream": read_nt_downstream,
    "gue": read_gue,
    "csv": read_csv,
}


def build_suite_task(
    out_dir: str | os.PathLike,
    spec: Mapping[str, Any],
    genomes: Mapping[str, str | os.PathLike] | None = None,
) -> pd.DataFrame:
    """Write the task of one suite task folder. `spec` (dnalm.plan.suites): suite, format,
    task, folder, files (by key, as suite_files names them), metric, revision, source,
    validation, seed. `genomes`: each reference URL
    of a Genomic Benchmarks metadata.yaml -> its local FASTA."""
    fmt = spec["format"]
    # the plan's files (a suite given as a URL: the downloads); else the folder's
    files = (
        {k: Path(v) for k, v in spec["files"].items()}
        if spec.get("files")
        else suite_files(fmt, spec["folder"])
    )
    counts = NormCounts()
    rows = READERS[fmt](files, {k: Path(v) for k, v in (genomes or {}).items()}, counts)
    log_norm(counts, f"suite {spec['suite']} task {spec['task']}")
    kind = BUILTIN_TASKS.get("suites").kind
    if spec["metric"] not in TASK_KINDS.get(kind).metrics:
        raise InputFormatError(f"suite metric {spec['metric']!r} is not a {kind} metric")
    validation = float(spec["validation"])
    params = {
        "task": "suite",
        "suite": {k: spec[k] for k in ("suite", "format", "task", "source", "revision", "metric")},
        "fractions": [1.0 - validation, validation, 0.0],
        "seed": int(spec["seed"]),
    }
    return write_sequence_task(
        out_dir,
        rows,
        kind,
        (1.0 - validation, validation, 0.0),
        int(spec["seed"]),
        params,
        list(files.values()) + [Path(p) for p in (genomes or {}).values()],
    )
