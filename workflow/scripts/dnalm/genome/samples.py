"""The sample sheet: one row per genome.

Loaded and validated before any work starts (from `workflow/rules/common.smk`), so that a bad
row stops the run with one message naming the sheet, the line and the fix. The columns and
their types are defined by `workflow/schemas/samples.schema.yaml`; this module adds the
checks a JSON schema cannot express (unique IDs, unknown columns with a hint, conditional
columns, missing local files) and turns the schema's errors into line-numbered messages.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from dnalm.core.errors import ConfigError, SampleSheetError
from dnalm.core.io import HEAD_BYTES, content_problem, read_yaml
from dnalm.kinds.formats import SAMPLE_FORMATS, SampleFormat, formats_where

if TYPE_CHECKING:
    from jsonschema import ValidationError

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schemas" / "samples.schema.yaml"
ACCESSION_RE = re.compile(r"^GC[AF]_\d{9}(\.\d+)?$")
URL_RE = re.compile(r"^(https?|ftp)://", re.IGNORECASE)
# NCBI translation tables that exist (https://www.ncbi.nlm.nih.gov/Taxonomy/Utils/wprintgc.cgi);
# checked against Bio.Data.CodonTable in tests/test_genome_samples.py.
GENETIC_CODES = frozenset([1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, *range(21, 34)])
TRUE = {"true", "yes", "1", "y", "t"}
FALSE = {"false", "no", "0", "n", "f"}


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return read_yaml(path)


@dataclass(frozen=True)
class Sample:
    sample: str
    species: str
    source: str
    format: str
    annotation: str = ""
    genetic_code: int | None = None
    md5: str = ""
    sha256: str = ""
    annotation_md5: str = ""
    pretrain: bool = True
    species_task: bool = True
    annotate: str = ""
    annotate_mode: str = "single"
    line: int = 0

    @property
    def source_kind(self) -> str:
        return classify_source(self.source)

    @property
    def annotation_kind(self) -> str | None:
        return classify_source(self.annotation) if self.annotation else None

    @property
    def format_kind(self) -> SampleFormat:
        """The descriptor of the sample's format (dnalm.kinds.formats)."""
        return SAMPLE_FORMATS.get(self.format, f"sample {self.sample}: format")

    @property
    def has_cds(self) -> bool:
        """Whether the sample yields CDS: annotated, given as CDS, or gene-called. A
        `fasta` sample without `annotate` has none (it only feeds genome corpora)."""
        return self.format_kind.has_cds or bool(self.annotate)

    @property
    def has_genome(self) -> bool:
        """Whether the sample has a genome sequence (every format but cds_fasta)."""
        return self.format_kind.has_genome

    @property
    def has_features(self) -> bool:
        """Whether the sample has a feature table with genes: annotated (gbff, fasta_gff) or
        gene-called."""
        return self.format_kind.has_features or bool(self.annotate)

    @property
    def ncbi_file(self) -> str:
        """Which file of an NCBI assembly the sample takes (a key of
        dnalm.genome.ncbi.NCBI_FILES): the genome FASTA for `fasta`, else the GBFF."""
        return self.format_kind.ncbi_file or "gbff"


def no_cds_message(sample: Sample | str, fix: str, fmt: str = "fasta") -> str:
    """The error for something that needs the CDS of a sample whose format has none (`fasta`)
    without gene calling."""
    sid = sample.sample if isinstance(sample, Sample) else sample
    fmt = sample.format if isinstance(sample, Sample) else fmt
    return (
        f"sample {sid} has format {fmt} and no annotate: no CDS; set annotate: pyrodigal "
        f"(gene calling) or {fix}"
    )


def _either(names: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def classify_source(source: str) -> str:
    """'ncbi' for an assembly accession, 'url' for http(s)/ftp, else 'local' (a path or a
    ``file://`` URL)."""
    if ACCESSION_RE.match(source):
        return "ncbi"
    if URL_RE.match(source):
        return "url"
    return "local"


FILE_URL_RE = re.compile(r"^file:", re.IGNORECASE)


def file_url_path(url: str) -> Path:
    """The absolute path of a ``file://`` URL (``file:///data/x.gb``, also
    ``file://localhost/data/x.gb``; percent escapes decoded). ConfigError for another host
    or a relative path, with the form to use."""
    parts = urlsplit(url)
    host = parts.netloc.lower()
    path = unquote(parts.path)
    if parts.scheme.lower() != "file" or host not in ("", "localhost") or not path.startswith("/"):
        raise ConfigError(
            f"{url!r} is not a file URL of this machine: write file:// followed by an "
            "absolute path (file:///data/genome.gb), or the plain path"
        )
    return Path(path)


def expand_local(path: str, base: Path | None = None) -> Path:
    """Expand ~ and $VARS; relative paths are taken from `base` (default: the working
    directory, which is where Snakemake runs). A ``file://`` URL is its absolute path."""
    if FILE_URL_RE.match(path):
        return file_url_path(path)
    p = Path(os.path.expandvars(os.path.expanduser(path)))
    if not p.is_absolute():
        p = (base or Path.cwd()) / p
    return p


def local_file_problem(path: Path) -> tuple[str, str] | None:
    """Why `path` cannot be read as an input file, as (what it is, the fix), e.g. ("is a
    directory, not a file", "give the path of the file inside it"); None for a readable
    regular file that may be plain text or gzip. Opens the file (the real test of
    permission) and reads its first bytes (zip, bzip2, xz, zstd and HTML are recognised)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return (
                f"is a broken symbolic link (to {os.readlink(path)}, which does not exist)",
                "fix or replace the link",
            )
        return "not found", "fix the path or use a URL/accession"
    except OSError as err:
        if err.errno == errno.ELOOP:
            return (
                "is a symbolic link loop (the link leads back to itself)",
                "point the link at the real file",
            )
        return f"cannot be reached ({err.strerror})", "fix the path or its folders' permissions"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a file", "give the path of the file inside it"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a pipe, socket or device)", "give the path of a file"
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
    except OSError as err:
        return (
            f"cannot be read ({err.strerror})",
            "make it readable for the user running the workflow (e.g. chmod a+r)",
        )
    problem = content_problem(head)
    if problem:
        what, _, fix = problem.partition("; ")
        return what, fix
    return None


def reserved_sample_ids(schema: dict) -> list[str]:
    """Sample IDs the workflow's own files use (results/cds/qc_summary.tsv, ...)."""
    return list(schema["properties"]["sample"].get("not", {}).get("enum", []))


def _reserved_message(where: str, sid: str, reserved: list[str]) -> str:
    return (
        f"{where}: sample ID {sid!r} is reserved: it would collide with the workflow's own "
        f"files (such as results/cds/qc_summary.tsv); reserved IDs (in any case): "
        f"{', '.join(reserved)}; rename the sample"
    )


def _decode_sheet(path: Path, data: bytes) -> str:
    """The sheet's text (UTF-8, a leading byte-order mark dropped); a byte that is not
    UTF-8 is a SampleSheetError naming the line, column and byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        pos = err.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, pos) + 1
        col = pos - (data.rfind(b"\n", 0, pos) + 1) + 1
        byte = data[pos]
        latin = bytes([byte]).decode("cp1252", errors="replace")
        raise SampleSheetError(
            f"{path}:{line}: byte 0x{byte:02x} at column {col} is not UTF-8 ({latin!r} in "
            "Latin-1/Windows-1252?); save the sample sheet as UTF-8 (e.g. iconv -f latin1 "
            "-t utf-8)"
        ) from None


def _coerce(row: dict[str, str], where: str) -> dict:
    out: dict = {}
    for key, raw in row.items():
        value = raw.strip() if isinstance(raw, str) else raw
        if key == "genetic_code":
            if value in ("", None):
                out[key] = None
                continue
            try:
                out[key] = int(value)
            except ValueError:
                raise SampleSheetError(
                    f"{where}: genetic_code {value!r} is not an integer; give an NCBI "
                    "translation table number (e.g. 11 for bacteria) or leave it empty"
                ) from None
        elif key == "annotate_mode" and value in ("", None):
            continue  # default applies
        elif key in ("pretrain", "species_task"):
            if value in ("", None):
                continue  # default applies
            low = value.lower()
            if low in TRUE:
                out[key] = True
            elif low in FALSE:
                out[key] = False
            else:
                raise SampleSheetError(
                    f"{where}: column {key} is {value!r}; use true or false (or leave empty)"
                )
        else:
            out[key] = value if value is not None else ""
    return out


def _schema_message(err: ValidationError, where: str, schema: dict) -> str:
    field = err.path[0] if err.path else None
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(schema["properties"]))
        return (
            f"{where}: unknown column(s) {', '.join(extra)}; allowed columns are "
            f"{', '.join(schema['properties'])} (see config/README.md)"
        )
    if err.validator == "required":
        return f"{where}: {err.message}"
    if field == "sample" and err.validator == "not":
        return _reserved_message(where, err.instance, reserved_sample_ids(schema))
    if field == "sample" and err.validator == "pattern":
        value = err.instance
        hint = " (path-like IDs are not allowed)" if ("/" in value or ".." in value) else ""
        return (
            f"{where}: sample ID {value!r} is invalid{hint}: use letters, digits, '_', '.', "
            "'-' only, starting with a letter or digit"
        )
    if field == "format":
        return (
            f"{where}: unknown format {err.instance!r}; use one of gbff, fasta_gff, cds_fasta, "
            "fasta"
        )
    if field in ("annotate", "annotate_mode"):
        allowed = [v for v in schema["properties"][field]["enum"] if v]
        return f"{where}: column {field} is {err.instance!r}; use one of {', '.join(allowed)}" + (
            " or leave it empty" if field == "annotate" else " (default single)"
        )
    if field in ("md5", "sha256", "annotation_md5"):
        n = 64 if field == "sha256" else 32
        return f"{where}: {field} {err.instance!r} is not {n} hexadecimal characters"
    return f"{where}: column {field}: {err.message}"


def _check_quotes(path: Path, numbered: list[tuple[int, str]]) -> None:
    """A cell that starts with a double quote must close it on the same line (``"a b"``,
    with ``""`` for a quote inside): the TSV reader would otherwise run the cell on over the
    following tabs and lines, and the sheet would be blamed for its field count."""
    header = numbered[0][1].rstrip("\r\n").split("\t")
    for lineno, line in numbered:
        pos = 0
        for i, cell in enumerate(line.rstrip("\r\n").split("\t")):
            lead = len(cell) - len(cell.lstrip())
            if cell.lstrip().startswith('"') and cell.count('"') % 2:
                name = header[i].strip() if i < len(header) else f"field {i + 1}"
                raise SampleSheetError(
                    f"{path}:{lineno}: column {name} (character {pos + lead + 1}) opens a "
                    f"double quote that is not closed: {cell.strip()!r}; remove the quote, or "
                    'close it (a cell that starts with " must end with ", and a quote inside '
                    'it is written "")'
                )
            pos += len(cell) + 1


def load_sample_sheet(
    path: str | os.PathLike,
    schema: dict | None = None,
    check_local_files: bool = True,
    base_dir: Path | None = None,
) -> list[Sample]:
    """Read and validate the sample sheet. Raises SampleSheetError naming the sheet and line.

    Lines starting with '#' and blank lines are ignored. Empty cells take the schema default.
    """
    path = Path(path)
    schema = schema or load_schema()
    if not path.is_file():
        problem = local_file_problem(path)
        what = problem[0] if problem and problem[0] != "not found" else "not found"
        raise SampleSheetError(
            f"sample sheet {path} {what}; set the config key `samples` to an existing TSV "
            "(e.g. --config samples=config/samples.tsv)"
        )
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SampleSheetError(
            f"sample sheet {path} cannot be read ({err.strerror}); make it readable"
        ) from None
    text = _decode_sheet(path, data)
    with io.StringIO(text, newline="") as fh:
        numbered = [
            (i, line)
            for i, line in enumerate(fh, start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    if not numbered:
        raise SampleSheetError(
            f"{path}: the sample sheet is empty; add a header and one row per genome"
        )
    header_line = numbered[0][0]
    _check_quotes(path, numbered)
    reader = csv.reader([text for _, text in numbered], delimiter="\t")
    rows = list(reader)
    header = [h.strip() for h in rows[0]]
    if len(header) == 1 and ("," in header[0] or " " in header[0].strip()):
        raise SampleSheetError(
            f"{path}:{header_line}: the header has one column {header[0]!r}; the sheet must be "
            "tab-separated (TSV), not comma- or space-separated"
        )
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise SampleSheetError(
            f"{path}:{header_line}: duplicate column(s) {', '.join(sorted(dupes))}"
        )
    missing = [c for c in schema["required"] if c not in header]
    if missing:
        raise SampleSheetError(
            f"{path}:{header_line}: missing required column(s) {', '.join(missing)}; "
            f"the header must include {', '.join(schema['required'])}"
        )
    unknown = [c for c in header if c not in schema["properties"]]
    if unknown:
        raise SampleSheetError(
            f"{path}:{header_line}: unknown column(s) {', '.join(unknown)}; allowed columns are "
            f"{', '.join(schema['properties'])} (see config/README.md)"
        )
    if len(rows) == 1:
        raise SampleSheetError(f"{path}: the sample sheet has a header but no rows")

    import jsonschema  # lazy: jsonschema (~0.2 s) stays out of `dnalm cds`, which reads no sheet

    validator = jsonschema.Draft202012Validator(schema)
    # The row schema has no rule across columns (the header check above covers `required`
    # and unknown columns), so a row is valid when each cell is: each distinct cell value is
    # checked once, and the whole-row validation runs only to word the error of a bad row.
    cell_validators = {
        key: jsonschema.Draft202012Validator(prop) for key, prop in schema["properties"].items()
    }
    checked: dict[tuple[str, type, object], bool] = {}

    def cell_ok(key: str, value: object) -> bool:
        token = (key, type(value), value)
        ok = checked.get(token)
        if ok is None:
            ok = checked[token] = key in cell_validators and cell_validators[key].is_valid(value)
        return ok

    reserved = reserved_sample_ids(schema)
    reserved_folded = {r.lower() for r in reserved}
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    seen_folded: dict[str, tuple[str, int]] = {}  # casefolded ID -> (ID, line)
    for (lineno, _), cells in zip(numbered[1:], rows[1:], strict=True):
        where = f"{path}:{lineno}"
        if len(cells) != len(header):
            raise SampleSheetError(
                f"{where}: {len(cells)} fields but the header has {len(header)}; "
                "check the tabs in this line"
            )
        record = _coerce(dict(zip(header, cells, strict=True)), where)
        for key, prop in schema["properties"].items():
            if key not in record and "default" in prop:
                record[key] = prop["default"]
        if not all(cell_ok(key, value) for key, value in record.items()):
            errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
            raise SampleSheetError(_schema_message(errors[0], where, schema))
        sid = record["sample"]
        if sid.lower() in reserved_folded:
            raise SampleSheetError(_reserved_message(where, sid, reserved))
        if sid in seen:
            raise SampleSheetError(
                f"{where}: duplicate sample ID {sid!r} (first used on line {seen[sid]}); "
                "sample IDs must be unique"
            )
        other = seen_folded.get(sid.casefold())
        if other is not None:
            raise SampleSheetError(
                f"{where}: sample ID {sid!r} differs only in case from {other[0]!r} (line "
                f"{other[1]}); their files would collide on case-insensitive file systems "
                "(macOS, Windows); rename one of them"
            )
        seen[sid] = lineno
        seen_folded[sid.casefold()] = (sid, lineno)
        gc = record.get("genetic_code")
        if gc is not None and gc not in GENETIC_CODES:
            raise SampleSheetError(
                f"{where}: sample {sid}: genetic_code {gc} is not an NCBI translation table "
                f"(valid: {', '.join(map(str, sorted(GENETIC_CODES)))})"
            )
        fmt = record["format"]
        desc = SAMPLE_FORMATS.get(fmt, f"{where}: sample {sid}: format")
        kind = classify_source(record["source"])
        if desc.annotation and not record["annotation"]:
            raise SampleSheetError(
                f"{where}: sample {sid} has format {fmt} but no annotation; add the GFF3/GTF "
                "path or URL in the `annotation` column"
            )
        if not desc.annotation and record["annotation"]:
            raise SampleSheetError(
                f"{where}: sample {sid} has an annotation but format {fmt}; annotation is only "
                f"used with format {_either(formats_where(lambda f: f.annotation))}"
            )
        if kind == "ncbi" and desc.ncbi_file is None:
            ncbi = [f for f in SAMPLE_FORMATS if f.ncbi_file]
            yields = _either([f"{f.label} (format {f.name})" for f in ncbi])
            raise SampleSheetError(
                f"{where}: sample {sid}: an NCBI accession yields {yields}; set format to one "
                "of them"
            )
        annotate = record.get("annotate", "")
        if annotate and not desc.has_genome:
            genome = _either(formats_where(lambda f: f.has_genome))
            raise SampleSheetError(
                f"{where}: sample {sid}: annotate {annotate} needs a genome sequence, but format "
                f"{fmt} has none; use format {genome}, or leave annotate empty"
            )
        if not annotate and record.get("annotate_mode", "single") != "single":
            raise SampleSheetError(
                f"{where}: sample {sid}: annotate_mode {record['annotate_mode']} without "
                "annotate; set annotate: pyrodigal or leave annotate_mode empty"
            )
        if not desc.has_cds and not annotate and record.get("species_task", True):
            raise SampleSheetError(
                f"{where}: {no_cds_message(sid, 'species_task: false', fmt)} (the species task is "
                "built from held-out CDS)"
            )
        if check_local_files:
            for col in ("source", "annotation"):
                value = record[col]
                if value and classify_source(value) == "local":
                    try:
                        local = expand_local(value, base_dir)
                    except ConfigError as err:
                        raise SampleSheetError(f"{where}: sample {sid}: {col} {err}") from None
                    problem = local_file_problem(local)
                    if problem:
                        raise SampleSheetError(
                            f"{where}: sample {sid}: local {col} file {value} {problem[0]} "
                            f"(looked at {local}); {problem[1]}"
                        )
        samples.append(Sample(**record, line=lineno))
    return samples


def register(subparsers) -> None:
    p = subparsers.add_parser("samples", help="validate a sample sheet and print its rows")
    p.add_argument("sheet", help="path to the TSV sample sheet")
    p.add_argument("--no-file-check", action="store_true", help="do not check local files exist")

    def run(args) -> int:
        for s in load_sample_sheet(args.sheet, check_local_files=not args.no_file_check):
            print(f"{s.sample}\t{s.species}\t{s.format}\t{s.source_kind}\t{s.source}")
        return 0

    p.set_defaults(func=run)
