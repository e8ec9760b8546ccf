"""Look at HTML (the Snakemake report) the way a user does: in a real, headless Chromium.

- :func:`find_chromium`: the browser binary ($DNALM_CHROMIUM, else chromium /
  chromium-browser / google-chrome / google-chrome-stable on PATH), or None.
- :func:`screenshot` / :func:`dom_dump`: one headless run each (`--screenshot`, `--dump-dom`),
  with a fresh profile, no network services, and a virtual-time budget so the page's
  JavaScript has run before the capture.
- :func:`report_images`: the files a Snakemake 9 report embeds. The report is a React app:
  its figures are not ``<img>`` elements of the page but base64 ``data:`` URIs inside a JSON
  object assigned to ``var results`` in ``<script id="results">``, keyed by the output path;
  the app builds an ``<img>`` only when the user opens a result. :func:`screenshot` and
  :func:`dom_dump` can open one (``show_result=``): they render a copy of the report with a
  script appended that makes the same ``app.setView`` call the result's view button makes.
- :func:`image_stats`: numbers that tell a blank capture from a drawn one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags of every run: headless, no sandbox (root in containers), no GPU, /tmp instead of a
#: small /dev/shm, no background network traffic, no first-run UI, no scrollbars in captures.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",  # one CSS pixel = one screenshot pixel
    # Finish compositing before each capture. Without it the report's navigation column (a
    # translucent slate panel with backdrop-filter: blur) was captured in any of four states,
    # from fully drawn to absent (measured: 4 runs at each of 3 time budgets gave 4 different
    # colours), and a CI run saw a landing page 0.6% non-white; with it, 32 of 32 captures
    # under full CPU load were the drawn one.
    "--run-all-compositor-stages-before-draw",
)


class BrowserError(RuntimeError):
    """The browser failed or produced nothing; the message carries its stderr tail."""


def find_chromium() -> str | None:
    """Path of a Chromium-family browser: $DNALM_CHROMIUM when set (must exist), else the
    first of chromium, chromium-browser, google-chrome(-stable) on PATH; None when absent."""
    env = os.environ.get("DNALM_CHROMIUM")
    if env:
        path = shutil.which(env)
        if path is None:
            raise BrowserError(f"DNALM_CHROMIUM={env!r} is not an executable")
        return path
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_version(browser: str | None = None) -> str:
    browser = browser or _browser()
    proc = subprocess.run([browser, "--version"], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip()


def _browser() -> str:
    path = find_chromium()
    if path is None:
        raise BrowserError("no Chromium found: install chromium or set DNALM_CHROMIUM")
    return path


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="dnalm-chromium-") as profile:
        cmd = [_browser(), *BASE_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            raise BrowserError(f"chromium did not finish in {timeout} s: {cmd}") from err
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-3000:]
        raise BrowserError(f"chromium exited {proc.returncode}: {cmd}\n{tail}")
    return proc


# ----------------------------------------------------------------------------- report content


@dataclass
class ReportFile:
    """One result embedded in a Snakemake report."""

    key: str  # the output path as the workflow names it (e.g. results/figures/x.png)
    filename: str
    mime: str
    caption: str  # rendered caption HTML ("" when none)
    category: str | None
    data: bytes


_DATA_URI = re.compile(r"^data:(?P<mime>[^;,]+)(?P<params>(?:;[^;,]*)*?);base64,(?P<b64>.*)$", re.S)


def _script_json(html: str, script_id: str, var: str):
    """The JSON value assigned to `var` in ``<script id="script_id">``."""
    m = re.search(rf'<script id="{re.escape(script_id)}">\s*var {re.escape(var)}\s*=\s*', html)
    if m is None:
        return None
    value, _ = json.JSONDecoder().raw_decode(html, m.end())
    return value


def report_images(html_path: str | os.PathLike) -> dict[str, ReportFile]:
    """The results embedded in a self-contained Snakemake 9 report, keyed by output path,
    with their bytes decoded from the data URIs. Raises ValueError when the file is not such a
    report (e.g. a .zip report, whose results live in data/raw/)."""
    html = Path(html_path).read_text(encoding="utf-8")
    results = _script_json(html, "results", "results")
    if results is None:
        raise ValueError(f'{html_path}: no <script id="results"> block; not a Snakemake report?')
    categories = _script_json(html, "categories", "categories") or {}
    where = {
        key: cat for cat, subcats in categories.items() for keys in subcats.values() for key in keys
    }
    out = {}
    for key, entry in results.items():
        m = _DATA_URI.match(entry.get("data_uri", ""))
        if m is None:
            raise ValueError(f"{html_path}: result {key!r} is not embedded as a base64 data URI")
        out[key] = ReportFile(
            key=key,
            filename=entry.get("filename", ""),
            mime=entry.get("mime_type") or m["mime"],
            caption=entry.get("caption") or "",
            category=where.get(key),
            data=base64.b64decode(m["b64"]),
        )
    return out


def _open_result_copy(html_path: Path, result_key: str, workdir: Path) -> Path:
    """A copy of the report that opens `result_key` (content and result info) once the app
    is up: the same ``app.setView`` call as the result's view button."""
    html = html_path.read_text(encoding="utf-8")
    results = _script_json(html, "results", "results") or {}
    if result_key not in results:
        raise KeyError(f"{html_path}: no result {result_key!r} (has {sorted(results)})")
    kind = "img" if str(results[result_key].get("mime_type", "")).startswith("image/") else "html"
    script = (
        "<script>\n(function open() {\n"
        "  if (typeof app === 'undefined' || !app) { setTimeout(open, 20); return; }\n"
        f"  const key = {json.dumps(result_key)};\n"
        "  app.setView({navbarMode: 'resultinfo', resultPath: key, "
        f"content: {json.dumps(kind)}, contentPath: results[key].data_uri}});\n"
        "})();\n</script>\n"
    )
    idx = html.rfind("</body>")
    html = html[:idx] + script + html[idx:] if idx >= 0 else html + script
    copy = workdir / html_path.name
    copy.write_text(html, encoding="utf-8")
    return copy


# ----------------------------------------------------------------------------- capture


def screenshot(
    html_path: str | os.PathLike,
    out_png: str | os.PathLike,
    width: int = 1400,
    height: int = 2000,
    timeout: float = 120,
    budget_ms: int = 5000,
    show_result: str | None = None,
) -> Path:
    """Render `html_path` in headless Chromium and save a `width` x `height` PNG screenshot.
    `budget_ms` of virtual time lets scripts run first; `show_result` opens that embedded
    result of a Snakemake report (see the module docstring)."""
    html_path, out_png = Path(html_path).resolve(), Path(out_png).resolve()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    out_png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="dnalm-page-") as tmp:
        page = _open_result_copy(html_path, show_result, Path(tmp)) if show_result else html_path
        _run(
            [
                f"--screenshot={out_png}",
                f"--window-size={width},{height}",
                f"--virtual-time-budget={budget_ms}",
                page.as_uri(),
            ],
            timeout,
        )
    if not out_png.is_file() or out_png.stat().st_size == 0:
        raise BrowserError(f"chromium wrote no screenshot to {out_png}")
    return out_png


def dom_dump(
    html_path: str | os.PathLike,
    timeout: float = 120,
    budget_ms: int = 5000,
    show_result: str | None = None,
) -> str:
    """The serialised DOM after the page's scripts ran (`--dump-dom`)."""
    html_path = Path(html_path).resolve()
    with tempfile.TemporaryDirectory(prefix="dnalm-page-") as tmp:
        page = _open_result_copy(html_path, show_result, Path(tmp)) if show_result else html_path
        proc = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", page.as_uri()], timeout)
    return proc.stdout.decode("utf-8", "replace")


def rendered_app(dom: str) -> str:
    """The part of a Snakemake report's DOM dump that the app rendered (``<div id="app">`` up
    to the first ``<script`` after it), without the embedded JSON of the script blocks, which
    holds every file name and caption whether or not anything was drawn."""
    start = dom.find('<div id="app">')
    if start < 0:
        return ""
    end = dom.find("<script", start)
    return dom[start : end if end >= 0 else len(dom)]


# ----------------------------------------------------------------------------- image numbers


def rgb_pixels(png: str | os.PathLike | bytes) -> np.ndarray:
    """A PNG file or bytes as uint8 RGB (H, W, 3); transparency composited on white."""
    import io

    import matplotlib.image as mpimg

    src = io.BytesIO(png) if isinstance(png, bytes) else png
    img = np.asarray(mpimg.imread(src, format="png"), dtype=np.float64)  # (H, W, C) in [0, 1]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.shape[2] == 4:
        alpha = img[..., 3:4]
        img = img[..., :3] * alpha + (1.0 - alpha)
    return np.round(img[..., :3] * 255).astype(np.uint8)


def _codes(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> one int per pixel (0xRRGGBB), shape (...)."""
    a = rgb.astype(np.int64)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def find_subimage(
    haystack: str | os.PathLike | bytes, needle: str | os.PathLike | bytes, min_match: float = 0.99
) -> tuple[int, int] | None:
    """(row, column) where the image `needle` appears unscaled in `haystack` (e.g. an embedded
    figure in a browser screenshot), with at least `min_match` of its pixels identical; None
    when it does not. Candidates are the places of the needle's rarest-in-haystack colour."""
    big, small = rgb_pixels(haystack), rgb_pixels(needle)
    h, w, _ = small.shape
    if h > big.shape[0] or w > big.shape[1]:
        return None
    big_c, small_c = _codes(big), _codes(small)  # (H, W), (h, w)
    colours, counts = np.unique(small_c[small_c != 0xFFFFFF], return_counts=True)
    if colours.size == 0:
        return None
    best = None
    for col in colours[np.argsort(-counts)][:20]:  # the needle's commonest non-white colours
        n_big = int((big_c == col).sum())
        if n_big and (best is None or n_big < best[1]):
            best = (col, n_big)
    if best is None:
        return None
    fy, fx = np.argwhere(small_c == best[0])[0]
    for by, bx in np.argwhere(big_c == best[0])[:20000]:
        y, x = by - fy, bx - fx
        inside = 0 <= y <= big.shape[0] - h and 0 <= x <= big.shape[1] - w
        if inside and np.mean(big_c[y : y + h, x : x + w] == small_c) >= min_match:
            return int(y), int(x)
    return None


def image_stats(png: str | os.PathLike | bytes) -> tuple[float, int, float]:
    """(pixel standard deviation, number of distinct RGB colours, fraction of non-white
    pixels: any channel below 250) of a PNG file or PNG bytes; transparent pixels count as
    white. A blank page is (0, 1, 0)."""
    rgb = rgb_pixels(png)  # (H, W, 3)
    n_colours = len(np.unique(_codes(rgb)))
    nonwhite = float(np.mean(rgb.min(-1) < 250))
    return float(rgb.std() / 255.0), int(n_colours), nonwhite
