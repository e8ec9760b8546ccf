"""Small I/O helpers shared by every stage: gzip-transparent open, FASTA reading and
writing, and atomic writes (write to a temporary name in the same folder, then rename), so
that a crash never leaves a file that a rerun would trust."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from dnalm.core.errors import InputFormatError

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_text(path: str | os.PathLike, mode: str = "rt"):
    """Open a possibly gzip-compressed text file (decided by content, not by name)."""
    if "r" in mode:
        if is_gzip(path):
            return gzip.open(path, "rt", encoding="utf-8", newline=None)
        return open(path, encoding="utf-8", newline=None)
    if str(path).endswith(".gz"):
        return gzip.open(path, mode if "t" in mode else mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it to `final` only if the block
    succeeds. On any exception the temporary file is removed and `final` is untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix + ".part", dir=final.parent)
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
