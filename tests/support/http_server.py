"""A real HTTP server on 127.0.0.1 for download tests, laid out like NCBI and Ensembl.

It serves the files under a root folder (built at test time, never committed), with
Apache-style HTML index pages for folders (the format of ftp.ncbi.nlm.nih.gov), counts the
requests per path, and replays scripted failures per path: an HTTP status N times, a
truncated body (Content-Length larger than what is sent, then the connection closes), wrong
content (a checksum mismatch), a dropped connection, a slow answer (client time-out).

Usage::

    with LocalHTTPServer(tmp_path / "www") as server:
        asm = server.add_ncbi_assembly("GCF_000005845.2", "ASM584v2",
                                       {"_genomic.gbff.gz": gzip_bytes(gbff_text)})
        server.fail(asm.paths["_genomic.gbff.gz"], status=500, times=2)
        acquire("ecoli", "GCF_000005845.2", dest, ncbi_base_url=server.ncbi_base_url)
        assert server.hits(asm.paths["_genomic.gbff.gz"]) == 3

Paths are relative to the server root, without a leading '/', e.g.
``genomes/all/GCF/000/005/845/GCF_000005845.2_ASM584v2/md5checksums.txt``.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import re
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def gzip_bytes(data: bytes | str) -> bytes:
    """gzip `data` reproducibly (mtime 0)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return gzip.compress(data, mtime=0)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class Failure:
    """One scripted misbehaviour. mode: 'status' | 'truncate' | 'content' | 'drop' | 'delay'.
    times: how many requests it applies to (None: every request)."""

    mode: str
    times: int | None = 1
    status: int = 500
    content: bytes = b""
    seconds: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NcbiEntry:
    """What `add_ncbi_assembly` created: the folder name, its server path and URL, and per
    file suffix its server path, URL and published md5."""

    name: str
    folder: str
    folder_url: str
    paths: dict[str, str]
    urls: dict[str, str]
    md5: dict[str, str]


def _ncbi_index(url_path: str, entries: list[tuple[str, bool, float, int]]) -> bytes:
    """An Apache-style 'Index of' page like NCBI's: a parent link with an absolute href,
    then one relative link per entry (folders end in '/')."""
    title = html.escape(url_path)
    parent = url_path.rstrip("/").rsplit("/", 1)[0] + "/"
    lines = [
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">',
        f"<html><head><title>Index of {title}</title></head><body>",
        f"<h1>Index of {title}</h1>",
        "<pre>Name                                                 Last modified      Size  <hr>"
        f'<a href="{html.escape(parent)}">Parent Directory</a>'
        "                                                   -   ",
    ]
    for name, is_dir, mtime, size in entries:
        shown = name + ("/" if is_dir else "")
        href = urllib.parse.quote(name) + ("/" if is_dir else "")
        stamp = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M")
        lines.append(
            f'<a href="{href}">{html.escape(shown)}</a>{" " * max(1, 52 - len(shown))}'
            f"{stamp}  {'-' if is_dir else size:>5}  "
        )
    lines.append("<hr></pre>\n</body></html>")
    return ("\n".join(lines) + "\n").encode("utf-8")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that gave up (time-out tests) breaks the pipe: not worth a traceback."""

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalHTTPServer:
    """Threaded HTTP server on 127.0.0.1 (random free port) serving `root`.

    A context manager; `start()`/`stop()` also work. `root` defaults to a fresh temporary
    folder (removed on stop)."""

    def __init__(self, root: str | Path | None = None):
        self._tmp = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="dnalm-http-")
            root = self._tmp.name
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._failures: dict[str, list[Failure]] = {}
        self._hits: dict[str, int] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) in arrival order
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> LocalHTTPServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalHTTPServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/``"""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ncbi_base_url(self) -> str:
        """The stand-in for ``https://ftp.ncbi.nlm.nih.gov/genomes/all/``."""
        return self.base_url + "genomes/all/"

    def url(self, path: str) -> str:
        return self.base_url + urllib.parse.quote(_key(path), safe="/")

    # ---------------------------------------------------------------- content

    def add_file(self, path: str, data: bytes | str) -> str:
        """Write `data` at `path` under the root (folders created) and return its URL."""
        target = self.root / _key(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return self.url(path)

    def add_ncbi_assembly(
        self,
        accession: str,
        assembly_name: str,
        files: dict[str, bytes],
        md5_override: dict[str, str] | None = None,
    ) -> NcbiEntry:
        """Lay out one assembly version as NCBI does.

        accession: with version (``GCF_000005845.2``); files: suffix -> bytes, e.g.
        ``{"_genomic.gbff.gz": ...}``; the folder also gets ``md5checksums.txt`` (md5 of
        every file, or `md5_override[suffix]` to publish a wrong one) and an
        ``_assembly_report.txt``."""
        m = re.fullmatch(r"(GC[AF])_(\d{3})(\d{3})(\d{3})\.(\d+)", accession)
        if not m:
            raise ValueError(f"{accession!r}: give a versioned GCF_/GCA_ accession")
        name = f"{accession}_{assembly_name}"
        folder = f"genomes/all/{m[1]}/{m[2]}/{m[3]}/{m[4]}/{name}"
        files = {"_assembly_report.txt": f"# Assembly name:  {assembly_name}\n".encode(), **files}
        paths, urls, md5s = {}, {}, {}
        lines = []
        for suffix, data in files.items():
            fname = name + suffix
            paths[suffix] = f"{folder}/{fname}"
            urls[suffix] = self.add_file(paths[suffix], data)
            md5s[suffix] = (md5_override or {}).get(suffix, md5_hex(data))
            lines.append(f"{md5s[suffix]}  ./{fname}\n")
        self.add_file(f"{folder}/md5checksums.txt", "".join(lines))
        return NcbiEntry(name, folder, self.url(folder + "/"), paths, urls, md5s)

    def add_ensembl(
        self,
        filename: str,
        data: bytes,
        *,
        release: int = 113,
        species: str = "homo_sapiens",
        section: str = "cds",
    ) -> str:
        """A file at ``pub/release-{release}/fasta/{species}/{section}/{filename}`` (the
        Ensembl FTP layout); returns its URL."""
        return self.add_file(f"pub/release-{release}/fasta/{species}/{section}/{filename}", data)

    # ---------------------------------------------------------------- failures

    def script(self, path: str, *failures: Failure) -> None:
        """Queue failures for `path`; each applies to its `times` requests, in order."""
        with self._lock:
            self._failures.setdefault(_key(path), []).extend(failures)

    def fail(
        self,
        path: str,
        status: int = 500,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer `status` (with an HTML error body) to the next `times` requests."""
        self.script(path, Failure("status", times, status=status, headers=headers or {}))

    def truncate(self, path: str, times: int | None = 1) -> None:
        """Announce the full Content-Length, send half of the body, close the connection."""
        self.script(path, Failure("truncate", times))

    def wrong_content(self, path: str, content: bytes, times: int | None = 1) -> None:
        """Serve `content` (with a consistent Content-Length) instead of the file."""
        self.script(path, Failure("content", times, content=content))

    def drop(self, path: str, times: int | None = 1) -> None:
        """Close the connection without answering (the client sees a reset/disconnect)."""
        self.script(path, Failure("drop", times))

    def delay(self, path: str, seconds: float, times: int | None = 1) -> None:
        """Wait `seconds` before answering normally (to trigger client time-outs)."""
        self.script(path, Failure("delay", times, seconds=seconds))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def hits(self, path: str) -> int:
        """Number of requests (GET or HEAD) received for `path`."""
        with self._lock:
            return self._hits.get(_key(path), 0)

    def _next_failure(self, key: str) -> Failure | None:
        with self._lock:
            self._hits[key] = self._hits.get(key, 0) + 1
            queue = self._failures.get(key)
            if not queue:
                return None
            failure = queue[0]
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
            return failure


def _key(path: str) -> str:
    return urllib.parse.unquote(path).lstrip("/")


class _Handler(BaseHTTPRequestHandler):
    server_state: LocalHTTPServer
    server_version = "dnalm-test-http/1.0"

    def log_message(self, format: str, *args) -> None:
        pass  # keep test output clean; `requests` records what came in

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str,
        length: int | None = None,
        headers: dict[str, str] | None = None,
        head: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        state = self.server_state
        url_path = urllib.parse.urlsplit(self.path).path
        key = _key(url_path)
        with state._lock:
            state.requests.append((self.command, key))
        failure = state._next_failure(key)
        if failure is not None:
            if failure.mode == "status":
                body = f"<html><body><h1>{failure.status}</h1></body></html>".encode()
                self._send(failure.status, body, "text/html", headers=failure.headers, head=head)
                return
            if failure.mode == "drop":
                self.close_connection = True
                return
            if failure.mode == "delay":
                time.sleep(failure.seconds)
            if failure.mode == "content":
                self._send(200, failure.content, "application/octet-stream", head=head)
                return

        target = (state.root / key).resolve()
        if not target.is_relative_to(state.root) or not target.exists():
            self._send(
                404, b"<html><body><h1>404 Not Found</h1></body></html>", "text/html", head=head
            )
            return
        if target.is_dir():
            if not url_path.endswith("/"):
                self.send_response(301)
                self.send_header("Location", url_path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            entries = sorted(
                (p.name, p.is_dir(), p.stat().st_mtime, p.stat().st_size) for p in target.iterdir()
            )
            self._send(200, _ncbi_index(url_path, entries), "text/html; charset=utf-8", head=head)
            return
        body = target.read_bytes()
        ctype = "text/plain" if target.suffix == ".txt" else "application/octet-stream"
        if failure is not None and failure.mode == "truncate":
            self._send(200, body[: len(body) // 2], ctype, length=len(body), head=head)
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(200, body, ctype, head=head)


@pytest.fixture
def http_server(tmp_path):
    """A started LocalHTTPServer serving ``tmp_path / "www"`` (import into a conftest or
    test module to use)."""
    with LocalHTTPServer(tmp_path / "www") as server:
        yield server
