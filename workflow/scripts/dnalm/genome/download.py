"""Genome acquisition: turn a sample sheet `source` into a verified local file.

A source is one of three kinds (see `classify_source`):

* **NCBI assembly accession** — ``GCF_`` or ``GCA_`` + 9 digits, with or without a version
  (``GCF_000005845.2`` or ``GCF_000005845``). It is resolved on NCBI's genomes server
  (``https://ftp.ncbi.nlm.nih.gov/genomes/all/``, the HTTPS view of the FTP site; the base
  is the argument ``ncbi_base_url``, so tests point it at a server on 127.0.0.1):

  1. the 9 digits split in three give the folder of the accession,
     e.g. ``GCF_000005845.2`` -> ``{base}GCF/000/005/845/``;
  2. that folder's HTML index lists one subfolder per assembly version, named
     ``{prefix}_{digits}.{version}_{assembly name}/`` (``GCF_000005845.2_ASM584v2/``); the
     subfolder of the requested version is used, or the highest version when the accession
     has none;
  3. in that subfolder ``{subfolder}_genomic.gbff.gz`` is the annotated GenBank flat file
     (other files: ``_genomic.fna.gz``, ``_genomic.gff.gz``, ``_cds_from_genomic.fna.gz``,
     see `NCBI_FILES`) and ``md5checksums.txt`` lists the md5 of every file, one per line
     as ``<md5>  ./<file name>``. The download is checked against that md5.

* **URL** — ``http://``, ``https://`` or ``ftp://``; downloaded as given (stdlib urllib).

* **local path** — anything else. ``~`` and ``$VARS`` (e.g. ``$DNALM_SHARED_DATA``) are
  expanded and relative paths are taken from the working directory. The file is used in
  place (never copied); it is only verified.

Downloads are written atomically (streamed to a temporary file beside the destination,
verified, then renamed), so a failed or corrupt download leaves nothing behind. Transient
failures (HTTP 5xx, 408 and 429, connection resets, time-outs, a body shorter than its
Content-Length) are retried with exponential backoff (``backoff * 2**(attempt - 1)`` seconds,
capped at ``max_backoff``, at least the server's ``Retry-After``); a permanent failure
(HTTP 404, 403 and other 4xx, FTP 550) stops at once. A file that fails verification
(checksum mismatch, corrupt gzip) is fetched again, at most ``retries`` more times, then the
error gives the expected and actual checksum.

Verification, for downloads and local files alike: the sheet's md5 and/or sha256 when given,
NCBI's published md5 for accessions, and for gzip content (gzip magic bytes, or a name
ending in ``.gz``) a full streaming decompression, which catches truncated or corrupt
archives that a checksum of unknown value cannot.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from dnalm import __version__
from dnalm.core.errors import DownloadError
from dnalm.core.io import (
    GZIP_MAGIC,
    HEAD_BYTES,
    atomic_path,
    atomic_write,
    content_problem,
    is_gzip,
    looks_like_html,
)
from dnalm.core.log import progress_disabled
from dnalm.genome.http import (
    CHUNK,
    Retryable,
    content_length,
    open_url,
    read_chunks,
    who_label,
    with_retries,
)
from dnalm.genome.ncbi import HEX_DIGESTS, NCBI_BASE, NCBI_FILES, resolve_ncbi_assembly
from dnalm.genome.samples import (
    ACCESSION_RE,
    Sample,
    classify_source,
    expand_local,
    local_file_problem,
)

__all__ = [
    "ACCESSION_RE",
    "NCBI_BASE",
    "NCBI_FILES",
    "FileDigests",
    "acquire",
    "check_gzip",
    "classify_source",
    "download",
    "register",
    "resolve_local",
    "verify_file",
    "verify_sources",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class FileDigests:
    """Size and checksums of a file (for logs and provenance records)."""

    size: int
    md5: str
    sha256: str


def _normalise_checksum(value: str | None, algorithm: str, who: str) -> str | None:
    if value is None or not str(value).strip():
        return None
    value = str(value).strip().lower()
    if not HEX_DIGESTS[algorithm].match(value):
        n = 32 if algorithm == "md5" else 64
        raise DownloadError(
            f"{who}: expected {algorithm} {value!r} is not {n} hexadecimal characters; fix the "
            f"{algorithm} column of the sample sheet"
        )
    return value


def _compare(algorithm: str, expected: str | None, got: str, where: str) -> str | None:
    """None when it matches (or nothing is expected), else the mismatch message."""
    if expected is None or expected == got:
        return None
    return f"{algorithm} mismatch for {where}: expected {expected}, got {got}"


def check_gzip(path: str | os.PathLike) -> int:
    """Decompress `path` fully (streaming, all members) and return the uncompressed size.
    Raises ValueError with the reason when the file is not a valid, complete gzip file."""
    total = 0
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(CHUNK):
                total += len(block)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"corrupt gzip data ({err})") from None
    return total


def _gzip_expected(path: Path, *names: str) -> bool:
    """Check gzip when the content starts with the gzip magic or a name says .gz."""
    with open(path, "rb") as fh:
        magic = fh.read(2) == GZIP_MAGIC
    return magic or any(n.lower().endswith(".gz") for n in names if n)


def _verify_content(
    path: Path,
    digests: FileDigests,
    md5: str | None,
    sha256: str | None,
    where: str,
    names: tuple[str, ...],
) -> str | None:
    """Return a message describing the first verification failure, or None."""
    for algorithm, expected, got in (("md5", md5, digests.md5), ("sha256", sha256, digests.sha256)):
        problem = _compare(algorithm, expected, got, where)
        if problem:
            return problem
    if _gzip_expected(path, *names):
        try:
            check_gzip(path)
        except ValueError as err:
            return f"{where} is not a valid gzip file: {err}"
    return None


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(HEAD_BYTES)


def _html_answer(url: str, content_type: str, head: bytes) -> str | None:
    """The problem when a download answered with an HTML page instead of the file: the body
    starts like HTML, or it is labelled text/html and starts with markup. None otherwise."""
    labelled = content_type.split(";")[0].strip().lower() in ("text/html", "application/xhtml+xml")
    if looks_like_html(head) or (labelled and head.lstrip().startswith(b"<")):
        shown = head[:40].decode("utf-8", "replace").strip()
        return (
            f"{url} answered with an HTML page (Content-Type {content_type or 'not given'}, "
            f"starts with {shown!r}), not the file: the link leads to a web page (a landing, "
            "login or error page); use the direct download link of the file. Nothing was saved"
        )
    if labelled:
        log.warning("%s is labelled %s but does not look like HTML; kept", url, content_type)
    return None


def _digest_file(path: Path) -> FileDigests:
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            md5.update(block)
            sha.update(block)
            size += len(block)
    return FileDigests(size, md5.hexdigest(), sha.hexdigest())


def verify_file(
    path: str | os.PathLike,
    *,
    sample: str,
    md5: str | None = None,
    sha256: str | None = None,
    kind: str = "",
) -> FileDigests:
    """Verify an existing file (a local source): md5/sha256 when given, and gzip integrity
    when the file is gzip (by content or a ``.gz`` name). Returns its size and checksums.
    Raises DownloadError naming the sample and path on any mismatch."""
    path = Path(path)
    who = who_label(sample, kind)
    md5 = _normalise_checksum(md5, "md5", who)
    sha256 = _normalise_checksum(sha256, "sha256", who)
    try:
        problem = content_problem(_read_head(path))
    except OSError as err:
        raise DownloadError(
            f"{who}: {path} cannot be read ({err.strerror}); make it readable for the user "
            "running the workflow (e.g. chmod a+r)"
        ) from None
    if problem:
        raise DownloadError(
            f"{who}: {path} {problem} (if it was downloaded, delete it so that the next run "
            "fetches it again)"
        )
    digests = _digest_file(path)
    problem = _verify_content(path, digests, md5, sha256, str(path), (path.name,))
    if problem:
        raise DownloadError(
            f"{who}: {problem}; the file is damaged or is not the one the sample sheet "
            "describes: replace it or fix the md5/sha256 column"
        )
    return digests


def verify_sources(
    sample: Sample,
    primary: str | os.PathLike,
    annotation: str | os.PathLike | None,
    record_path: str | os.PathLike,
) -> dict:
    """Rule verify_sources: verify a sample's genome file (and its annotation) against the
    sheet's checksums (:func:`verify_file`) and write where they came from, their size, mtime
    and checksums to `record_path` (resources/genomes/{sample}/provenance.json), atomically.
    Returns the record."""
    record = {"sample": sample.sample, "species": sample.species, "format": sample.format}
    record["files"] = {}
    files = {"primary": (primary, sample.source, sample.md5, sample.sha256)}
    if sample.annotation:
        files["annotation"] = (annotation, sample.annotation, sample.annotation_md5, "")
    for which, (path, source, md5, sha256) in files.items():
        if not path:
            raise DownloadError(
                f"{who_label(sample.sample, which)}: no {which} file given for {source}"
            )
        digests = verify_file(
            path, sample=sample.sample, md5=md5 or None, sha256=sha256 or None, kind=which
        )
        record["files"][which] = {
            "source": source,
            "path": str(path),
            "size": digests.size,
            "mtime_ns": os.stat(path).st_mtime_ns,
            "md5": digests.md5,
            "sha256": digests.sha256,
            "checked": [n for n, v in (("md5", md5), ("sha256", sha256)) if v]
            + (["gzip integrity"] if is_gzip(path) else []),
        }
    record["verified_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    record["dnalm_version"] = __version__
    with atomic_write(record_path) as fh:
        json.dump(record, fh, indent=2)
    return record


# --------------------------------------------------------------------------- download


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sample: str,
    md5: str | None = None,
    sha256: str | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    max_backoff: float = 60.0,
    kind: str = "",
) -> Path:
    """Download `url` to `dest` atomically and verify it; return `dest` as a Path.

    Tries at most ``1 + retries`` times. Transient failures and failed verification
    (md5/sha256 mismatch, corrupt or truncated gzip) are retried after
    ``min(max_backoff, backoff * 2**(attempt - 1))`` seconds; HTTP 4xx (except 408/429) and
    FTP 550 fail at once. gzip integrity is checked when the content starts with the gzip
    magic or the URL or `dest` name ends in ``.gz``. On failure, DownloadError names the
    sample and URL, and neither `dest` nor a temporary file is left behind (an existing
    `dest` is left untouched). `timeout` is seconds per connect/read, not for the whole file.
    """
    dest = Path(dest)
    who = who_label(sample, kind)
    md5 = _normalise_checksum(md5, "md5", who)
    sha256 = _normalise_checksum(sha256, "sha256", who)
    url_name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])

    def attempt() -> FileDigests:
        with atomic_path(dest) as tmp:
            with open_url(url, timeout, who) as response:
                expected = content_length(response)
                content_type = response.headers.get("Content-Type", "")
                h_md5, h_sha = hashlib.md5(), hashlib.sha256()
                size = 0
                with (
                    open(tmp, "wb") as out,
                    tqdm(
                        total=expected,
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1024,
                        desc=f"{sample}: {url_name or dest.name}",
                        leave=False,
                        disable=progress_disabled(),
                    ) as bar,
                ):
                    for block in read_chunks(response, url, expected):
                        out.write(block)
                        h_md5.update(block)
                        h_sha.update(block)
                        size += len(block)
                        bar.update(len(block))
            head = _read_head(tmp)
            html = _html_answer(url, content_type, head)
            if html:  # permanent: the same page comes back on every attempt
                raise DownloadError(f"{who}: {html}")
            other = content_problem(head)
            if other:
                raise DownloadError(
                    f"{who}: {url} {other}; download and unpack it yourself and give the local "
                    "path in the sample sheet. Nothing was saved"
                )
            digests = FileDigests(size, h_md5.hexdigest(), h_sha.hexdigest())
            problem = _verify_content(tmp, digests, md5, sha256, url, (url_name, dest.name))
            if problem:
                raise Retryable(
                    problem,
                    "the file on the server differs from what was expected: check the "
                    "md5/sha256 in the sample sheet, or whether the file changed upstream",
                )
        return digests

    digests = with_retries(
        attempt,
        what="downloading",
        who=who,
        url=url,
        retries=retries,
        backoff=backoff,
        max_backoff=max_backoff,
    )
    log.info(
        "%s: saved %s (%d bytes, md5 %s, sha256 %s)",
        who,
        dest,
        digests.size,
        digests.md5,
        digests.sha256,
    )
    return dest


# --------------------------------------------------------------------------- acquire


def resolve_local(source: str, *, sample: str, kind: str = "") -> Path:
    """A local source as a path: ``~`` and ``$VARS`` expanded, relative to the working
    directory. Raises DownloadError naming the sample when a variable is unset or the file
    is missing. The path is returned as written (symlinks are not resolved), the same
    path the workflow's input functions use."""
    who = who_label(sample, kind)
    expanded = os.path.expandvars(os.path.expanduser(source))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise DownloadError(
            f"{who}: source {source!r} uses environment variable(s) {', '.join(unset)} that "
            "are not set; export them before running, or write the full path"
        )
    path = expand_local(source)
    problem = local_file_problem(path)
    if problem and problem[0] == "not found":
        raise DownloadError(
            f"{who}: local file {source!r} not found (looked at {path}). A source that is "
            "neither an NCBI accession (GCF_/GCA_ + 9 digits) nor an http(s)/ftp URL is "
            "taken as a path; fix the path in the sample sheet"
        )
    if problem:
        raise DownloadError(
            f"{who}: local file {source!r} {problem[0]} (looked at {path}); {problem[1]}"
        )
    return path


def _url_filename(url: str, who: str) -> str:
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", ".."):
        raise DownloadError(
            f"{who}: URL {url} has no file name (it ends in '/'); give the URL of the file"
        )
    return name


def acquire(
    sample: str,
    source: str,
    dest_dir: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    kind: str = "genome",
    filename: str | None = None,
    ncbi_file: str = "gbff",
    ncbi_base_url: str = NCBI_BASE,
    retries: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    max_backoff: float = 60.0,
) -> Path:
    """Make `source` available as a verified local file and return its path.

    * NCBI accession: resolved with `resolve_ncbi_assembly`, then
      ``{name}{NCBI_FILES[ncbi_file]}`` (default the GBFF) is downloaded to
      ``dest_dir/{filename or that file name}`` and checked against NCBI's md5 and the
      sheet's md5/sha256. A sheet md5 that differs from NCBI's fails before downloading.
    * URL: downloaded to ``dest_dir/{filename or the URL's last path component}``.
    * local path: verified and returned in place (`dest_dir` is not used).

    `kind` ("genome", "annotation") only labels messages."""
    who = who_label(sample, kind)
    source = source.strip()
    how = classify_source(source)
    retry = {"retries": retries, "backoff": backoff, "timeout": timeout, "max_backoff": max_backoff}
    if how == "local":
        path = resolve_local(source, sample=sample, kind=kind)
        digests = verify_file(path, sample=sample, md5=md5, sha256=sha256, kind=kind)
        log.info(
            "%s: using local file %s in place (%d bytes, md5 %s)",
            who,
            path,
            digests.size,
            digests.md5,
        )
        return path
    if how == "url":
        dest = Path(dest_dir) / (filename or _url_filename(source, who))
        return download(source, dest, sample=sample, md5=md5, sha256=sha256, kind=kind, **retry)
    if ncbi_file not in NCBI_FILES:
        raise ValueError(f"ncbi_file must be one of {sorted(NCBI_FILES)}, not {ncbi_file!r}")
    asm = resolve_ncbi_assembly(source, ncbi_base_url, sample=sample, **retry)
    file_name = asm.name + NCBI_FILES[ncbi_file]
    published = asm.checksums.get(file_name)
    if published is None:
        raise DownloadError(
            f"{who}: assembly {asm.accession} has no {file_name} in {asm.folder_url} "
            f"(md5checksums.txt lists {len(asm.checksums)} files); it may be unannotated: "
            "use an annotated (usually GCF_) accession, or give a URL/path instead"
        )
    sheet_md5 = _normalise_checksum(md5, "md5", who)
    if sheet_md5 is not None and sheet_md5 != published:
        raise DownloadError(
            f"{who}: the sample sheet's md5 {sheet_md5} differs from NCBI's published md5 "
            f"{published} for {asm.file_url(NCBI_FILES[ncbi_file])}; the file on NCBI has "
            "changed (pin a versioned accession) or the md5 column is wrong"
        )
    dest = Path(dest_dir) / (filename or file_name)
    return download(
        asm.file_url(NCBI_FILES[ncbi_file]),
        dest,
        sample=sample,
        md5=published,
        sha256=sha256,
        kind=kind,
        **retry,
    )


# --------------------------------------------------------------------------- CLI


def register(subparsers) -> None:
    """Add ``dnalm fetch``: acquire one source and print the path of the usable file."""
    p = subparsers.add_parser(
        "fetch",
        help="download (or locate) and verify one genome source; prints its path",
        description=(
            "Resolve an NCBI assembly accession, download a URL, or check a local path; "
            "verify checksums and gzip integrity; print the path of the usable file."
        ),
    )
    p.add_argument("--sample", required=True, help="sample ID (used in messages)")
    p.add_argument("--source", required=True, help="GCF_/GCA_ accession, URL or local path")
    p.add_argument("--dest-dir", default=".", help="folder for downloads (default: .)")
    p.add_argument("--filename", default=None, help="save under this name in --dest-dir")
    p.add_argument("--md5", default=None, help="expected md5 of the file")
    p.add_argument("--sha256", default=None, help="expected sha256 of the file")
    p.add_argument("--kind", default="genome", help="label for messages (genome, annotation)")
    p.add_argument(
        "--ncbi-file",
        default="gbff",
        choices=sorted(NCBI_FILES),
        help="which file of an NCBI assembly (default: gbff)",
    )
    p.add_argument(
        "--ncbi-base-url",
        default=os.environ.get("DNALM_NCBI_BASE_URL", NCBI_BASE),
        help="NCBI genomes base URL (default: $DNALM_NCBI_BASE_URL or %(default)s)",
    )
    p.add_argument("--retries", type=int, default=4, help="extra attempts (default: 4)")
    p.add_argument(
        "--backoff",
        type=float,
        default=1.0,
        help="first retry delay in seconds, doubled each time (default: 1)",
    )
    p.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per connect/read (default: 60)"
    )

    def run(args: argparse.Namespace) -> int:
        path = acquire(
            args.sample,
            args.source,
            args.dest_dir,
            md5=args.md5,
            sha256=args.sha256,
            kind=args.kind,
            filename=args.filename,
            ncbi_file=args.ncbi_file,
            ncbi_base_url=args.ncbi_base_url,
            retries=args.retries,
            backoff=args.backoff,
            timeout=args.timeout,
        )
        print(path)
        return 0

    p.set_defaults(func=run)
