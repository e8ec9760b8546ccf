"""CDS candidates from annotated GenBank (GBFF) records, through Biopython: joins, minus strand,
origin-spanning CDS of circular records, ``/codon_start``, ``/transl_table``, ``/transl_except``,
pseudo and partial CDS, fuzzy locations; the default genetic code of a record."""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from dnalm.core.errors import InputFormatError
from dnalm.core.io import (
    open_text,
)
from dnalm.core.letters import reverse_complement
from dnalm.genome.cds_record import (
    BAD_CHAR,
    NO_ID,
    Assembler,
    CandidateCds,
    LineCounter,
    codon_table,
)

log = logging.getLogger(__name__)


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
    # lazy: Biopython (~0.2 s) stays out of the DAG build, which imports this package
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
    # lazy: Biopython (~0.2 s) stays out of the DAG build, which imports this package
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
) -> Iterator[CandidateCds]:
    from Bio.Seq import UndefinedSequenceError  # lazy: Biopython stays out of the DAG build

    default_code, why = default_genetic_code(record)
    try:
        genome = str(record.seq).upper().replace("U", "T")
    except UndefinedSequenceError:
        genome = None
    bad = BAD_CHAR.search(genome) if genome else None
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
    refs_ok = {record.id, record.name, record.id.split(".")[0]} - NO_ID
    shown = features
    if progress:
        from tqdm import tqdm  # lazy: tqdm (~0.1 s) is imported only to show progress

        shown = tqdm(features, desc=rec_label)
    for k, feat in enumerate(shown, start=1):
        q = feat.qualifiers
        locus_tag = (q.get("locus_tag") or [""])[0]
        gene = (q.get("gene") or [""])[0]
        label = f"record {rec_label} CDS #{k}" + (
            f" (locus_tag {locus_tag})" if locus_tag else f" (gene {gene})" if gene else ""
        )
        cds = CandidateCds(
            record=rec_label,
            feature=f"CDS#{k}",
            id_candidates=[locus_tag, (q.get("protein_id") or [""])[0], f"{rec_label}_cds{k}"],
            locus_tag=locus_tag,
            gene=gene,
            product=(q.get("product") or [""])[0],
            note=(q.get("note") or [""])[0],
            function=(q.get("function") or [""])[0],
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
                codon_table(cds.genetic_code)
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
            pieces.append(reverse_complement(piece) if p.strand == -1 else piece)
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


def _read_records(handle) -> list:
    """Every record of a GenBank text handle: what ``SeqIO.parse(handle, "genbank")`` yields
    (its GenBank iterator is this scanner), without importing all of Bio.SeqIO."""
    from Bio.GenBank.Scanner import GenBankScanner  # lazy: Biopython stays out of the DAG build

    return list(GenBankScanner(debug=0).parse_records(handle))


def _error_line(path: Path) -> int:
    """The line a parse of `path` fails at, found by parsing it again through a line counter
    (the parser reads the lines one at a time; counting them costs, so only on failure)."""
    with open_text(path) as raw, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handle = LineCounter(raw)
        with contextlib.suppress(Exception):
            _read_records(handle)
        return handle.lineno


def _parse_gbff(path: Path, sample: str) -> list:
    from Bio import BiopythonParserWarning  # lazy: Biopython stays out of the DAG build

    with open_text(path) as raw, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BiopythonParserWarning)
        try:
            records = _read_records(raw)
        except Exception as err:  # Biopython raises ValueError and friends
            raise InputFormatError(
                f"sample {sample}: {path}: malformed GenBank file near line "
                f"{_error_line(path)}: {err}. Check that the download is complete (it must end "
                "with '//') and that the sample's format is right (gbff = GenBank flat file)"
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


def iter_records(path: Path, sample: str) -> Iterator[tuple[str, object]]:
    """(label, Biopython record) of every record of a GBFF file. The label is the record's
    ``id`` (``NC_002737.1``), else its name, else ``record{i}``; a repeated label gets a
    ``_2``, ``_3`` suffix. CDS rows (``record`` column), genome FASTA ids and feature
    tables all use it."""
    records = _parse_gbff(path, sample)
    labels: Counter = Counter()
    for i, record in enumerate(records, start=1):
        label = record.id if record.id not in NO_ID else (record.name or f"record{i}")
        if label in NO_ID:
            label = f"record{i}"
        labels[label] += 1
        if labels[label] > 1:
            label = f"{label}_{labels[label]}"
        yield label, record


def extract_gbff(
    sample: str, path: Path, sheet_code: int | None, asm: Assembler, progress: bool
) -> None:
    for label, record in iter_records(path, sample):
        for cds in _gbff_candidates(record, label, sheet_code, sample, path, progress):
            asm.add(cds)
