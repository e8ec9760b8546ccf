"""Task input files given as URLs: where they are saved and how they are fetched.

Every file a task or corpus names in the config (``tasks.tf_binding.sequences`` and
``scores``, a sequence task's ``table``, ``corpora.X.exclude_regions`` BED files, ...) may be
a local path or an ``http://``, ``https://`` or ``ftp://`` URL. A URL is downloaded by the
rule ``download_task_file`` through the data stage's downloader (`dnalm.genome.download`:
atomic, retried, gzip-checked) to ``resources/task_files/{id}/{file name}``, where ``id`` is
the first 12 hex digits of the URL's sha1, so two URLs with one file name never collide and
a changed URL is a new file. A dry run needs no network: the path is known from the URL.

A checksum is given in the URL's fragment, as pip does: ``...file.txt.gz#sha256=<64 hex>``
or ``#md5=<32 hex>`` (both joined by ``&``). The fragment is never sent to the server; a
download whose content differs is fetched again and then refused, naming the config key.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnalm.core.errors import ConfigError, DownloadError
from dnalm.genome.samples import classify_source

#: the folder task files from URLs are saved under (one subfolder per URL)
TASK_FILES_DIR = "resources/task_files"
ID_LENGTH = 12
DIGESTS = {"md5": 32, "sha256": 64}


@dataclass(frozen=True)
class TaskFile:
    """One URL of the config: where it was given, what to fetch, what it must hash to."""

    where: str  # the config key, e.g. tasks.tf_binding.sequences
    url: str  # without the fragment
    md5: str | None
    sha256: str | None
    path: str  # resources/task_files/{id}/{name}


def is_url(value: Any) -> bool:
    return isinstance(value, str) and classify_source(value) == "url"


def parse(value: str, where: str) -> TaskFile:
    """The URL `value` of config key `where`, its checksums and its local path."""
    url, _, fragment = value.partition("#")
    digests: dict[str, str] = {}
    for part in filter(None, fragment.split("&")):
        name, _, digest = part.partition("=")
        name, digest = name.strip().lower(), digest.strip().lower()
        if name not in DIGESTS or len(digest) != DIGESTS[name] or not _is_hex(digest):
            raise ConfigError(
                f"{where}: {value!r}: the URL fragment {part!r} is not a checksum; write "
                "#sha256=<64 hex digits> or #md5=<32 hex digits> (or leave the fragment out)"
            )
        digests[name] = digest
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    if not name or name in (".", ".."):
        raise ConfigError(f"{where}: {url!r} does not end in a file name; give the file's URL")
    key = hashlib.sha1(url.encode("utf-8")).hexdigest()[:ID_LENGTH]
    return TaskFile(
        where=where,
        url=url,
        md5=digests.get("md5"),
        sha256=digests.get("sha256"),
        path=f"{TASK_FILES_DIR}/{key}/{name}",
    )


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def collect(config: Mapping[str, Any]) -> dict[str, TaskFile]:
    """Every URL among the files of `config`'s tasks and corpora, by its id (the folder
    name under TASK_FILES_DIR). ConfigError names the key of a malformed checksum."""
    found: dict[str, TaskFile] = {}
    for section in ("tasks", "corpora"):
        for where, value in _strings(config.get(section) or {}, section):
            if is_url(value):
                spec = parse(value, where)
                found.setdefault(Path(spec.path).parent.name, spec)
    return found


def fetch(spec: TaskFile, dest: str, cfg: Mapping[str, Any]) -> Path:
    """Download `spec` to `dest` with the `download` config's retries, back-off and
    time-out, checked against its checksums."""
    from dnalm.genome.download import download  # lazy: tqdm stays out of the DAG build

    try:
        return download(
            spec.url,
            dest,
            sample=spec.where,
            kind="task file",
            md5=spec.md5,
            sha256=spec.sha256,
            retries=cfg["retries"],
            backoff=cfg["backoff_seconds"],
            timeout=cfg["timeout_seconds"],
        )
    except DownloadError as err:
        raise DownloadError(
            f"config key {spec.where}: {err} (the checksum is the #sha256= or #md5= after the "
            "URL in the config, or a suite's `sha256` entry: correct it, or check whether the "
            "file changed upstream)"
        ) from None
