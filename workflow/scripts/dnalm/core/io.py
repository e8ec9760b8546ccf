"""Small I/O helpers shared by every stage: gzip-transparent open, FASTA reading and
writing, and atomic writes (write to a temporary name in the same folder, then rename), so
that a crash never leaves a file that a rerun would trust."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dnalm.core.errors import ConfigError, InputFormatError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
#: Compressed or archive formats that are not read (only plain text and gzip are), by their
#: leading bytes: (magic, what it is, how to unpack it).
OTHER_FORMATS: tuple[tuple[bytes, str, str], ...] = (
    (b"PK\x03\x04", "a zip archive", "unzip"),
    (b"PK\x05\x06", "an (empty) zip archive", "unzip"),
    (b"PK\x07\x08", "a zip archive", "unzip"),
    (b"BZh", "a bzip2-compressed file", "bunzip2"),
    (b"\xfd7zXZ\x00", "an xz-compressed file", "unxz"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "unzstd"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "7z x"),
)
_HTML_START = re.compile(rb"^(\xef\xbb\xbf)?\s*<(!doctype\s+html|html[\s>])", re.IGNORECASE)
HEAD_BYTES = 64  # enough leading bytes for `content_problem`


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file (a schema, a profile) read with libyaml's safe loader where PyYAML has it
    (8x faster than the pure-Python one on the config schema), else the pure-Python one."""
    import yaml  # lazy: PyYAML stays out of commands that read no YAML

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def looks_like_html(head: bytes) -> bool:
    """True when `head` (the first bytes of a file) starts an HTML page."""
    return bool(_HTML_START.match(head))


def content_problem(head: bytes) -> str | None:
    """What is wrong with a file whose first bytes are `head` (at least HEAD_BYTES of them,
    or the whole file): 'is a zip archive; ...' with the fix, or None for anything that may
    be plain text or gzip. Only plain text and gzip are read."""
    for magic, what, unpack in OTHER_FORMATS:
        if head.startswith(magic) and (magic != b"BZh" or head[3:4] in b"123456789"):
            return (
                f"is {what}, not a plain or gzip-compressed file; only plain text and gzip "
                f"(.gz) are read: unpack it ({unpack}) and point to the file inside, or "
                "recompress it with gzip"
            )
    if looks_like_html(head):
        return (
            "is an HTML page, not a data file (a download link that leads to a web page, such "
            "as a landing or login page?); use the direct link to the file"
        )
    return None


def default_file_mode(directory: bool = False) -> int:
    """The mode a new file (0666) or folder (0777) gets under the process umask."""
    umask = None
    try:  # Linux >= 4.7: read without changing it (os.umask is process-wide, not thread-safe)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
                    break
    except (OSError, ValueError):
        pass
    if umask is None:
        umask = os.umask(0o022)
        os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def _part_pattern(final: Path, suffix: str) -> re.Pattern:
    """Names of atomic_path's temporary files for `final` (tempfile's 8 random characters)."""
    return re.compile(rf"^\.{re.escape(final.name)}\.[a-z0-9_]{{8}}{re.escape(suffix)}\.part$")


def remove_stale_parts(final: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Remove temporary files that an interrupted (killed) atomic write of `final` left
    beside it; returns what was removed. Only the job that makes `final` writes these, so a
    new attempt at `final` may remove them."""
    final = Path(final)
    pattern = _part_pattern(final, suffix)
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(final.parent):
            if pattern.match(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    if removed:
        log.info(
            "removed %d temporary file(s) of an interrupted earlier write of %s: %s",
            len(removed),
            final,
            ", ".join(p.name for p in removed),
        )
    return removed


def open_text(path: str | os.PathLike, mode: str = "rt"):
    """Open a possibly gzip-compressed text file (decided by content, not by name)."""
    if "r" in mode:
        # utf-8-sig: a leading byte-order mark (some Windows editors write one) is dropped
        if is_gzip(path):
            return gzip.open(path, "rt", encoding="utf-8-sig", newline=None)
        return open(path, encoding="utf-8-sig", newline=None)
    if str(path).endswith(".gz"):
        return gzip.open(path, mode if "t" in mode else mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def set_default_modes(path: str | os.PathLike) -> Path:
    """Give `path` and, for a folder, everything under it the mode a new file or folder gets
    under the umask (0644/0755 with umask 022). Writers that make their own temporary file
    (safetensors' ``save_file``, ``save_pretrained``, ``mkdtemp``) leave 0600 or 0700, which
    other users of a shared results folder cannot read; call this on what they wrote."""
    path = Path(path)
    file_mode, dir_mode = default_file_mode(), default_file_mode(directory=True)
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(root, name), dir_mode)
            for name in files:
                os.chmod(os.path.join(root, name), file_mode)
        os.chmod(path, dir_mode)
    elif path.exists():
        os.chmod(path, file_mode)
    return path


PathArg = str | os.PathLike | Iterable[str | os.PathLike] | None


def _as_paths(value: PathArg) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value]


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:  # hard links and other names of one file
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: Path, folder: Path) -> bool:
    return child.resolve().is_relative_to(folder.resolve()) and folder.resolve() != child.resolve()


def refuse_overwrite(
    inputs: Mapping[str, PathArg],
    outputs: Mapping[str, PathArg],
    out_dirs: Iterable[str] = (),
) -> None:
    """Refuse (ConfigError, naming both options and paths) a command whose output would
    write over one of its inputs, before it does any work. `inputs` and `outputs` map an
    option name (``--fasta``) to its path or paths (None: not given); `out_dirs` names the
    outputs that are folders the command writes (an input inside one is refused too). An
    input folder (a model or tokenizer folder) may not hold an output either: the command
    reads it. Paths are compared resolved (symbolic links, ``..``, hard links), and two
    outputs may not be one file."""
    ins = [(opt, p) for opt, v in inputs.items() for p in _as_paths(v)]
    outs = [(opt, p) for opt, v in outputs.items() for p in _as_paths(v)]
    folders = set(out_dirs)
    for out_opt, out in outs:
        for in_opt, src in ins:
            if _same_file(out, src):
                why = "is the same path as"
            elif out_opt in folders and _inside(src, out):
                why = "is a folder the command writes, and it holds"
            elif src.is_dir() and _inside(out, src):
                why = "lies inside the folder it reads,"
            else:
                continue
            raise ConfigError(
                f"{out_opt} {out} {why} {in_opt} {src}: the command would write over its "
                f"input; give {out_opt} another path"
            )
    for i, (opt_a, a) in enumerate(outs):
        for opt_b, b in outs[i + 1 :]:
            if _same_file(a, b):
                raise ConfigError(
                    f"{opt_a} {a} and {opt_b} {b} are one file: one output would overwrite "
                    f"the other; give {opt_b} another path"
                )


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it to `final` only if the block
    succeeds. On any exception the temporary file is removed and `final` is untouched.
    Temporary files of an earlier write of `final` that was killed are removed first. The
    file gets the usual mode of a new file (0666 less the umask), not mkstemp's 0600."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(final, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix + ".part", dir=final.parent)
    try:
        os.fchmod(fd, default_file_mode())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_write(final: str | os.PathLike, mode: str = "wt"):
    """Open a file for writing that appears at `final` only when the block succeeds.
    Names ending in .gz are gzip-compressed (with a fixed mtime, so output is reproducible)."""
    final = Path(final)
    with atomic_path(final) as tmp:
        if final.name.endswith(".gz"):
            raw = open(tmp, "wb")  # noqa: SIM115 (closed in finally)
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            fh = io.TextIOWrapper(gz, encoding="utf-8") if "b" not in mode else gz
            try:
                yield fh
            finally:
                fh.close()
                raw.close()
        else:
            with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
                yield fh


def read_fasta(path: str | os.PathLike) -> Iterator[tuple[str, str, int]]:
    """Yield (header, sequence, line_number_of_header) from a FASTA file (gzip or plain).

    The header is the text after '>' (id and description). Sequence lines are joined with
    whitespace removed; case is kept. Raises InputFormatError naming the file and line for
    text before the first header."""
    header = None
    hline = 0
    chunks: list[str] = []
    with open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if header is not None:
                    yield header, "".join(chunks), hline
                header, hline, chunks = line[1:].strip(), lineno, []
            elif line.strip() == "" or line.startswith(";"):
                continue
            else:
                if header is None:
                    raise InputFormatError(
                        f"{path}:{lineno}: sequence data before the first '>' header; "
                        "is this a FASTA file?"
                    )
                chunks.append("".join(line.split()))
    if header is not None:
        yield header, "".join(chunks), hline


def read_unique_fasta(path: str | os.PathLike) -> Iterator[tuple[str, str, int]]:
    """Yield (name, sequence, header line) of each record of a FASTA whose records are
    looked up by name (a genome's contigs, the sequences of a score table): the name is the
    header's first word. Two records of one name are refused (InputFormatError naming the
    file, the name and both header lines), where a lookup would silently take one."""
    first: dict[str, int] = {}
    for header, seq, lineno in read_fasta(path):
        name = header.split()[0] if header.split() else ""
        if name and name in first:
            raise InputFormatError(
                f"{path}: two records are named {name!r} (headers at lines {first[name]} and "
                f"{lineno}); record names must be unique: remove or rename one"
            )
        first.setdefault(name, lineno)
        yield name, seq, lineno


def read_fasta_files(
    paths: Iterable[str | os.PathLike],
) -> Iterator[tuple[int, str, str, int]]:
    """Yield (file index, record id, sequence, header line) of every record of the FASTA
    files, in order. The id is the header's first word (``file:line`` without one), made
    unique by the file's position (``id#i``) when an earlier record already has it, so that
    records of several samples' files keep distinct ids."""
    seen: set[str] = set()
    for i, path in enumerate(paths):
        for header, seq, lineno in read_fasta(path):
            sid = header.split()[0] if header.split() else f"{os.path.basename(path)}:{lineno}"
            if sid in seen:
                sid = f"{sid}#{i}"
            seen.add(sid)
            yield i, sid, seq, lineno


def header_tags(header: str) -> tuple[str, dict[str, str]]:
    """(id, {key: value}) of a FASTA header ``id key=value key=value ...`` (words without
    ``=`` are ignored); the id is "" for an empty header."""
    parts = header.split()
    return (parts[0] if parts else ""), dict(p.split("=", 1) for p in parts[1:] if "=" in p)


def write_fasta(fh, records: Iterable[tuple[str, str]], width: int = 80) -> int:
    """Write (header, sequence) pairs; returns the number written."""
    n = 0
    for header, seq in records:
        fh.write(f">{header}\n")
        for i in range(0, len(seq), width):
            fh.write(seq[i : i + width] + "\n")
        n += 1
    return n


def file_digest(path: str | os.PathLike, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_json_object(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The JSON object in `path`; InputFormatError naming the file and `what` it should be
    when it is missing, not JSON, or not an object."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: {what} not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputFormatError(f"{path}: {what} is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise InputFormatError(f"{path}: {what} must hold a JSON object")
    return data
