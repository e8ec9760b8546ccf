"""Read coding-sequence models (one per transcript) from a GFF3 or GTF annotation.

Only what CDS extraction needs is kept: for every transcript, the genomic intervals of its
coding sequence in transcription order, the phase of the 5'-most segment, and a few names.

Format rules implemented here (checked against the shared sacCer3 chrIV GTF in tests):

* **Dialect.** The attribute syntax of column 9 decides: ``key "value";`` is GTF,
  ``key=value`` GFF3 (a warning when it disagrees with a ``.gtf``/``.gff3``/``.gff`` name);
  when no line shows either, the name (``.gz`` ignored), then ``##gff-version 3``.
* **Grouping.** GTF: CDS rows are grouped by ``transcript_id`` (required). GFF3: by
  ``Parent`` (a CDS row with several parents belongs to each), or by ``ID`` when there is no
  ``Parent``. A GFF3 ``##FASTA`` section ends the annotation.
* **Stop codons.** GTF (2.2, Ensembl, GENCODE, UCSC) CDS rows *exclude* the stop codon; the
  ``stop_codon`` rows are added back (only the bases not already covered by a CDS row, so a
  GTF that does include the stop is not doubled, and a stop codon split by an intron works).
  GFF3 CDS rows include the stop codon.
* **Phase.** The phase (column 8) of the 5'-most segment is the number of bases to skip to
  reach the first complete codon; a non-zero phase marks the CDS 5'-partial.
* **Flags.** ``pseudo=true`` (NCBI GFF3), ``partial=true``/``start_range``/``end_range``
  (NCBI), ``tag "cds_start_NF"``/``tag "cds_end_NF"`` (GENCODE GTF) mark pseudo/partial CDS.
* **Duplicate rows.** A CDS or ``stop_codon`` row that repeats an earlier row of the same
  transcript (same sequence, interval, strand and phase) is dropped, with one warning per
  file naming the first such line.
* **Overlaps.** CDS rows of one transcript that overlap by one or two bases are *not*
  merged (NCBI encodes a -1/-2 ribosomal frameshift as two CDS rows that share a base or
  two); segments are concatenated as given, in transcription order. Rows that overlap by
  :data:`MAX_FRAMESHIFT_OVERLAP` + 1 bases or more (a duplicated row shifted by a codon, two
  transcripts' rows under one ``transcript_id``) cannot make one coding sequence: the model
  gets the problem ``overlapping_rows`` and its CDS is dropped as ``overlapping_segments``.

Coordinates in :class:`CdsModel` are 0-based half-open, like Python slices.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from dnalm.core.errors import InputFormatError
from dnalm.core.io import open_text

log = logging.getLogger(__name__)

_GTF_ATTR = re.compile(r'\s*([^\s";]+)\s+(?:"((?:[^"\\]|\\.)*)"|([^\s";]+))\s*;?')


@dataclass
class CdsModel:
    """The coding sequence of one transcript, as annotated."""

    transcript_id: str
    seqid: str
    strand: str  # "+" or "-"
    segments: list[tuple[int, int]]  # 0-based half-open, in transcription order (5' -> 3')
    phase: int = 0  # bases to skip at the 5' end of the first segment
    gene_id: str = ""
    gene_name: str = ""
    product: str = ""
    protein_id: str = ""
    pseudo: bool = False
    partial5: bool = False
    partial3: bool = False
    line: int = 0  # line of the first CDS row of this transcript
    stop_codon_added: bool = False  # GTF: stop_codon rows contributed bases
    problems: list[str] = field(default_factory=list)  # e.g. "mixed_strand"

    @property
    def start(self) -> int:
        return min(s for s, _ in self.segments)

    @property
    def end(self) -> int:
        return max(e for _, e in self.segments)

    @property
    def length(self) -> int:
        return sum(e - s for s, e in self.segments)

    def location_string(self) -> str:
        """INSDC-style 1-based location, e.g. ``complement(join(10..20,30..40))``."""
        parts = sorted(self.segments)
        body = ",".join(f"{s + 1}..{e}" for s, e in parts)
        if len(parts) > 1:
            body = f"join({body})"
        return f"complement({body})" if self.strand == "-" else body


#: The largest overlap (bases) of two CDS rows of one transcript that is read as a
#: programmed frameshift (-1 or -2) and kept; a larger one flags the CDS ``overlapping_rows``.
MAX_FRAMESHIFT_OVERLAP = 2


#: Feature lines whose column 9 is looked at to tell GTF from GFF3.
SNIFF_LINES = 1000


def _sniff_attributes(path: str | os.PathLike) -> str | None:
    """``"gtf"`` or ``"gff3"`` from the attribute syntax of column 9 (``key "value";`` or
    ``key=value``) of the first feature lines that show one, else None."""
    with open_text(path) as fh:
        seen = 0
        for line in fh:
            if line.startswith("##FASTA"):
                break
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) != 9:
                continue
            attrs = cols[8].strip()
            if re.match(r'^[^\s=;"]+\s+"', attrs):
                return "gtf"
            if re.match(r"^[^\s=;]+=", attrs):
                return "gff3"
            seen += 1
            if seen >= SNIFF_LINES:
                break
    return None


def detect_format(path: str | os.PathLike) -> str:
    """Return ``"gtf"`` or ``"gff3"`` for an annotation file: by the attribute syntax of
    column 9 (``key "value";`` is GTF, ``key=value`` GFF3), else by the name. When the
    content disagrees with the name (GTF content in a ``.gff3`` file), the content wins and
    a warning says so."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    by_name = None
    if name.endswith(".gtf"):
        by_name = "gtf"
    elif name.endswith((".gff3", ".gff")):
        by_name = "gff3"
    by_content = _sniff_attributes(path)
    if by_content is not None:
        if by_name is not None and by_name != by_content:
            log.warning(
                "%s: the name says %s but column 9 has %s attribute syntax (%s); reading it as %s",
                path,
                by_name.upper(),
                by_content.upper(),
                'key "value";' if by_content == "gtf" else "key=value",
                by_content.upper(),
            )
        return by_content
    if by_name is not None:
        return by_name
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if line.startswith("##gff-version 3"):
                return "gff3"
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) != 9:
                raise InputFormatError(
                    f"{path}:{lineno}: expected 9 tab-separated columns (GFF3/GTF), found "
                    f"{len(cols)}; is this an annotation file?"
                )
            attrs = cols[8].strip()
            if re.match(r'^[^\s=;"]+\s+"', attrs):
                return "gtf"
            if re.match(r"^[^\s=;]+=", attrs):
                return "gff3"
            break
    raise InputFormatError(
        f"{path}: cannot tell GFF3 from GTF (no '##gff-version 3', no recognisable column 9); "
        "name the file .gff3 or .gtf"
    )


def _parse_gtf_attrs(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in _GTF_ATTR.finditer(text):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        out.setdefault(m.group(1), []).append(value)
    return out


def _parse_gff3_attrs(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in text.strip().strip(";").split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            continue
        out[unquote(key)] = [unquote(v) for v in value.split(",")]
    return out


def _first(attrs: dict[str, list[str]], *keys: str) -> str:
    for key in keys:
        values = attrs.get(key)
        if values and values[0]:
            return values[0]
    return ""


def _truthy(attrs: dict[str, list[str]], key: str) -> bool:
    return any(v.lower() in ("true", "yes", "1", "") for v in attrs.get(key, []))


def _subtract(interval: tuple[int, int], covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Parts of `interval` not covered by any interval in `covered`."""
    pieces = [interval]
    for cs, ce in covered:
        nxt = []
        for s, e in pieces:
            if ce <= s or cs >= e:
                nxt.append((s, e))
                continue
            if s < cs:
                nxt.append((s, cs))
            if ce < e:
                nxt.append((ce, e))
        pieces = nxt
    return pieces


def _merge_abutting(segments: list[tuple[int, int]], minus: bool) -> list[tuple[int, int]]:
    """Join segments that touch end to start (a CDS row and its GTF stop codon); segments
    that overlap are kept apart (ribosomal slippage repeats the shared base)."""
    ordered = sorted(segments)
    out = [ordered[0]]
    for s, e in ordered[1:]:
        if s == out[-1][1]:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out[::-1] if minus else out


@dataclass
class _Group:
    seqid: str
    strand: str
    line: int
    cds: list[tuple[int, int, int]] = field(default_factory=list)  # (start0, end, phase)
    stops: list[tuple[int, int]] = field(default_factory=list)
    attrs: dict[str, list[str]] = field(default_factory=dict)
    strands: set[str] = field(default_factory=set)
    seqids: set[str] = field(default_factory=set)
    rows: set[tuple] = field(default_factory=set)  # (ftype, seqid, start0, end, strand, phase)


def iter_rows(path: str | os.PathLike) -> Iterator[tuple[int, list[str]]]:
    """(line number, the 9 columns) of every feature line of a GFF3/GTF file, up to a
    ``##FASTA`` section; InputFormatError names the file and line of a malformed row."""
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            if raw.startswith("##FASTA"):
                break
            if raw.startswith("#") or not raw.strip():
                continue
            cols = raw.rstrip("\r\n").split("\t")
            if len(cols) != 9:
                raise InputFormatError(
                    f"{path}:{lineno}: expected 9 tab-separated columns, found {len(cols)} "
                    "(GFF3/GTF columns must be separated by tabs, not spaces)"
                )
            yield lineno, cols


def read_cds_models(path: str | os.PathLike, fmt: str | None = None) -> list[CdsModel]:
    """Parse `path` (GFF3 or GTF, gzip or plain) into one :class:`CdsModel` per transcript
    that has CDS rows, in file order. Raises InputFormatError naming the file and line for
    malformed rows."""
    fmt = fmt or detect_format(path)
    if fmt not in ("gtf", "gff3"):
        raise ValueError(f"unknown annotation format {fmt!r}")
    gtf = fmt == "gtf"
    groups: dict[str, _Group] = {}
    features: dict[str, dict[str, list[str]]] = {}  # GFF3 ID -> attributes (for names)
    n_rows = 0
    duplicates: list[tuple[int, str]] = []  # (line, transcript) of exact duplicate rows
    for lineno, cols in iter_rows(path):
        n_rows += 1
        ftype = cols[2]
        attrs = _parse_gtf_attrs(cols[8]) if gtf else _parse_gff3_attrs(cols[8])
        if not gtf and "ID" in attrs and ftype != "CDS":
            features.setdefault(attrs["ID"][0], attrs)
        if ftype not in ("CDS", "stop_codon"):
            continue
        if ftype == "stop_codon" and not gtf:
            continue  # GFF3 CDS rows already include the stop codon
        try:
            start, end = int(cols[3]), int(cols[4])
        except ValueError:
            raise InputFormatError(
                f"{path}:{lineno}: start/end {cols[3]!r}/{cols[4]!r} are not integers"
            ) from None
        if start < 1 or end < start:
            raise InputFormatError(
                f"{path}:{lineno}: invalid interval {start}..{end} (1-based, start <= end)"
            )
        strand = cols[6]
        if strand not in ("+", "-"):
            raise InputFormatError(
                f"{path}:{lineno}: {ftype} row with strand {strand!r}; CDS need + or -"
            )
        phase = int(cols[7]) if cols[7] in ("0", "1", "2") else 0
        if gtf:
            keys = attrs.get("transcript_id", [])
            if not keys:
                raise InputFormatError(
                    f"{path}:{lineno}: GTF {ftype} row without transcript_id; every CDS "
                    "row of a GTF needs gene_id and transcript_id"
                )
        else:
            keys = attrs.get("Parent") or attrs.get("ID") or []
            if not keys:
                raise InputFormatError(
                    f"{path}:{lineno}: GFF3 CDS row without Parent or ID; cannot tell "
                    "which transcript it belongs to"
                )
        for key in keys:
            grp = groups.get(key)
            if grp is None:
                grp = groups[key] = _Group(seqid=cols[0], strand=strand, line=lineno)
            row_key = (ftype, cols[0], start - 1, end, strand, phase)
            if row_key in grp.rows:
                duplicates.append((lineno, key))
                continue
            grp.rows.add(row_key)
            grp.seqids.add(cols[0])
            grp.strands.add(strand)
            if ftype == "CDS":
                grp.cds.append((start - 1, end, phase))
                for k, v in attrs.items():
                    grp.attrs.setdefault(k, v)
                if "tag" in attrs:
                    grp.attrs["tag"] = sorted(set(grp.attrs["tag"]) | set(attrs["tag"]))
                for k in ("pseudo", "partial", "start_range", "end_range"):
                    if k in attrs:
                        grp.attrs[k] = attrs[k]
            else:
                grp.stops.append((start - 1, end))
    if n_rows == 0:
        raise InputFormatError(f"{path}: no annotation rows (empty or only comments)")
    if duplicates:
        log.warning(
            "%s: %d CDS/stop_codon row(s) repeat an earlier row of the same transcript and "
            "were dropped (first at line %d, transcript %s); remove the duplicated lines",
            path,
            len(duplicates),
            duplicates[0][0],
            duplicates[0][1],
        )
    models = []
    for key, grp in groups.items():
        if not grp.cds:
            continue
        models.append(_build_model(key, grp, gtf, features))
    return models


def _build_model(
    key: str, grp: _Group, gtf: bool, features: dict[str, dict[str, list[str]]]
) -> CdsModel:
    minus = grp.strand == "-"
    cds = sorted(grp.cds, key=lambda r: r[0], reverse=minus)  # transcription order
    segments = [(s, e) for s, e, _ in cds]
    added = False
    if grp.stops:
        covered = [(s, e) for s, e, _ in cds]
        extra = [p for stop in grp.stops for p in _subtract(stop, covered)]
        if extra:
            added = True
            segments = sorted(segments + extra, key=lambda r: r[0], reverse=minus)
    segments = _merge_abutting(segments, minus)
    attrs = grp.attrs
    parent_attrs: dict[str, list[str]] = {}
    grand_attrs: dict[str, list[str]] = {}
    if not gtf:
        parent_attrs = features.get(key, {})
        grand = _first(parent_attrs, "Parent")
        grand_attrs = features.get(grand, {}) if grand else {}
    tags = set(attrs.get("tag", []))
    model = CdsModel(
        transcript_id=key,
        seqid=grp.seqid,
        strand=grp.strand,
        segments=segments,
        phase=cds[0][2],
        gene_id=_first(attrs, "gene_id", "locus_tag")
        or _first(parent_attrs, "locus_tag")
        or _first(grand_attrs, "locus_tag", "gene_id", "ID"),
        gene_name=_first(attrs, "gene_name", "gene")
        or _first(parent_attrs, "gene")
        or _first(grand_attrs, "gene", "Name", "gene_name"),
        product=_first(attrs, "product") or _first(parent_attrs, "product"),
        protein_id=_first(attrs, "protein_id"),
        pseudo=_truthy(attrs, "pseudo")
        or _truthy(parent_attrs, "pseudo")
        or _truthy(grand_attrs, "pseudo"),
        line=grp.line,
        stop_codon_added=added,
    )
    model.partial5 = cds[0][2] != 0 or "cds_start_NF" in tags
    model.partial3 = "cds_end_NF" in tags
    if "start_range" in attrs or "end_range" in attrs:
        # NCBI: start_range/end_range mark the genomic left/right end as open.
        left = "start_range" in attrs
        right = "end_range" in attrs
        if minus:
            left, right = right, left
        model.partial5 |= left
        model.partial3 |= right
    elif _truthy(attrs, "partial"):
        model.partial5 = model.partial3 = True  # partial=true without ranges: end unknown
    if len(grp.seqids) > 1:
        model.problems.append("mixed_seqid")
    if len(grp.strands) > 1:
        model.problems.append("mixed_strand")
    if _overlap(grp.cds) > MAX_FRAMESHIFT_OVERLAP:
        model.problems.append("overlapping_rows")
    return model


def _overlap(cds: list[tuple[int, int, int]]) -> int:
    """The largest number of bases two CDS rows (start0, end, phase) share."""
    ordered = sorted((s, e) for s, e, _ in cds)
    most, reach = 0, None
    for s, e in ordered:
        if reach is not None:
            most = max(most, min(reach, e) - s)
        reach = e if reach is None else max(reach, e)
    return most


# --------------------------------------------------------------------------- other features

#: Annotation feature types that :func:`read_feature_rows` keeps, and the name each gets in
#: the genome feature table (``UTR``, GTF 2.2's and GENCODE's unsided UTR, is resolved to a
#: side from the transcript's CDS by :mod:`dnalm.genome.features`).
FEATURE_TYPES: dict[str, str] = {
    "gene": "gene",
    "exon": "exon",
    "five_prime_UTR": "five_prime_UTR",
    "five_prime_utr": "five_prime_UTR",
    "5UTR": "five_prime_UTR",
    "three_prime_UTR": "three_prime_UTR",
    "three_prime_utr": "three_prime_UTR",
    "3UTR": "three_prime_UTR",
    "UTR": "UTR",
}


@dataclass
class FeatureRow:
    """One gene, exon or UTR row of an annotation; 0-based half-open."""

    seqid: str
    start: int
    end: int
    strand: str  # "+", "-" (rows without a strand are not returned)
    type: str  # a value of FEATURE_TYPES
    name: str
    transcript: str = ""  # the transcript (GTF transcript_id, GFF3 Parent) of exons and UTRs
    line: int = 0


def read_feature_rows(path: str | os.PathLike, fmt: str | None = None) -> list[FeatureRow]:
    """The gene, exon and UTR rows of a GFF3 or GTF (gzip or plain), in file order, for the
    genome feature table (CDS intervals come from :func:`read_cds_models`, which folds GTF
    stop codons in). A GTF without ``gene`` rows (GTF 2.2) gets one gene per ``gene_id``
    spanning all its rows. Rows without a + or - strand are skipped with one warning."""
    fmt = fmt or detect_format(path)
    gtf = fmt == "gtf"
    rows: list[FeatureRow] = []
    spans: dict[str, list] = {}  # GTF gene_id -> [seqid, start, end, strand, name, line]
    has_gene_rows = False
    unstranded = 0
    for lineno, cols in iter_rows(path):
        ftype = FEATURE_TYPES.get(cols[2])
        if ftype is None and not gtf:
            continue
        try:
            start, end = int(cols[3]) - 1, int(cols[4])
        except ValueError:
            raise InputFormatError(
                f"{path}:{lineno}: start/end {cols[3]!r}/{cols[4]!r} are not integers"
            ) from None
        if start < 0 or end <= start:
            raise InputFormatError(
                f"{path}:{lineno}: invalid interval {cols[3]}..{cols[4]} (1-based, start <= end)"
            )
        strand = cols[6]
        attrs = _parse_gtf_attrs(cols[8]) if gtf else _parse_gff3_attrs(cols[8])
        if gtf and strand in ("+", "-"):
            gid = _first(attrs, "gene_id")
            if gid:
                span = spans.get(gid)
                name = _first(attrs, "gene_name") or gid
                if span is None:
                    spans[gid] = [cols[0], start, end, strand, name, lineno]
                elif span[0] == cols[0]:
                    span[1], span[2] = min(span[1], start), max(span[2], end)
        if ftype is None:
            continue
        if strand not in ("+", "-"):
            unstranded += 1
            continue
        if ftype == "gene":
            has_gene_rows = True
            name = (
                _first(attrs, "gene_name", "gene_id")
                if gtf
                else _first(attrs, "Name", "gene", "locus_tag", "ID")
            )
            transcript = ""
        else:
            transcript = _first(attrs, "transcript_id") if gtf else _first(attrs, "Parent", "ID")
            name = transcript
        rows.append(FeatureRow(cols[0], start, end, strand, ftype, name, transcript, lineno))
    if gtf and not has_gene_rows:
        for seqid, start, end, strand, name, lineno in spans.values():
            rows.append(FeatureRow(seqid, start, end, strand, "gene", name, "", lineno))
    if unstranded:
        log.warning(
            "%s: %d gene/exon/UTR rows without a + or - strand left out of the feature table",
            path,
            unstranded,
        )
    return rows
