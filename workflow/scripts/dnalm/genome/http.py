"""HTTP(S)/FTP fetching with retries: transient failures (HTTP 5xx or 429, resets, timeouts,
truncated bodies) are retried with exponential backoff, 404 and other 4xx fail at once with a
hint; shared by downloads and NCBI accession resolution."""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from dnalm import __version__
from dnalm.core.errors import DownloadError

log = logging.getLogger(__name__)


USER_AGENT = f"dnalm/{__version__} (python-urllib)"


CHUNK = 1 << 20  # bytes read per network/disk read


T = TypeVar("T")


class Retryable(Exception):
    """A failure worth another attempt (server hiccup, network, bad bytes in transit)."""

    def __init__(self, message: str, hint: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.hint = hint
        self.retry_after = retry_after


_NETWORK_HINT = (
    "the server or the network failed repeatedly; try again later, or raise the number of "
    "retries (config download.retries / --retries)"
)


def who_label(sample: str, kind: str = "") -> str:
    return f"sample {sample!r}" + (f" ({kind})" if kind else "")


def _hint_for_status(status: int) -> str:
    if status == 404:
        return "the file does not exist at that address; check the URL (or accession) for typos"
    if status in (401, 403):
        return (
            "the server refused access; the link may need a login or may have expired, or the "
            "file may be private"
        )
    return "the server rejected the request; check the URL"


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: ignore it and use our own backoff


def open_url(url: str, timeout: float, who: str):
    """Open `url` and return the response. Raises Retryable for transient failures and
    DownloadError for permanent ones (4xx, FTP 550, unsupported scheme)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        status = f"HTTP {err.code} {err.reason}"
        if err.code >= 500 or err.code in (408, 429):
            raise Retryable(
                f"{status} from {url}", _NETWORK_HINT, _retry_after(err.headers)
            ) from None
        raise DownloadError(f"{who}: {status} for {url}; {_hint_for_status(err.code)}") from None
    except urllib.error.URLError as err:
        reason = str(err.reason)
        if url.lower().startswith("ftp://") and ("550" in reason or "error_perm" in reason):
            raise DownloadError(
                f"{who}: FTP server says {reason!r} for {url}; the file does not exist there, "
                "check the URL"
            ) from None
        if isinstance(err.reason, str) and reason.startswith("unknown url type"):
            raise DownloadError(f"{who}: cannot download {url}: {reason}") from None
        raise Retryable(f"cannot connect for {url}: {reason}", _NETWORK_HINT) from None
    except (http.client.HTTPException, OSError) as err:  # reset, timeout, bad status line
        raise Retryable(f"connection failed for {url}: {err!r}", _NETWORK_HINT) from None


def content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def read_chunks(response, url: str, expected: int | None):
    """Yield the body in chunks; raise Retryable if the connection drops or the body is
    shorter (or longer) than the announced Content-Length."""
    got = 0
    while True:
        try:
            block = response.read(CHUNK)
        except (http.client.HTTPException, OSError) as err:  # IncompleteRead, reset, timeout
            raise Retryable(
                f"connection broke after {got} bytes of {url}: {err!r}", _NETWORK_HINT
            ) from None
        if not block:
            break
        got += len(block)
        yield block
    if expected is not None and got != expected:
        raise Retryable(
            f"truncated body from {url}: got {got} bytes, Content-Length said {expected}",
            _NETWORK_HINT,
        )


def with_retries(
    action: Callable[[], T],
    *,
    what: str,
    who: str,
    url: str,
    retries: int,
    backoff: float,
    max_backoff: float,
) -> T:
    """Run `action` up to 1 + `retries` times, sleeping with exponential backoff between
    attempts that raised Retryable. DownloadError passes through at once."""
    attempts = 1 + max(0, int(retries))
    last: Retryable | None = None
    for attempt in range(1, attempts + 1):
        log.info("%s: %s %s (attempt %d/%d)", who, what, url, attempt, attempts)
        try:
            return action()
        except Retryable as err:
            last = err
            if attempt == attempts:
                break
            delay = min(max_backoff, backoff * 2 ** (attempt - 1))
            if err.retry_after is not None:
                delay = max(delay, min(max_backoff, err.retry_after))
            log.warning(
                "%s: attempt %d/%d failed: %s; retrying in %.2f s",
                who,
                attempt,
                attempts,
                err,
                delay,
            )
            time.sleep(delay)
    assert last is not None
    hint = f"; {last.hint}" if last.hint else ""
    raise DownloadError(
        f"{who}: {what} {url} failed after {attempts} attempt(s); last error: {last}{hint}"
    )


def fetch_bytes(
    url: str, *, who: str, timeout: float, retries: int, backoff: float, max_backoff: float
) -> bytes:
    """A small file (index page, checksum list) in memory, with the same retry policy."""

    def action() -> bytes:
        with open_url(url, timeout, who) as response:
            return b"".join(read_chunks(response, url, content_length(response)))

    return with_retries(
        action,
        what="fetching",
        who=who,
        url=url,
        retries=retries,
        backoff=backoff,
        max_backoff=max_backoff,
    )
