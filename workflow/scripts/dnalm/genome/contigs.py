"""The genome sequence of a sample, one record per contig: read from any format that has one
(GBFF records, a genome FASTA of ``fasta`` or ``fasta_gff``), written as the per-sample genome
FASTA ``results/genome/{sample}/genome.fa.gz`` with its contig table ``contigs.tsv``, and read
back by the stages built on it (genome corpora, gene calling, feature tables).

The interface other stages code against:

``genome.fa.gz``
    gzip FASTA, one record per contig in source order, header ``>{contig}`` and nothing
    else, 80 nt per line. The contig name is the GBFF record's ``id`` (``NC_002737.1``; see
    :func:`dnalm.genome.gbff.iter_records`) or the first word of the FASTA header. Case is
    kept as in the source, so soft-masked repeats stay lower case (GBFF sequences are upper
    case: GenBank's lower-case ORIGIN carries no masking and Biopython upper-cases it). U is
    written as T; IUPAC ambiguity codes are kept. Empty records are left out with a warning.
``contigs.tsv``
    ``contig, length, n_count, lower_fraction``: one row per record of the FASTA, same
    order; ``n_count`` counts N/n, ``lower_fraction`` the share of lower-case bases.

``cds_fasta`` samples have no genome: asking for one is a SampleSheetError.
"""

from __future__ import annotations

import logging
import os
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dnalm.core.errors import InputFormatError, SampleSheetError
from dnalm.core.io import atomic_write, open_text, read_fasta, remove_stale_parts, write_fasta
from dnalm.core.letters import IUPAC
from dnalm.core.log import progress_disabled
from dnalm.genome.cds_record import BAD_CHAR
from dnalm.genome.gbff import iter_records
from dnalm.kinds.formats import GENOME_FORMATS, SAMPLE_FORMATS

log = logging.getLogger(__name__)

#: Columns of contigs.tsv.
CONTIG_COLUMNS: tuple[str, ...] = ("contig", "length", "n_count", "lower_fraction")


_LOWER = string.ascii_lowercase.encode()
_U_TO_T = str.maketrans("Uu", "Tt")


def iter_fasta_checked(path: str | os.PathLike, sample: str = "") -> Iterator[tuple[str, str, int]]:
    """Yield (header, sequence, header_line) like :func:`dnalm.core.io.read_fasta`, but raise
    InputFormatError naming file, line and column for any non-IUPAC character."""
    who = f"sample {sample}: " if sample else ""
    header = None
    hline = 0
    chunks: list[str] = []
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith(">"):
                if header is not None:
                    yield header, "".join(chunks), hline
                header, hline, chunks = line[1:].strip(), lineno, []
                continue
            if line.startswith(";"):
                continue
            text = "".join(line.split())
            if not text:
                continue
            if header is None:
                raise InputFormatError(
                    f"{who}{path}:{lineno}: sequence data before the first '>' header; is this "
                    "a FASTA file?"
                )
            bad = BAD_CHAR.search(text)
            if bad:
                col = line.find(bad.group()) + 1
                raise InputFormatError(
                    f"{who}{path}:{lineno}:{col}: character {bad.group()!r} is not an IUPAC "
                    f"nucleotide code (allowed: {IUPAC}, any case). A protein FASTA or an "
                    "alignment with gaps is not valid here; fix or remove that line"
                )
            chunks.append(text)
    if header is not None:
        yield header, "".join(chunks), hline


def iter_named_fasta(path: str | os.PathLike, sample: str = "") -> Iterator[tuple[str, str, int]]:
    """(name, sequence, header line) of every record of a genome FASTA, checked as
    :func:`iter_fasta_checked`; the name is the first word of the header and must be
    non-empty and unique (InputFormatError naming file and line)."""
    names: dict[str, int] = {}
    for header, seq, hline in iter_fasta_checked(path, sample):
        name = header.split()[0] if header.split() else ""
        if not name:
            raise InputFormatError(f"sample {sample}: {path}:{hline}: empty FASTA header")
        if name in names:
            raise InputFormatError(
                f"sample {sample}: {path}:{hline}: sequence name {name!r} repeats line "
                f"{names[name]}; contig names (first word of the header) must be unique"
            )
        names[name] = hline
        yield name, seq, hline


def no_genome_error(sample: str, fmt: str = "cds_fasta") -> SampleSheetError:
    return SampleSheetError(
        f"sample {sample} has format {fmt}: it has no genome sequence (no genome FASTA, "
        f"features or gene calling); give its genome as {', '.join(GENOME_FORMATS[:-1])} or "
        f"{GENOME_FORMATS[-1]} instead"
    )


def _gbff_contigs(path: Path, sample: str) -> Iterator[tuple[str, str]]:
    """Non-empty GBFF records (the others are left out with a warning), U as T."""
    # lazy: Biopython (~0.2 s) stays out of the DAG build, which imports this package
    from Bio.Seq import UndefinedSequenceError

    for label, record in iter_records(path, sample):
        try:
            seq = str(record.seq)
        except UndefinedSequenceError:
            raise InputFormatError(
                f"sample {sample}: {path}: record {label} has no sequence (CONTIG/WGS "
                "master record?); download the GenBank file with sequence"
            ) from None
        bad = BAD_CHAR.search(seq)
        if bad:
            raise InputFormatError(
                f"sample {sample}: {path}: record {label}: character {bad.group()!r} at "
                f"position {bad.start() + 1} is not an IUPAC nucleotide code"
            )
        if not seq:
            log.warning("sample %s: %s: record %s is empty; left out", sample, path, label)
            continue
        yield label, seq.translate(_U_TO_T)


def _gbff_contig_names(path: Path, sample: str) -> list[str]:

    return [label for label, _ in iter_records(path, sample)]


def _fasta_contigs(path: Path, sample: str) -> Iterator[tuple[str, str]]:
    """Non-empty FASTA records (the others are left out with a warning), U as T."""
    for name, seq, hline in iter_named_fasta(path, sample):
        if not seq:
            log.warning("sample %s: %s:%d: record %s is empty; left out", sample, path, hline, name)
            continue
        yield name, seq.translate(_U_TO_T)


def _fasta_contig_names(path: Path, sample: str) -> list[str]:
    names = []
    with open_text(path) as fh:
        for line in fh:
            if line.startswith(">"):
                words = line[1:].split()
                if words:
                    names.append(words[0])
    return names


#: genome reader by the file it reads (dnalm.kinds.formats.SampleFormat.genome): the
#: (contig name, sequence) of every non-empty record, and the contig names alone
GENOME_READERS: dict[str, tuple[Callable[[Path, str], Iterator[tuple[str, str]]], Callable]] = {
    "gbff": (_gbff_contigs, _gbff_contig_names),
    "fasta": (_fasta_contigs, _fasta_contig_names),
}


def _genome_reader(fmt: str, sample: str) -> str:
    """The genome reader of format `fmt`; SampleSheetError for a format without a genome."""
    if fmt not in GENOME_FORMATS:
        raise no_genome_error(sample, fmt)
    return SAMPLE_FORMATS.get(fmt).genome


def iter_contigs(fmt: str, path: str | os.PathLike, sample: str) -> Iterator[tuple[str, str]]:
    """(contig name, sequence) of every non-empty record of a sample's genome file, case kept.
    `fmt` is the sheet's format (gbff, fasta_gff or fasta). Raises InputFormatError naming
    the file and line for repeated or empty names, no records, or a GBFF without sequence."""
    path = Path(path)
    read = GENOME_READERS[_genome_reader(fmt, sample)][0]
    n = 0
    for name, seq in read(path, sample):
        n += 1
        yield name, seq
    if n == 0:
        raise InputFormatError(
            f"sample {sample}: {path}: no genome sequence (no non-empty records)"
        )


def contig_names(fmt: str, path: str | os.PathLike, sample: str) -> list[str]:
    """The contig names of a sample's genome file, as :func:`iter_contigs` names them, without
    keeping sequences: FASTA header lines only; GBFF record labels. Used to check contig
    lists in the config before any job runs."""
    return GENOME_READERS[_genome_reader(fmt, sample)][1](Path(path), sample)


@dataclass(frozen=True)
class ContigStats:
    contig: str
    length: int
    n_count: int
    lower_fraction: float

    @classmethod
    def of(cls, name: str, seq: str) -> ContigStats:
        raw = seq.encode("ascii")
        lower = len(raw) - len(raw.translate(None, _LOWER))
        n = raw.count(b"N") + raw.count(b"n")
        return cls(name, len(raw), n, round(lower / len(raw), 6) if raw else 0.0)


def write_genome(
    sample: str,
    fmt: str,
    source: str | os.PathLike,
    fasta_out: str | os.PathLike,
    tsv_out: str | os.PathLike,
) -> list[ContigStats]:
    """Write the genome FASTA and contig table of one sample (module docstring), each
    atomically; returns the table's rows."""
    for out in (fasta_out, tsv_out):
        remove_stale_parts(out)
    stats: list[ContigStats] = []
    from tqdm import tqdm  # lazy: tqdm (~0.1 s) stays out of `dnalm cds`, which writes no genome

    with atomic_write(fasta_out) as fh:
        bar = tqdm(desc=f"{sample}: contigs", unit=" contigs", disable=progress_disabled())
        for name, seq in iter_contigs(fmt, source, sample):
            write_fasta(fh, [(name, seq)])
            stats.append(ContigStats.of(name, seq))
            bar.update(1)
        bar.close()
    with atomic_write(tsv_out) as fh:
        fh.write("\t".join(CONTIG_COLUMNS) + "\n")
        for s in stats:
            fh.write(f"{s.contig}\t{s.length}\t{s.n_count}\t{s.lower_fraction}\n")
    total = sum(s.length for s in stats)
    log.info(
        "sample %s: %d contigs, %d bp, %d N, %.1f%% lower case",
        sample,
        len(stats),
        total,
        sum(s.n_count for s in stats),
        100 * sum(s.lower_fraction * s.length for s in stats) / total if total else 0.0,
    )
    return stats


def read_genome_fasta(path: str | os.PathLike) -> Iterator[tuple[str, str]]:
    """(contig, sequence) of a genome FASTA written by :func:`write_genome`, case kept."""
    for header, seq, _ in read_fasta(path):
        yield header.split()[0], seq


def read_contig_table(path: str | os.PathLike) -> list[ContigStats]:
    """The rows of a contigs.tsv written by :func:`write_genome`."""
    rows = []
    with open_text(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        if tuple(header) != CONTIG_COLUMNS:
            raise InputFormatError(
                f"{path}: header {header} is not {list(CONTIG_COLUMNS)}; not a contig table"
            )
        for line in fh:
            name, length, n_count, lower = line.rstrip("\n").split("\t")
            rows.append(ContigStats(name, int(length), int(n_count), float(lower)))
    return rows
