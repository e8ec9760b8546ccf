"""CDS extraction: from an annotated genome to one FASTA of coding sequences per sample, with a
QC table that accounts for every annotated CDS (kept or dropped, and why).

Three input formats (the sample sheet's ``format`` column):

``gbff``
    GenBank flat file(s), gzip or plain, any number of records. Each ``CDS`` feature is
    extracted with Biopython (joins, ``complement``, mixed-strand trans-splicing, and joins
    across the origin of a circular record such as ``join(3981..5386,1..136)``), then
    trimmed by ``/codon_start``. Features that cannot be extracted are skipped with a warning
    naming the record, the feature's index and its locus_tag/gene: a location Biopython could
    not parse (``None``), a join into another record (``AL121804.2:40..610``), an ``order()``
    or imprecise location (``one-of``, ``(1.5)``; policy ``fuzzy_location``), a location past
    the record's end, or a record without sequence (CONTIG/WGS master records).
``fasta_gff``
    Genome FASTA (gzip, bgzip or plain) + GFF3 or GTF (see :mod:`dnalm.gff` for grouping,
    phase and the GTF stop-codon rule). The FASTA is streamed once: validated (IUPAC DNA
    only) and written uncompressed, upper-case and with uniform line width into a temporary
    directory (``tmpdir``; :func:`run_cds` uses the output folder), where pyfaidx indexes it
    for random access; plain gzip cannot be indexed by pyfaidx and the source folder may be
    read-only, so this copy is always made, then deleted. A sequence id of the annotation
    that is not in the FASTA is an error (a ``chr`` prefix present on one side only is
    tolerated, with a warning).
``cds_fasta``
    CDS already extracted (Ensembl ``*.cds.all.fa``, NCBI ``*.ffn``/``cds_from_genomic.fna``).
    The first word of each header is the CDS id (a repeated id gets a ``_2``, ``_3`` suffix
    and a warning); NCBI bracket tags ``[transl_table=N]``, ``[pseudo=true]``,
    ``[partial=...]``, ``[locus_tag=...]``, ``[gene=...]``, ``[protein=...]`` are honoured.

All sequences are upper-cased and U is read as T. IUPAC ambiguity codes are allowed and
counted (``n_ambiguous``); any other character is an :class:`InputFormatError` naming the
file, line and character.

**Genetic code** (column ``genetic_code``), highest priority first:

1. the sample sheet's ``genetic_code``, when given, for every CDS of the sample;
2. ``/transl_table`` of the feature (gbff), ``[transl_table=N]`` in the header (cds_fasta);
3. the default: 11 when the record is bacterial or archaeal (first taxonomy term Bacteria,
   Eubacteria, Archaea, Archaebacteria) or a plastid (source ``/organelle`` starting with
   ``plastid``/``chloroplast``, or ``chloroplast``/``plastid`` in the DEFINITION line);
   otherwise 1. For a mitochondrion (``/organelle="mitochondrion..."`` or DEFINITION) code 1
   is used with a warning, because mitochondrial codes vary (2 vertebrates, 3 yeasts, 4
   moulds, 5 invertebrates, ...): set ``genetic_code`` in the sheet. Phages without
   ``/transl_table`` get 1 by this rule (the translation is the same as 11; only
   alternative start codons differ). For fasta_gff without a sheet value: 1.

**QC** per CDS (codons read in frame from the first base after codon_start/phase):
``start_codon_ok`` (first codon is a start codon of the genetic code, Bio.Data.CodonTable),
``stop_codon_ok`` (length divisible by 3 and the last codon is a stop), ``len_div3``,
``internal_stop`` (a stop codon before the last codon, ignoring ``/transl_except`` sites
such as selenocysteine), ``translation_match`` (gbff with ``/translation`` only: the
translation with the CDS's genetic code, first codon read as M when it is a start codon,
``/transl_except`` applied and the terminal stop removed, equals ``/translation``; empty
when there is no ``/translation``), ``gc`` (G+C over unambiguous bases).

**Drop policy** (:class:`DropPolicy`). Every CDS gets a list of ``issues``; its ``status``
is ``kept`` or the first issue, in :data:`REASONS` order, that the policy drops. CDS without
a usable sequence are always dropped (:data:`ALWAYS_DROP`). Of the others, by default
``pseudo``, ``partial`` (``<``/``>`` ends, codon_start/phase > 1, NCBI/GENCODE partial
tags), ``fuzzy_location``, ``not_div3`` and ``internal_stop`` are dropped: a language model
of coding sequence should see complete, in-frame reading frames. ``no_start``, ``no_stop``,
``translation_mismatch``, ``ambiguous`` and ``too_short`` (``min_length``) are only flagged
unless the config adds them. Known limits: a ``/transl_except`` TERM that completes a stop
codon by polyadenylation (some mitochondria) is not applied, so such CDS are ``not_div3``.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import gzip
import logging
import os
import re
import shutil
import tempfile
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnalm.errors import ConfigError, InputFormatError, SampleSheetError
from dnalm.io import (
    HEAD_BYTES,
    atomic_path,
    atomic_write,
    content_problem,
    open_text,
    remove_stale_parts,
    write_fasta,
)

log = logging.getLogger(__name__)

FORMATS = ("gbff", "fasta_gff", "cds_fasta")

#: Reasons a CDS has no usable sequence: always dropped.
ALWAYS_DROP: tuple[str, ...] = (
    "unparseable_location",
    "remote_join",
    "out_of_bounds",
    "no_sequence",
    "invalid_codon_start",
    "unknown_genetic_code",
    "inconsistent_segments",
    "empty",
)
#: Reasons the drop policy may or may not drop.
OPTIONAL_REASONS: tuple[str, ...] = (
    "pseudo",
    "partial",
    "fuzzy_location",
    "not_div3",
    "internal_stop",
    "no_start",
    "no_stop",
    "translation_mismatch",
    "ambiguous",
    "too_short",
)
#: All reasons in priority order: a CDS's status is the first one that applies and is dropped.
REASONS: tuple[str, ...] = ALWAYS_DROP + OPTIONAL_REASONS
DEFAULT_DROP: frozenset[str] = frozenset(
    {"pseudo", "partial", "fuzzy_location", "not_div3", "internal_stop"}
)

#: One drop reason that removes more than this share of a sample's CDS is warned about
#: (the config's cds.max_drop_fraction turns a large share into an error).
HIGH_DROP_FRACTION = 0.2
#: The likely fix when one reason drops many CDS of a sample.
DROP_HINTS: dict[str, str] = {
    "internal_stop": (
        "set genetic_code in the sample sheet (the default code reads this genome's sense "
        "codons as stops; e.g. 4 for Mycoplasma/Spiroplasma, where TGA is Trp)"
    ),
    "no_stop": "set genetic_code in the sample sheet (the stop codons differ)",
    "no_start": "set genetic_code in the sample sheet (the start codons differ)",
    "translation_mismatch": "set genetic_code in the sample sheet (/translation disagrees)",
    "not_div3": "check that the annotation belongs to this genome and that format is right",
    "partial": "use a more complete assembly, or remove partial from cds.drop",
    "pseudo": "use another annotation, or remove pseudo from cds.drop",
    "remote_join": "use a file that holds every record the CDS join",
    "no_sequence": "download the GenBank file with its sequence",
}
_DEFAULT_HINT = "check the sample's genetic_code and format, and the cds.drop policy"

TSV_COLUMNS: tuple[str, ...] = (
    "sample",
    "cds_id",
    "record",
    "feature",
    "locus_tag",
    "gene",
    "product",
    "protein_id",
    "start",
    "end",
    "strand",
    "length",
    "gc",
    "n_ambiguous",
    "genetic_code",
    "start_codon_ok",
    "stop_codon_ok",
    "len_div3",
    "internal_stop",
    "translation_match",
    "issues",
    "status",
)

_IUPAC = "ACGTURYSWKMBDHVN"
_BAD_CHAR = re.compile(f"[^{_IUPAC}{_IUPAC.lower()}]")
_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")
_NO_ID = {"", ".", "<unknown id>", "unknown"}


# --------------------------------------------------------------------------- policy, results


@dataclass(frozen=True)
class DropPolicy:
    """Which QC issues drop a CDS (see the module docstring). ``drop`` holds names from
    :data:`OPTIONAL_REASONS`; ``min_length`` (nt, after codon_start trimming) defines
    ``too_short``, which only drops when listed in ``drop``."""

    drop: frozenset[str] = DEFAULT_DROP
    min_length: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "drop", frozenset(self.drop))
        unknown = sorted(self.drop - set(OPTIONAL_REASONS))
        if unknown:
            raise ConfigError(
                f"cds drop policy: unknown reason(s) {unknown}; choose from "
                f"{list(OPTIONAL_REASONS)} ({list(ALWAYS_DROP)} are always dropped)"
            )
        if not isinstance(self.min_length, int) or self.min_length < 0:
            raise ConfigError(f"cds min_length must be an integer >= 0, got {self.min_length!r}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> DropPolicy:
        """Build from a config mapping ``{"drop": [...], "min_length": int}`` (keys optional)."""
        cfg = dict(cfg or {})
        extra = sorted(set(cfg) - {"drop", "min_length"})
        if extra:
            raise ConfigError(f"cds policy: unknown key(s) {extra}; allowed: drop, min_length")
        drop = cfg.get("drop", DEFAULT_DROP)
        if isinstance(drop, str):
            drop = [drop]
        return cls(drop=frozenset(drop), min_length=int(cfg.get("min_length", 0)))

    def status(self, issues: Sequence[str]) -> str:
        for reason in REASONS:
            if reason in issues and (reason in ALWAYS_DROP or reason in self.drop):
                return reason
        return "kept"


@dataclass
class CdsRecord:
    """One kept CDS: FASTA header is ``f"{cds_id} {description}"``."""

    cds_id: str
    description: str
    sequence: str


@dataclass
class CdsResult:
    """Everything extracted for one sample: kept sequences and one QC row per CDS."""

    sample: str
    records: list[CdsRecord] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_kept(self) -> int:
        return len(self.records)

    def status_counts(self) -> Counter:
        return Counter(row["status"] for row in self.rows)

    def table(self):
        """The QC rows as a pandas DataFrame with :data:`TSV_COLUMNS`."""
        import pandas as pd

        df = pd.DataFrame(self.rows, columns=list(TSV_COLUMNS))
        for col in ("start", "end", "length", "n_ambiguous", "genetic_code"):
            df[col] = df[col].astype("Int64")  # integers with empty cells for dropped CDS
        return df


# --------------------------------------------------------------------------- shared QC


@dataclass
class _Cds:
    """A CDS candidate before QC: annotation fields, sequence (None if unextractable)."""

    record: str
    feature: str  # where it came from: feature index (gbff), line (gff, fasta)
    id_candidates: list[str]
    locus_tag: str = ""
    gene: str = ""
    product: str = ""
    protein_id: str = ""
    start: int | None = None
    end: int | None = None
    strand: str = ""
    location: str = ""
    seq: str | None = None
    genetic_code: int = 1
    translation: str | None = None
    except_map: dict[int, str] = field(default_factory=dict)  # codon index -> amino acid
    partial5: bool = False
    issues: list[str] = field(default_factory=list)
    extra_description: list[str] = field(default_factory=list)


def _codon_table(code: int):
    from Bio.Data import CodonTable

    return CodonTable.unambiguous_dna_by_id[code]


def known_genetic_codes() -> list[int]:
    from Bio.Data import CodonTable

    return sorted(CodonTable.unambiguous_dna_by_id)


def revcomp(seq: str) -> str:
    """Reverse complement of an upper-case IUPAC DNA string."""
    return seq.translate(_COMPLEMENT)[::-1]


def _qc(cds: _Cds, policy: DropPolicy) -> dict[str, Any]:
    """Compute the QC columns of a CDS with a sequence and append the issues found."""
    from Bio.Data.CodonTable import TranslationError
    from Bio.Seq import Seq

    seq = cds.seq or ""
    table = _codon_table(cds.genetic_code)
    starts, stops = set(table.start_codons), set(table.stop_codons)
    n = len(seq)
    div3 = n % 3 == 0
    codons = [seq[i : i + 3] for i in range(0, n - n % 3, 3)]
    start_ok = bool(codons) and codons[0] in starts
    stop_ok = div3 and bool(codons) and codons[-1] in stops
    body = codons[:-1] if div3 else codons
    internal = any(c in stops and i not in cds.except_map for i, c in enumerate(body))
    acgt = sum(seq.count(b) for b in "ACGT")
    gc = (seq.count("G") + seq.count("C")) / acgt if acgt else float("nan")
    n_amb = n - acgt
    match: bool | None = None
    if cds.translation is not None and codons:
        try:
            prot = list(str(Seq("".join(codons)).translate(table=cds.genetic_code)))
        except TranslationError:
            prot = []
        for i, aa in cds.except_map.items():
            if i < len(prot):
                prot[i] = aa
        if prot and start_ok and not cds.partial5:
            prot[0] = "M"
        protein = "".join(prot)
        if stop_ok and protein.endswith("*"):
            protein = protein[:-1]
        match = protein == cds.translation
    issues = cds.issues
    if n == 0:
        issues.append("empty")
    if not div3:
        issues.append("not_div3")
    if internal:
        issues.append("internal_stop")
    if not start_ok:
        issues.append("no_start")
    if not stop_ok:
        issues.append("no_stop")
    if match is False:
        issues.append("translation_mismatch")
    if n_amb:
        issues.append("ambiguous")
    if n < policy.min_length:
        issues.append("too_short")
    return {
        "length": n,
        "gc": round(gc, 4) if acgt else None,
        "n_ambiguous": n_amb,
        "start_codon_ok": start_ok,
        "stop_codon_ok": stop_ok,
        "len_div3": div3,
        "internal_stop": internal,
        "translation_match": match,
    }


def _clean_id(text: str) -> str:
    return re.sub(r"\s+", "_", text.strip())


def _clean_desc(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("[", "(").replace("]", ")")).strip()


class _Assembler:
    """Turns _Cds candidates into QC rows and kept records, with unique ids."""

    def __init__(self, sample: str, policy: DropPolicy, warn_duplicates: bool = False):
        self.result = CdsResult(sample=sample)
        self.policy = policy
        self.used: set[str] = set()
        self.warn_duplicates = warn_duplicates

    def _unique(self, cds: _Cds) -> str:
        base = next((_clean_id(c) for c in cds.id_candidates if _clean_id(c)), "cds")
        if base not in self.used:
            self.used.add(base)
            return base
        k = 2
        while f"{base}_{k}" in self.used:
            k += 1
        new = f"{base}_{k}"
        self.used.add(new)
        (log.warning if self.warn_duplicates else log.debug)(
            "sample %s: id %r is repeated (%s); renamed to %r",
            self.result.sample,
            base,
            cds.feature,
            new,
        )
        return new

    def add(self, cds: _Cds) -> None:
        qc: dict[str, Any] = dict.fromkeys(
            (
                "length",
                "gc",
                "n_ambiguous",
                "start_codon_ok",
                "stop_codon_ok",
                "len_div3",
                "internal_stop",
                "translation_match",
            )
        )
        if cds.seq is not None:
            qc = _qc(cds, self.policy)
        # keep issue order stable and unique
        issues = [r for r in REASONS if r in set(cds.issues)]
        status = self.policy.status(issues)
        cds_id = self._unique(cds)
        row = {
            "sample": self.result.sample,
            "cds_id": cds_id,
            "record": cds.record,
            "feature": cds.feature,
            "locus_tag": cds.locus_tag,
            "gene": cds.gene,
            "product": cds.product,
            "protein_id": cds.protein_id,
            "start": cds.start,
            "end": cds.end,
            "strand": cds.strand,
            "genetic_code": cds.genetic_code,
            "issues": ";".join(issues),
            "status": status,
            **qc,
        }
        self.result.rows.append(row)
        if status == "kept":
            tags = [
                ("gene", cds.gene),
                ("locus_tag", cds.locus_tag),
                ("protein_id", cds.protein_id),
                ("product", cds.product),
                ("location", cds.location),
                ("record", cds.record),
            ]
            desc = [f"[{k}={_clean_desc(v)}]" for k, v in tags if v]
            desc.append(f"[transl_table={cds.genetic_code}]")
            desc.extend(cds.extra_description)
            self.result.records.append(CdsRecord(cds_id, " ".join(desc), cds.seq or ""))


def drop_warnings(
    counts: Mapping[str, int], total: int, threshold: float = HIGH_DROP_FRACTION
) -> list[str]:
    """One line per drop reason that removes more than `threshold` of a sample's `total`
    CDS (`counts`: status -> count), largest first, with the likely fix."""
    out = []
    for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        if reason == "kept" or not total or n / total <= threshold:
            continue
        out.append(
            f"{n} of {total} CDS ({100 * n / total:.0f}%) dropped as {reason}; likely fix: "
            f"{DROP_HINTS.get(reason, _DEFAULT_HINT)}"
        )
    return out


def _check_code(code: int | str | None, sample: str) -> int | None:
    if code is None or (isinstance(code, str) and not code.strip()):
        return None
    if isinstance(code, float) and code != code:  # NaN: an empty cell read by pandas
        return None
    try:
        value = int(code)
    except (TypeError, ValueError):
        value = -1
    if value not in known_genetic_codes():
        raise SampleSheetError(
            f"sample {sample}: genetic_code {code!r} is not an NCBI translation table; use one "
            f"of {known_genetic_codes()} or leave it empty"
        )
    return value


def _check_nonempty(path: Path, sample: str, what: str) -> None:
    if not path.exists():
        raise InputFormatError(f"sample {sample}: {what} {path} does not exist")
    if path.stat().st_size == 0:
        raise InputFormatError(
            f"sample {sample}: {what} {path} is empty (0 bytes); download it again or fix "
            "the path in the sample sheet"
        )
    try:
        with open(path, "rb") as fh:
            problem = content_problem(fh.read(HEAD_BYTES))
    except OSError as err:
        raise InputFormatError(
            f"sample {sample}: {what} {path} cannot be read ({err.strerror}); make it readable "
            "for the user running the workflow (e.g. chmod a+r)"
        ) from None
    if problem:
        raise InputFormatError(f"sample {sample}: {what} {path} {problem}")
    try:
        with open_text(path) as fh:
            head = fh.read(4096)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise InputFormatError(
            f"sample {sample}: {what} {path} cannot be read ({type(err).__name__}); it is "
            "corrupt or not a text file: download it again"
        ) from err
    if not head.strip():
        raise InputFormatError(
            f"sample {sample}: {what} {path} holds no data (empty after decompression); "
            "download it again"
        )


# --------------------------------------------------------------------------- gbff


class _LineCounter:
    """A text handle that counts the lines read, so parser errors can name a line."""

    def __init__(self, handle):
        self.handle = handle
        self.lineno = 0

    def readline(self, *args):
        line = self.handle.readline(*args)
        if line:
            self.lineno += 1
        return line

    def read(self, size: int = -1):
        text = self.handle.read(size)
        self.lineno += text.count("\n")
        return text

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _organelle(record) -> str:
    for feat in record.features:
        if feat.type == "source":
            return (feat.qualifiers.get("organelle") or [""])[0].lower()
    return ""


def default_genetic_code(record) -> tuple[int, str]:
    """The default genetic code of a GenBank record (module docstring) and why."""
    organelle = _organelle(record)
    definition = (record.description or "").lower()
    taxonomy = [t.lower() for t in record.annotations.get("taxonomy", [])]
    if organelle.startswith(("plastid", "chloroplast")) or re.search(
        r"\b(chloroplast|plastid)", definition
    ):
        return 11, "plastid"
    if organelle.startswith("mitochondri") or "mitochondri" in definition:
        return 1, "mitochondrion"
    if taxonomy and taxonomy[0] in ("bacteria", "eubacteria", "archaea", "archaebacteria"):
        return 11, taxonomy[0]
    if not taxonomy and record.annotations.get("data_file_division") == "BCT":
        return 11, "BCT division"
    return 1, "default"


def _fuzzy(location) -> tuple[bool, bool, bool]:
    """(imprecise, left_open, right_open) of a Biopython location."""
    from Bio.SeqFeature import (
        AfterPosition,
        BeforePosition,
        BetweenPosition,
        OneOfPosition,
        UncertainPosition,
        UnknownPosition,
        WithinPosition,
    )

    imprecise_types = (
        OneOfPosition,
        WithinPosition,
        BetweenPosition,
        UncertainPosition,
        UnknownPosition,
    )
    imprecise = getattr(location, "operator", "join") == "order"
    left = right = False
    for part in location.parts:
        for pos in (part.start, part.end):
            if isinstance(pos, imprecise_types):
                imprecise = True
        if isinstance(part.start, BeforePosition | AfterPosition):
            left = True
        if isinstance(part.end, AfterPosition | BeforePosition):
            right = True
    return imprecise, left, right


def _location_string(location) -> str:
    """INSDC-style 1-based location of a Biopython location (for FASTA descriptions)."""
    if len(location.parts) > 1 and all(p.strand == -1 and not p.ref for p in location.parts):
        inner = ",".join(f"{int(p.start) + 1}..{int(p.end)}" for p in location.parts[::-1])
        return f"complement(join({inner}))"
    parts = []
    for p in location.parts:
        text = f"{int(p.start) + 1}..{int(p.end)}"
        if p.ref:
            text = f"{p.ref}:{text}"
        parts.append(f"complement({text})" if p.strand == -1 else text)
    return parts[0] if len(parts) == 1 else f"join({','.join(parts)})"


_EXCEPT = re.compile(r"\(pos:\s*(complement\()?\s*(\d+)(?:\.\.(\d+))?\)?\s*,\s*aa:\s*(\w+)\s*\)")


def _except_map(feature, location, codon_start: int) -> dict[int, str]:
    """Map /transl_except sites to codon indices of the extracted CDS."""
    from Bio.SeqUtils import seq1

    values = feature.qualifiers.get("transl_except", [])
    if not values:
        return {}
    positions: list[int] = []
    for part in location.parts:
        s, e = int(part.start), int(part.end)
        positions.extend(range(e - 1, s - 1, -1) if part.strand == -1 else range(s, e))
    positions = positions[codon_start - 1 :]
    index = {p: i for i, p in enumerate(positions)}
    out: dict[int, str] = {}
    for value in values:
        for m in _EXCEPT.finditer(value):
            comp, a, b, aa = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            first = (int(b) if b else a) - 1 if comp else a - 1
            if first in index:
                letter = {"TERM": "*", "OTHER": "X"}.get(aa.upper()) or seq1(aa, undef_code="X")
                out[index[first] // 3] = letter
    return out


def _gbff_candidates(
    record, rec_label: str, sheet_code: int | None, sample: str, path: Path, progress: bool
) -> Iterator[_Cds]:
    from Bio.Seq import UndefinedSequenceError
    from tqdm import tqdm

    default_code, why = default_genetic_code(record)
    try:
        genome = str(record.seq).upper().replace("U", "T")
    except UndefinedSequenceError:
        genome = None
    bad = _BAD_CHAR.search(genome) if genome else None
    if bad:
        raise InputFormatError(
            f"sample {sample}: {path}: record {rec_label}: character {bad.group()!r} at "
            f"position {bad.start() + 1} of the sequence (ORIGIN section) is not an IUPAC "
            "nucleotide code; the file is corrupt: download it again"
        )
    features = [f for f in record.features if f.type == "CDS"]
    if genome is None and features:
        log.warning(
            "sample %s: %s record %s has no sequence (CONTIG/WGS master record?); its %d CDS "
            "are dropped as no_sequence; download the GenBank file with sequence",
            sample,
            path,
            rec_label,
            len(features),
        )
    warned_default = False
    mismatched_tables = 0
    refs_ok = {record.id, record.name, record.id.split(".")[0]} - _NO_ID
    for k, feat in enumerate(tqdm(features, disable=not progress, desc=rec_label), start=1):
        q = feat.qualifiers
        locus_tag = (q.get("locus_tag") or [""])[0]
        gene = (q.get("gene") or [""])[0]
        label = f"record {rec_label} CDS #{k}" + (
            f" (locus_tag {locus_tag})" if locus_tag else f" (gene {gene})" if gene else ""
        )
        cds = _Cds(
            record=rec_label,
            feature=f"CDS#{k}",
            id_candidates=[locus_tag, (q.get("protein_id") or [""])[0], f"{rec_label}_cds{k}"],
            locus_tag=locus_tag,
            gene=gene,
            product=(q.get("product") or [""])[0],
            protein_id=(q.get("protein_id") or [""])[0],
            translation=(q.get("translation") or [None])[0],
        )
        # genetic code
        table = (q.get("transl_table") or [None])[0]
        if sheet_code is not None:
            cds.genetic_code = sheet_code
            if table is not None and str(table) != str(sheet_code):
                mismatched_tables += 1
        elif table is not None:
            try:
                cds.genetic_code = int(table)
                _codon_table(cds.genetic_code)
            except (KeyError, ValueError):
                log.warning("sample %s: %s has unknown /transl_table=%s", sample, label, table)
                cds.issues.append("unknown_genetic_code")
                cds.genetic_code = default_code
        else:
            cds.genetic_code = default_code
            if why == "mitochondrion" and not warned_default:
                warned_default = True
                log.warning(
                    "sample %s: record %s is mitochondrial and its CDS have no /transl_table; "
                    "using genetic code 1, but mitochondrial codes vary (2 vertebrate, 3 yeast, "
                    "4 mould/protist, 5 invertebrate, ...): set genetic_code in the sample sheet",
                    sample,
                    rec_label,
                )
        if "pseudo" in q or "pseudogene" in q:
            cds.issues.append("pseudo")
        try:
            codon_start = int((q.get("codon_start") or ["1"])[0])
        except ValueError:
            codon_start = 0
        loc = feat.location
        if loc is None:
            log.warning(
                "sample %s: %s: location could not be parsed by Biopython (see its warning "
                "above); skipped",
                sample,
                label,
            )
            cds.issues.append("unparseable_location")
            yield cds
            continue
        cds.location = _location_string(loc)
        strands = {p.strand for p in loc.parts}
        cds.strand = {1: "+", -1: "-"}.get(loc.strand, "mixed" if len(strands) > 1 else ".")
        remote = sorted({p.ref for p in loc.parts if p.ref and p.ref not in refs_ok})
        imprecise, left, right = _fuzzy(loc)
        if left or right or "partial" in q:
            cds.issues.append("partial")
        cds.partial5 = (left if loc.strand != -1 else right) or codon_start != 1
        if codon_start != 1:
            cds.issues.append("partial")
        if codon_start not in (1, 2, 3):
            log.warning("sample %s: %s has /codon_start=%s; skipped", sample, label, codon_start)
            cds.issues.append("invalid_codon_start")
        if imprecise:
            cds.issues.append("fuzzy_location")
        if remote:
            log.warning(
                "sample %s: %s joins other record(s) %s (%s); cannot be extracted from this "
                "file, skipped",
                sample,
                label,
                ", ".join(remote),
                cds.location,
            )
            cds.issues.append("remote_join")
            yield cds
            continue
        local = [p for p in loc.parts if not p.ref or p.ref in refs_ok]
        if cds.strand == "+":
            cds.start, cds.end = int(local[0].start) + 1, int(local[-1].end)
        elif cds.strand == "-":
            cds.start, cds.end = int(local[-1].start) + 1, int(local[0].end)
        else:
            cds.start = min(int(p.start) for p in local) + 1
            cds.end = max(int(p.end) for p in local)
        if genome is None:
            cds.issues.append("no_sequence")
            yield cds
            continue
        if any(int(p.end) > len(genome) or int(p.start) < 0 for p in loc.parts):
            log.warning(
                "sample %s: %s location %s extends past the record's end (%d bp); skipped",
                sample,
                label,
                cds.location,
                len(genome),
            )
            cds.issues.append("out_of_bounds")
            yield cds
            continue
        if "invalid_codon_start" in cds.issues:
            yield cds
            continue
        if imprecise:
            log.warning(
                "sample %s: %s has an imprecise location %s (fuzzy_location)",
                sample,
                label,
                cds.location,
            )
        pieces = []
        for p in loc.parts:
            piece = genome[int(p.start) : int(p.end)]
            pieces.append(revcomp(piece) if p.strand == -1 else piece)
        cds.seq = "".join(pieces)[codon_start - 1 :]
        cds.except_map = _except_map(feat, loc, codon_start)
        yield cds
    if mismatched_tables:
        log.warning(
            "sample %s: record %s: the sample sheet's genetic_code %s overrides a different "
            "/transl_table on %d CDS",
            sample,
            rec_label,
            sheet_code,
            mismatched_tables,
        )


def _parse_gbff(path: Path, sample: str) -> list:
    from Bio import BiopythonParserWarning, SeqIO

    with open_text(path) as raw, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BiopythonParserWarning)
        handle = _LineCounter(raw)
        try:
            records = list(SeqIO.parse(handle, "genbank"))
        except Exception as err:  # Biopython raises ValueError and friends
            raise InputFormatError(
                f"sample {sample}: {path}: malformed GenBank file near line {handle.lineno}: "
                f"{err}. Check that the download is complete (it must end with '//') and that "
                "the sample's format is right (gbff = GenBank flat file)"
            ) from err
    seen: Counter = Counter()
    for w in caught:
        if issubclass(w.category, BiopythonParserWarning):
            seen[" ".join(str(w.message).split())] += 1
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for msg in seen:
        if msg.startswith("Expected sequence length"):
            raise InputFormatError(
                f"sample {sample}: {path}: {msg} The sequence does not have the length its "
                "LOCUS line announces: the file is truncated or corrupt; download it again"
            )
    for msg, count in seen.items():
        log.warning(
            "sample %s: %s: Biopython: %s%s", sample, path, msg, f" (x{count})" * (count > 1)
        )
    if not records:
        with open_text(path) as fh:
            first = fh.readline().strip()[:60]
        raise InputFormatError(
            f"sample {sample}: {path}: no GenBank records found (first line: {first!r}); a "
            "GenBank flat file starts with 'LOCUS'. Is the sample's format right (fasta_gff, "
            "cds_fasta)?"
        )
    return records


def _extract_gbff(
    sample: str, path: Path, sheet_code: int | None, asm: _Assembler, progress: bool
) -> None:
    records = _parse_gbff(path, sample)
    labels: Counter = Counter()
    for i, record in enumerate(records, start=1):
        label = record.id if record.id not in _NO_ID else (record.name or f"record{i}")
        if label in _NO_ID:
            label = f"record{i}"
        labels[label] += 1
        if labels[label] > 1:
            label = f"{label}_{labels[label]}"
        for cds in _gbff_candidates(record, label, sheet_code, sample, path, progress):
            asm.add(cds)


# --------------------------------------------------------------------------- FASTA reading


def iter_fasta_checked(path: str | os.PathLike, sample: str = "") -> Iterator[tuple[str, str, int]]:
    """Yield (header, sequence, header_line) like :func:`dnalm.io.read_fasta`, but raise
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
            bad = _BAD_CHAR.search(text)
            if bad:
                col = line.find(bad.group()) + 1
                raise InputFormatError(
                    f"{who}{path}:{lineno}:{col}: character {bad.group()!r} is not an IUPAC "
                    f"nucleotide code (allowed: {_IUPAC}, any case). A protein FASTA or an "
                    "alignment with gaps is not valid here; fix or remove that line"
                )
            chunks.append(text)
    if header is not None:
        yield header, "".join(chunks), hline


# --------------------------------------------------------------------------- fasta_gff


def _genome_copy_prefix(sample: str) -> str:
    """Name prefix of a sample's temporary genome copy (``+`` cannot occur in a sample ID,
    so one sample's prefix never matches another's copies)."""
    return ".dnalm-genome-" + re.sub(r"[^A-Za-z0-9_.-]", "_", sample) + "+"


def remove_stale_genome_copies(sample: str, tmpdir: str | os.PathLike) -> list[Path]:
    """Remove the genome copies a killed run of `sample` left in `tmpdir`."""
    prefix = _genome_copy_prefix(sample)
    stale = [p for p in Path(tmpdir).glob(glob.escape(prefix) + "*") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
        log.info("sample %s: removed %s, left by an interrupted earlier run", sample, p)
    return stale


@contextlib.contextmanager
def _indexed_genome(path: Path, sample: str, tmpdir: str | os.PathLike | None):
    """Validated, uncompressed, upper-case copy of a genome FASTA, opened with pyfaidx."""
    import pyfaidx

    work = Path(tempfile.mkdtemp(prefix=_genome_copy_prefix(sample), dir=tmpdir))
    try:
        copy = work / "genome.fa"
        names: dict[str, int] = {}
        with open(copy, "w", encoding="ascii") as out:
            for header, seq, hline in iter_fasta_checked(path, sample):
                name = header.split()[0] if header.split() else ""
                if not name:
                    raise InputFormatError(f"sample {sample}: {path}:{hline}: empty FASTA header")
                if name in names:
                    raise InputFormatError(
                        f"sample {sample}: {path}:{hline}: sequence name {name!r} repeats line "
                        f"{names[name]}; names (first word of the header) must be unique"
                    )
                names[name] = hline
                if not seq:
                    continue  # pyfaidx cannot index empty records; nothing to extract anyway
                out.write(f">{name}\n")
                seq = seq.upper().replace("U", "T")
                for i in range(0, len(seq), 80):
                    out.write(seq[i : i + 80] + "\n")
        if not names:
            raise InputFormatError(f"sample {sample}: {path}: no FASTA records found")
        fasta = pyfaidx.Fasta(str(copy), as_raw=True, sequence_always_upper=True)
        try:
            yield fasta, names
        finally:
            fasta.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract_fasta_gff(
    sample: str,
    fasta_path: Path,
    ann_path: Path,
    code: int,
    asm: _Assembler,
    tmpdir: str | os.PathLike | None,
) -> None:
    from dnalm.gff import read_cds_models

    models = read_cds_models(ann_path)
    if not models:
        raise InputFormatError(
            f"sample {sample}: {ann_path}: no CDS rows; the annotation must have CDS features "
            "(GTF: CDS rows with transcript_id; GFF3: CDS rows with Parent)"
        )
    with _indexed_genome(fasta_path, sample, tmpdir) as (fasta, names):
        alias: dict[str, str] = {}
        for model in models:
            seqid = alias.get(model.seqid, model.seqid)
            if seqid not in fasta:
                other = model.seqid[3:] if model.seqid.startswith("chr") else "chr" + model.seqid
                if other in fasta:
                    log.warning(
                        "sample %s: annotation sequence id %r matched FASTA sequence %r",
                        sample,
                        model.seqid,
                        other,
                    )
                    alias[model.seqid] = seqid = other
                else:
                    shown = ", ".join(list(names)[:5]) + (", ..." if len(names) > 5 else "")
                    raise InputFormatError(
                        f"sample {sample}: {ann_path}:{model.line}: sequence id {model.seqid!r} "
                        f"is not in the genome FASTA {fasta_path} (its sequences: {shown}). "
                        "Use the annotation of the same assembly, or rename the sequences so "
                        "that column 1 matches the FASTA headers"
                    )
            length = len(fasta[seqid])
            if model.end > length:
                raise InputFormatError(
                    f"sample {sample}: {ann_path}:{model.line}: CDS of {model.transcript_id} "
                    f"ends at {model.end}, past the end of {seqid} ({length} bp) in "
                    f"{fasta_path}; annotation and genome are from different assemblies?"
                )
            cds = _Cds(
                record=model.seqid,
                feature=f"line{model.line}",
                id_candidates=[model.transcript_id, model.protein_id, model.gene_id],
                locus_tag=model.gene_id,
                gene=model.gene_name,
                product=model.product,
                protein_id=model.protein_id,
                start=model.start + 1,
                end=model.end,
                strand=model.strand,
                location=f"{model.seqid}:{model.location_string()}",
                genetic_code=code,
                partial5=model.partial5,
            )
            if model.pseudo:
                cds.issues.append("pseudo")
            if model.partial5 or model.partial3:
                cds.issues.append("partial")
            if model.problems:
                log.warning(
                    "sample %s: %s:%d: CDS rows of %s are on different %s; skipped",
                    sample,
                    ann_path,
                    model.line,
                    model.transcript_id,
                    " and ".join(p.split("_")[1] + "s" for p in model.problems),
                )
                cds.issues.append("inconsistent_segments")
                asm.add(cds)
                continue
            pieces = [fasta[seqid][s:e] for s, e in model.segments]
            if model.strand == "-":
                pieces = [revcomp(p) for p in pieces]
            cds.seq = "".join(pieces)[model.phase :]
            asm.add(cds)


# --------------------------------------------------------------------------- cds_fasta

_BRACKET = re.compile(r"\[(\w+)=([^\]]*)\]")


def _extract_cds_fasta(sample: str, path: Path, sheet_code: int | None, asm: _Assembler) -> None:
    n = 0
    for header, seq, hline in iter_fasta_checked(path, sample):
        n += 1
        words = header.split(maxsplit=1)
        ident = words[0] if words else f"cds{n}"
        desc = words[1] if len(words) > 1 else ""
        tags = {k.lower(): v for k, v in _BRACKET.findall(desc)}
        code = sheet_code
        cds = _Cds(
            record="",
            feature=f"line{hline}",
            id_candidates=[ident],
            locus_tag=tags.get("locus_tag", ""),
            gene=tags.get("gene", "") or (re.findall(r"gene_symbol:(\S+)", desc) or [""])[0],
            product=tags.get("protein", tags.get("product", "")),
            protein_id=tags.get("protein_id", ""),
            strand="+",
        )
        if code is None:
            try:
                code = int(tags["transl_table"]) if "transl_table" in tags else 1
                _codon_table(code)
            except (KeyError, ValueError):
                log.warning(
                    "sample %s: %s:%d: unknown [transl_table=%s]",
                    sample,
                    path,
                    hline,
                    tags["transl_table"],
                )
                cds.issues.append("unknown_genetic_code")
                code = 1
        cds.genetic_code = code
        if tags.get("pseudo", "").lower() == "true":
            cds.issues.append("pseudo")
        if "partial" in tags:
            cds.issues.append("partial")
            cds.partial5 = "5" in tags["partial"]
        cds.seq = seq.upper().replace("U", "T")
        cds.start, cds.end = (1, len(seq)) if seq else (None, None)
        if desc:
            cds.extra_description.append(f"[source_header={_clean_desc(desc)}]")
        asm.add(cds)
    if n == 0:
        raise InputFormatError(f"sample {sample}: {path}: no FASTA records ('>' headers) found")


# --------------------------------------------------------------------------- public API


def extract_cds(
    sample: str,
    fmt: str,
    source: str | os.PathLike,
    annotation: str | os.PathLike | None = None,
    genetic_code: int | str | None = None,
    policy: DropPolicy | None = None,
    tmpdir: str | os.PathLike | None = None,
    progress: bool = False,
) -> CdsResult:
    """Extract and QC every CDS of one sample (see the module docstring for the rules).

    `fmt` is the sample sheet's format; `annotation` the GFF3/GTF for ``fasta_gff``;
    `genetic_code` the sheet's value (None/"" = not given). Unextractable or odd CDS are
    recorded as dropped rows with warnings, never raised; malformed or empty files raise
    InputFormatError naming the file, line and sample."""
    policy = policy or DropPolicy()
    if fmt not in FORMATS:
        raise SampleSheetError(f"sample {sample}: format {fmt!r} is not one of {list(FORMATS)}")
    code = _check_code(genetic_code, sample)
    src = Path(source)
    _check_nonempty(src, sample, "source")
    asm = _Assembler(sample, policy, warn_duplicates=fmt == "cds_fasta")
    ann = Path(annotation) if annotation else None
    if fmt == "fasta_gff":
        if ann is None:
            raise SampleSheetError(
                f"sample {sample}: format fasta_gff needs the annotation column (GFF3 or GTF)"
            )
        _check_nonempty(ann, sample, "annotation")
    try:
        if fmt == "gbff":
            _extract_gbff(sample, src, code, asm, progress)
        elif fmt == "fasta_gff":
            _extract_fasta_gff(sample, src, ann, code or 1, asm, tmpdir)
        else:
            _extract_cds_fasta(sample, src, code, asm)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        files = f"{src}" + (f" or {ann}" if ann else "")
        raise InputFormatError(
            f"sample {sample}: {files} cannot be read ({type(err).__name__}: {err}); the file "
            "is truncated, corrupt or not text: download it again"
        ) from err
    if not asm.result.rows:
        raise InputFormatError(
            f"sample {sample}: {src}: no CDS annotated; use an annotated genome (GenBank with "
            "CDS features, or a GFF3/GTF with CDS rows)"
        )
    counts = asm.result.status_counts()
    dropped = ", ".join(f"{k} {v}" for k, v in counts.most_common() if k != "kept")
    log.info(
        "sample %s: %d CDS, %d kept%s",
        sample,
        len(asm.result.rows),
        counts.get("kept", 0),
        f"; dropped: {dropped}" if dropped else "",
    )
    for line in drop_warnings(counts, len(asm.result.rows)):
        log.warning("sample %s: %s", sample, line)
    return asm.result


def write_cds_outputs(
    result: CdsResult, fasta_path: str | os.PathLike, tsv_path: str | os.PathLike
) -> None:
    """Write the kept CDS (FASTA, gzip when the name ends in .gz) and the QC table (TSV),
    each atomically."""
    with atomic_write(fasta_path) as fh:
        write_fasta(
            fh, ((f"{r.cds_id} {r.description}".strip(), r.sequence) for r in result.records)
        )
    with atomic_write(tsv_path) as fh:
        result.table().to_csv(fh, sep="\t", index=False, na_rep="", lineterminator="\n")


def run_cds(
    sample: str,
    fmt: str,
    source: str | os.PathLike,
    fasta_out: str | os.PathLike,
    tsv_out: str | os.PathLike,
    annotation: str | os.PathLike | None = None,
    genetic_code: int | str | None = None,
    policy: DropPolicy | None = None,
    tmpdir: str | os.PathLike | None = None,
    allow_empty: bool = False,
    progress: bool = False,
    max_drop_fraction: float | None = None,
) -> CdsResult:
    """The workflow rule: extract, refuse a sample with no kept CDS (or, with
    `max_drop_fraction`, with more than that share of its CDS dropped), write both outputs.
    The genome copy of fasta_gff goes to `tmpdir`, by default the output FASTA's folder
    (a hidden ``.dnalm-genome-{sample}+*`` folder, removed afterwards). Temporary files that
    a killed earlier run of this sample left there are removed first."""
    if tmpdir is None:
        tmpdir = Path(fasta_out).parent
        tmpdir.mkdir(parents=True, exist_ok=True)
    remove_stale_genome_copies(sample, tmpdir)
    for out in (fasta_out, tsv_out):
        remove_stale_parts(out)
    result = extract_cds(sample, fmt, source, annotation, genetic_code, policy, tmpdir, progress)
    if result.n_kept == 0 and not allow_empty:
        counts = ", ".join(f"{k}: {v}" for k, v in result.status_counts().most_common())
        raise InputFormatError(
            f"sample {sample}: none of the {len(result.rows)} CDS in {source} passed QC "
            f"({counts}); check the sample's genetic_code and the cds drop policy in the config"
        )
    total, dropped = len(result.rows), len(result.rows) - result.n_kept
    if max_drop_fraction is not None and total and dropped / total > max_drop_fraction:
        counts = result.status_counts()
        reasons = ", ".join(f"{k} {v}" for k, v in counts.most_common() if k != "kept")
        hints = drop_warnings(counts, total, threshold=0.0)[:1]
        fix = hints[0].split("likely fix: ", 1)[1] if hints else _DEFAULT_HINT
        raise InputFormatError(
            f"sample {sample}: {dropped} of {total} CDS ({100 * dropped / total:.0f}%) in "
            f"{source} were dropped ({reasons}), more than cds.max_drop_fraction "
            f"{max_drop_fraction}; likely fix: {fix}; or raise cds.max_drop_fraction"
        )
    write_cds_outputs(result, fasta_out, tsv_out)
    return result


def read_cds_tables(tsv_paths: Iterable[str | os.PathLike]):
    """Concatenate per-sample QC tables (as written by :func:`write_cds_outputs`)."""
    import pandas as pd

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
    import pandas as pd

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


def plot_qc(summary_df, per_cds_df, png_path: str | os.PathLike) -> None:
    """A PNG with three panels: stacked bars of kept / dropped-by-reason CDS per sample, and
    the GC and length distributions of kept CDS per sample. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    samples = list(summary_df["sample"])
    reasons = [c for c in summary_df.columns if c.startswith("dropped_")]
    kept = per_cds_df[per_cds_df["status"] == "kept"].copy()
    height = max(3.0, 0.35 * len(samples) + 1.5)
    fig, axes = plt.subplots(1, 3, figsize=(16, height), constrained_layout=True)
    left = [0.0] * len(samples)
    colours = sns.color_palette("tab20", len(reasons) + 1)
    bars = [("kept", list(summary_df["kept"]))] + [
        (c.removeprefix("dropped_"), list(summary_df[c])) for c in reasons
    ]
    for (name, values), colour in zip(bars, colours, strict=True):
        axes[0].barh(samples, values, left=left, label=name, color=colour)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes[0].invert_yaxis()
    axes[0].set_xlabel("CDS")
    axes[0].set_title("CDS kept and dropped (by reason)")
    axes[0].legend(fontsize="small", loc="lower right")
    if len(kept):
        with warnings.catch_warnings():  # seaborn 0.13 passes matplotlib's deprecated `vert`
            warnings.filterwarnings("ignore", message="vert: bool", module="seaborn")
            sns.boxplot(data=kept, x="gc", y="sample", order=samples, ax=axes[1], fliersize=1)
            sns.boxplot(
                data=kept,
                x="length",
                y="sample",
                order=samples,
                ax=axes[2],
                fliersize=1,
                log_scale=True,
            )
    axes[1].set_title("GC content of kept CDS")
    axes[1].set_xlabel("GC fraction")
    axes[2].set_title("length of kept CDS")
    axes[2].set_xlabel("length (nt, log scale)")
    for ax in axes[1:]:
        ax.set_ylabel("")
        ax.set_yticklabels([])
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_qc_summary(
    tsv_paths: Sequence[str | os.PathLike],
    summary_path: str | os.PathLike,
    png_path: str | os.PathLike | None = None,
):
    """Write the cross-sample summary TSV (and the plot when `png_path` is given)."""
    summary = qc_summary(tsv_paths)
    with atomic_write(summary_path) as fh:
        summary.to_csv(fh, sep="\t", index=False, na_rep="", lineterminator="\n")
    if png_path is not None:
        plot_qc(summary, read_cds_tables(tsv_paths), png_path)
    return summary


# --------------------------------------------------------------------------- CLI


def register(subparsers) -> None:
    """Add the ``cds`` and ``cds-qc`` subcommands to the dnalm CLI."""
    p = subparsers.add_parser("cds", help="extract and QC the CDS of one sample")
    p.add_argument("--sample", required=True)
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    p.add_argument("--source", required=True, help="GBFF, genome FASTA or CDS FASTA")
    p.add_argument("--annotation", help="GFF3/GTF (format fasta_gff)")
    p.add_argument("--genetic-code", type=int, help="override every CDS's genetic code")
    p.add_argument(
        "--drop",
        nargs="*",
        default=sorted(DEFAULT_DROP),
        choices=OPTIONAL_REASONS,
        help=f"QC issues that drop a CDS (default: {' '.join(sorted(DEFAULT_DROP))})",
    )
    p.add_argument("--min-length", type=int, default=0, help="too_short below this many nt")
    p.add_argument("--fasta-out", required=True)
    p.add_argument("--tsv-out", required=True)
    p.add_argument("--allow-empty", action="store_true", help="write outputs with 0 kept CDS")
    p.add_argument(
        "--max-drop-fraction",
        type=float,
        default=None,
        help="fail when more than this share of the CDS is dropped (default: no limit)",
    )
    p.set_defaults(func=_cli_cds)
    q = subparsers.add_parser("cds-qc", help="summarise CDS QC tables across samples")
    q.add_argument("tsv", nargs="+", help="per-sample CDS tables")
    q.add_argument("--summary", required=True, help="output TSV")
    q.add_argument("--png", help="output plot")
    q.set_defaults(func=_cli_qc)


def _cli_cds(args: argparse.Namespace) -> int:
    policy = DropPolicy(drop=frozenset(args.drop), min_length=args.min_length)
    run_cds(
        args.sample,
        args.fmt,
        args.source,
        args.fasta_out,
        args.tsv_out,
        annotation=args.annotation,
        genetic_code=args.genetic_code,
        policy=policy,
        allow_empty=args.allow_empty,
        max_drop_fraction=args.max_drop_fraction,
    )
    return 0


def _cli_qc(args: argparse.Namespace) -> int:
    write_qc_summary(args.tsv, args.summary, args.png)
    return 0
