"""One CDS as the extraction sees it: the drop reasons, the drop policy, the per-CDS QC flags,
the record/result types, the assembler that turns candidate CDS into kept sequences and the
per-CDS table, and the warning when one reason drops much of a sample. Shared by the GBFF,
FASTA+GFF and CDS-FASTA readers of :mod:`dnalm.genome.cds`."""

from __future__ import annotations

import csv
import functools
import gzip
import logging
import re
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnalm.core.errors import ConfigError, InputFormatError, SampleSheetError
from dnalm.core.io import (
    HEAD_BYTES,
    content_problem,
    open_text,
)
from dnalm.core.letters import BASES, IUPAC

log = logging.getLogger(__name__)


#: Reasons a CDS has no usable sequence: always dropped.
ALWAYS_DROP: tuple[str, ...] = (
    "unparseable_location",
    "remote_join",
    "out_of_bounds",
    "no_sequence",
    "invalid_codon_start",
    "unknown_genetic_code",
    "inconsistent_segments",
    "overlapping_segments",
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
    "overlapping_segments": (
        "the annotation repeats CDS rows of a transcript at shifted positions; fix or "
        "regenerate the GTF/GFF3 (each transcript's CDS rows must not overlap)"
    ),
}


DEFAULT_HINT = "check the sample's genetic_code and format, and the cds.drop policy"


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
    "evidence",
    "note",
    "function",
)

#: Values of the CDS table's ``evidence`` column: from the annotation (or a CDS FASTA), or
#: called on the genome sequence (sheet column ``annotate``).
EVIDENCE: tuple[str, ...] = ("annotated", "predicted")


BAD_CHAR = re.compile(f"[^{IUPAC}{IUPAC.lower()}]")


NO_ID = {"", ".", "<unknown id>", "unknown"}


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
        import pandas as pd  # lazy: pandas (~0.5 s) stays out of `dnalm cds` and the DAG build

        df = pd.DataFrame(self.rows, columns=list(TSV_COLUMNS))
        for col in ("start", "end", "length", "n_ambiguous", "genetic_code"):
            df[col] = df[col].astype("Int64")  # integers with empty cells for dropped CDS
        return df

    def write_tsv(self, fh) -> None:
        """Write the QC table to the text handle `fh` as TSV: the bytes
        ``table().to_csv(fh, sep="\t", index=False, na_rep="", lineterminator="\n")`` writes
        (empty cells for missing values, True/False, integers without a decimal point, the
        shortest repr of a float), without importing pandas."""
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(TSV_COLUMNS)
        for row in self.rows:
            writer.writerow([_tsv_cell(row.get(col)) for col in TSV_COLUMNS])


def _tsv_cell(value: Any) -> Any:
    """One cell as pandas writes it (na_rep ""); the csv writer quotes as pandas does."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value


@dataclass
class CandidateCds:
    """A CDS candidate before QC: annotation fields, sequence (None if unextractable)."""

    record: str
    feature: str  # where it came from: feature index (gbff), line (gff, fasta)
    id_candidates: list[str]
    locus_tag: str = ""
    gene: str = ""
    product: str = ""
    note: str = ""  # GenBank /note (the paired DNA-text corpus reads it)
    function: str = ""  # GenBank /function
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
    evidence: str = "annotated"  # or "predicted" (gene calling)


def codon_table(code: int):
    from Bio.Data import CodonTable  # lazy: Biopython (~0.2 s) stays out of the DAG build

    return CodonTable.unambiguous_dna_by_id[code]


def known_genetic_codes() -> list[int]:
    from Bio.Data import CodonTable  # lazy: Biopython (~0.2 s) stays out of the DAG build

    return sorted(CodonTable.unambiguous_dna_by_id)


@functools.cache
def _code_tables(code: int) -> tuple[frozenset[str], frozenset[str], bytes, bool]:
    """(start codons, stop codons, codon index -> amino acid letter with '*' for every stop
    codon, whether that table is Biopython's translation) of a genetic code. The index of an
    ACGT codon is its base-4 value (:func:`_codon_indices`). Some codes read a stop codon as
    an amino acid too (e.g. 27, TGA); Biopython translates those as the amino acid, so the
    table is not its translation there."""
    table = codon_table(code)
    amino = dict(table.forward_table)
    same = not set(table.stop_codons) & set(amino)
    amino.update(dict.fromkeys(table.stop_codons, "*"))
    letters = "".join(amino[a + b + c] for a in BASES for b in BASES for c in BASES).encode()
    letters += bytes(256 - 64)  # 0 for the indices of codons that are not all ACGT
    return frozenset(table.start_codons), frozenset(table.stop_codons), letters, same


def _base_values(weight: int) -> bytes:
    """A bytes.translate table: A, C, G, T -> 0..3 times `weight`; anything else -> 64."""
    values = bytearray([64]) * 256
    for i, b in enumerate(BASES):
        values[ord(b)] = i * weight
    return bytes(values)


_FIRST, _SECOND, _THIRD = _base_values(16), _base_values(4), _base_values(1)


def _codon_indices(seq: str) -> bytes:
    """One byte per whole codon of an ASCII sequence: its base-4 value 0..63 when all its
    bases are A/C/G/T, else a value >= 64. The three bases of each codon are turned into
    their weighted values (bytes.translate) and summed as big integers, one byte per codon:
    the sum of a codon's three bytes is below 256, so no byte carries into the next."""
    raw = seq.encode("ascii", "replace")
    n = len(raw) // 3
    if not n:
        return b""
    end = 3 * n
    total = (
        int.from_bytes(raw[0:end:3].translate(_FIRST), "big")
        + int.from_bytes(raw[1:end:3].translate(_SECOND), "big")
        + int.from_bytes(raw[2:end:3].translate(_THIRD), "big")
    )
    return total.to_bytes(n, "big")


def _translate_bio(codons: list[str], cds: CandidateCds) -> list[str]:
    """Biopython's translation of codons that are not all ACGT ([] when it refuses)."""
    from Bio.Data.CodonTable import TranslationError  # lazy: Biopython, as codon_table
    from Bio.Seq import Seq  # lazy: Biopython, as codon_table

    try:
        return list(str(Seq("".join(codons)).translate(table=cds.genetic_code)))
    except TranslationError:
        return []


def _qc(cds: CandidateCds, policy: DropPolicy) -> dict[str, Any]:
    """Compute the QC columns of a CDS with a sequence and append the issues found."""
    seq = cds.seq or ""
    starts, stops, letters, translates = _code_tables(cds.genetic_code)
    n = len(seq)
    div3 = n % 3 == 0
    n_codons = n // 3
    first, last = seq[:3], seq[3 * n_codons - 3 : 3 * n_codons]
    start_ok = bool(n_codons) and first in starts
    stop_ok = div3 and bool(n_codons) and last in stops
    n_body = n_codons - 1 if div3 else n_codons
    # all codons ACGT (no 0 byte): one table lookup each, '*' marks the stop codons
    found = _codon_indices(seq).translate(letters)
    aa = None if b"\0" in found else found.decode("ascii")
    if aa is not None:
        internal = False
        i = aa.find("*", 0, n_body)
        while i >= 0:
            if i not in cds.except_map:
                internal = True
                break
            i = aa.find("*", i + 1, n_body)
    else:
        codons = [seq[i : i + 3] for i in range(0, 3 * n_codons, 3)]
        internal = any(
            c in stops and i not in cds.except_map for i, c in enumerate(codons[:n_body])
        )
    acgt = sum(seq.count(b) for b in "ACGT")
    gc = (seq.count("G") + seq.count("C")) / acgt if acgt else float("nan")
    n_amb = n - acgt
    match: bool | None = None
    if cds.translation is not None and n_codons:
        if aa is not None and translates:
            prot = list(aa)
        else:
            prot = _translate_bio([seq[i : i + 3] for i in range(0, 3 * n_codons, 3)], cds)
        for i, a in cds.except_map.items():
            if i < len(prot):
                prot[i] = a
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


_SPACES = re.compile(r"\s+")


def clean_id(text: str) -> str:
    return _SPACES.sub("_", text.strip())


def clean_desc(text: str) -> str:
    return _SPACES.sub(" ", text.replace("[", "(").replace("]", ")")).strip()


class Assembler:
    """Turns CandidateCds candidates into QC rows and kept records, with unique ids."""

    def __init__(self, sample: str, policy: DropPolicy, warn_duplicates: bool = False):
        self.result = CdsResult(sample=sample)
        self.policy = policy
        self.used: set[str] = set()
        self.warn_duplicates = warn_duplicates

    def _unique(self, cds: CandidateCds) -> str:
        base = next((clean_id(c) for c in cds.id_candidates if clean_id(c)), "cds")
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

    def add(self, cds: CandidateCds) -> None:
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
        found = set(cds.issues)
        issues = [r for r in REASONS if r in found]
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
            "evidence": cds.evidence,
            "note": cds.note,
            "function": cds.function,
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
            desc = [f"[{k}={clean_desc(v)}]" for k, v in tags if v]
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
            f"{DROP_HINTS.get(reason, DEFAULT_HINT)}"
        )
    return out


def check_code(code: int | str | None, sample: str) -> int | None:
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


def check_nonempty(path: Path, sample: str, what: str) -> None:
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


class LineCounter:
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
