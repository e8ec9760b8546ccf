"""The genome feature table of a sample, ``results/genome/{sample}/features.tsv``: the
annotated (or gene-called) features on the contigs of ``genome.fa.gz``
(:mod:`dnalm.genome.contigs`), for stages that cut genome regions (exons, CDS, UTRs,
upstream of genes, intergenic).

Columns ``contig, start, end, strand, type, name``: 0-based half-open intervals, strand + or
-, one row per interval (a spliced or origin-spanning feature has one row per part), sorted
by contig name, start, end and type. Types and where they come from:

* **gbff** (Biopython, :func:`dnalm.genome.gbff.iter_records`): ``gene`` and ``CDS``
  features; ``exon`` from the record's exon features, else the parts of its mRNA features,
  else the parts of its CDS (a prokaryote's gene is one exon); ``five_prime_UTR`` /
  ``three_prime_UTR`` from 5'UTR/3'UTR features. Name: locus_tag, else gene, else
  protein_id, else ``{record}_cds{k}`` / ``{record}_gene{k}`` (the k-th CDS or gene of the
  record, as CDS extraction names CDS without ids). Parts on other records and features
  Biopython could not locate are left out.
* **fasta_gff** (:mod:`dnalm.genome.gff`): ``CDS`` from :func:`read_cds_models` (so GTF
  stop_codon rows are folded in exactly as for CDS extraction; named by transcript), and
  ``gene``/``exon``/UTR rows from :func:`read_feature_rows` (a GTF without gene rows gets
  one gene per gene_id; a GTF ``UTR`` row is 5' or 3' by its side of the transcript's CDS).
  Annotation sequence ids that match a contig only with or without a ``chr`` prefix are
  renamed to the contig's name, as CDS extraction does.
* **gene calling** (``annotate``): one ``gene`` and one ``CDS`` row per called gene, named
  by its CDS id, read from the sample's CDS table (rows with ``evidence`` predicted).
* **fasta** without ``annotate``: no features, a header-only table.

Every interval is checked against the contig table: an unknown contig or an interval past a
contig's end is an InputFormatError naming the file (and line, for GFF/GTF).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write, open_text, remove_stale_parts
from dnalm.genome.cds_record import NO_ID
from dnalm.genome.contigs import no_genome_error
from dnalm.genome.gbff import iter_records
from dnalm.genome.gff import read_cds_models, read_feature_rows
from dnalm.kinds.formats import GENOME_FORMATS, SAMPLE_FORMATS

log = logging.getLogger(__name__)

FEATURE_COLUMNS: tuple[str, ...] = ("contig", "start", "end", "strand", "type", "name")
#: Feature types in the order rows of equal position are sorted.
TYPES: tuple[str, ...] = ("gene", "exon", "five_prime_UTR", "CDS", "three_prime_UTR")


@dataclass(frozen=True, order=True)
class Feature:
    contig: str
    start: int
    end: int
    strand: str
    type: str
    name: str

    def sort_key(self) -> tuple:
        return (self.contig, self.start, self.end, TYPES.index(self.type), self.strand, self.name)


def _gbff_features(path: Path, sample: str) -> list[Feature]:
    out: list[Feature] = []
    utr = {"5'UTR": "five_prime_UTR", "3'UTR": "three_prime_UTR"}
    for label, record in iter_records(path, sample):
        refs_ok = {record.id, record.name, record.id.split(".")[0], label} - NO_ID
        kinds = {f.type for f in record.features}
        exon_source = "exon" if "exon" in kinds else "mRNA" if "mRNA" in kinds else "CDS"
        counts: dict[str, int] = {}
        for feat in record.features:
            wanted = []
            if feat.type in ("gene", "CDS"):
                wanted.append(feat.type)
            if feat.type == exon_source:
                wanted.append("exon")
            if feat.type in utr:
                wanted.append(utr[feat.type])
            if not wanted or feat.location is None:
                continue
            q = feat.qualifiers
            counts[feat.type] = counts.get(feat.type, 0) + 1
            name = next(
                (q[k][0] for k in ("locus_tag", "gene", "protein_id") if q.get(k)),
                f"{label}_{feat.type.lower()}{counts[feat.type]}",
            )
            for part in feat.location.parts:
                if (part.ref and part.ref not in refs_ok) or part.strand not in (1, -1):
                    continue
                strand = "+" if part.strand == 1 else "-"
                for ftype in wanted:
                    out.append(Feature(label, int(part.start), int(part.end), strand, ftype, name))
    return out


def _alias(seqid: str, lengths: Mapping[str, int], cache: dict[str, str | None]) -> str | None:
    if seqid in lengths:
        return seqid
    if seqid not in cache:
        other = seqid[3:] if seqid.startswith("chr") else "chr" + seqid
        cache[seqid] = other if other in lengths else None
    return cache[seqid]


def _gff_features(
    ann_path: Path, sample: str, lengths: Mapping[str, int]
) -> list[tuple[Feature, int]]:
    """(feature, annotation line) of every CDS part, gene, exon and UTR row."""
    models = read_cds_models(ann_path)
    spans = {m.transcript_id: (m.start, m.end) for m in models}
    out: list[tuple[Feature, int]] = []
    cache: dict[str, str | None] = {}
    unknown: dict[str, int] = {}

    def contig(seqid: str, line: int) -> str | None:
        name = _alias(seqid, lengths, cache)
        if name is None:
            unknown.setdefault(seqid, line)
        return name

    for m in models:
        name = contig(m.seqid, m.line)
        if name is None or m.problems:
            continue
        for s, e in m.segments:
            out.append((Feature(name, s, e, m.strand, "CDS", m.transcript_id), m.line))
    for row in read_feature_rows(ann_path):
        name = contig(row.seqid, row.line)
        if name is None:
            continue
        ftype = row.type
        if ftype == "UTR":
            span = spans.get(row.transcript)
            if span is None:
                continue  # a UTR of a transcript without CDS: no side
            left = row.end <= span[0]
            ftype = "five_prime_UTR" if left == (row.strand == "+") else "three_prime_UTR"
        out.append((Feature(name, row.start, row.end, row.strand, ftype, row.name), row.line))
    for seqid, target in cache.items():
        if target is not None:
            log.warning(
                "sample %s: annotation sequence id %r matched contig %r", sample, seqid, target
            )
    if unknown:
        seqid, line = next(iter(unknown.items()))
        shown = ", ".join(list(lengths)[:5]) + (", ..." if len(lengths) > 5 else "")
        raise InputFormatError(
            f"sample {sample}: {ann_path}:{line}: sequence id {seqid!r} is not a contig of the "
            f"genome (its contigs: {shown}); use the annotation of the same assembly"
        )
    return out


def _predicted_features(cds_table: Path) -> list[Feature]:
    import pandas as pd  # lazy: pandas (~0.5 s) only for samples with called genes

    df = pd.read_csv(
        cds_table, sep="\t", dtype={"cds_id": str, "record": str}, keep_default_na=False
    )
    if "evidence" not in df.columns:
        raise InputFormatError(f"{cds_table}: no evidence column; not a CDS table of dnalm")
    out = []
    for row in df[df["evidence"] == "predicted"].itertuples(index=False):
        start, end = int(row.start) - 1, int(row.end)
        for ftype in ("gene", "CDS"):
            out.append(Feature(row.record, start, end, row.strand, ftype, row.cds_id))
    return out


#: feature reader by the file it reads (dnalm.kinds.formats.SampleFormat.features), called as
#: (path, sample, contig lengths) -> [(feature, annotation line or None)]: gbff - the
#: features of the GenBank source; gff - the rows of the GFF3/GTF in the annotation column
FEATURE_READERS: dict[str, Callable[..., list[tuple[Feature, int | None]]]] = {
    "gbff": lambda path, sample, lengths: [(f, None) for f in _gbff_features(path, sample)],
    "gff": _gff_features,
}


def genome_features(
    sample: str,
    fmt: str,
    lengths: Mapping[str, int],
    source: str | os.PathLike | None = None,
    annotation: str | os.PathLike | None = None,
    annotate: str = "",
    cds_table: str | os.PathLike | None = None,
) -> list[Feature]:
    """The sorted features of one sample (module docstring). `lengths`: contig -> length
    (from contigs.tsv); `source`: the GBFF (format gbff); `annotation`: the GFF3/GTF
    (fasta_gff); `cds_table`: the sample's CDS table (with `annotate`)."""
    if fmt not in GENOME_FORMATS:
        raise no_genome_error(sample, fmt)
    reader = SAMPLE_FORMATS.get(fmt).features
    lines: dict[Feature, int] = {}
    if annotate:
        if cds_table is None:
            raise ValueError("a gene-called sample's features come from its CDS table")
        feats = _predicted_features(Path(cds_table))
        where = Path(cds_table)
    elif reader is not None:
        where = Path(annotation if SAMPLE_FORMATS.get(fmt).annotation else source)
        pairs = FEATURE_READERS[reader](where, sample, lengths)
        feats = [f for f, _ in pairs]
        lines = {f: line for f, line in pairs if line is not None}
    else:
        feats, where = [], None
    for f in feats:
        length = lengths.get(f.contig)
        line = f":{lines[f]}" if f in lines else ""
        if length is None:
            raise InputFormatError(
                f"sample {sample}: {where}{line}: {f.type} {f.name} is on {f.contig!r}, which "
                f"is not a contig of the genome ({', '.join(list(lengths)[:5])})"
            )
        if f.end > length:
            raise InputFormatError(
                f"sample {sample}: {where}{line}: {f.type} {f.name} ends at {f.end}, past the "
                f"end of {f.contig} ({length} bp); annotation and genome differ?"
            )
    feats = sorted(set(feats), key=Feature.sort_key)
    counts = {t: sum(f.type == t for f in feats) for t in TYPES}
    log.info(
        "sample %s: %d features (%s)",
        sample,
        len(feats),
        ", ".join(f"{t} {n}" for t, n in counts.items() if n) or "no annotation",
    )
    return feats


def write_features(features: Iterable[Feature], out: str | os.PathLike) -> None:
    remove_stale_parts(out)
    with atomic_write(out) as fh:
        fh.write("\t".join(FEATURE_COLUMNS) + "\n")
        for f in features:
            fh.write(f"{f.contig}\t{f.start}\t{f.end}\t{f.strand}\t{f.type}\t{f.name}\n")


def read_features(path: str | os.PathLike) -> list[Feature]:
    """The rows of a features.tsv written by :func:`write_features`."""
    out = []
    with open_text(path) as fh:
        header = tuple(fh.readline().rstrip("\n").split("\t"))
        if header != FEATURE_COLUMNS:
            raise InputFormatError(f"{path}: header {list(header)} is not {list(FEATURE_COLUMNS)}")
        for line in fh:
            c, s, e, strand, t, name = line.rstrip("\n").split("\t")
            out.append(Feature(c, int(s), int(e), strand, t, name))
    return out
