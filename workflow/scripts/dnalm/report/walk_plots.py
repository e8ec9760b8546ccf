"""Figures of DNA walks and chaos-game representations (:mod:`dnalm.core.walks`), in the one
style of :mod:`dnalm.report.style`:

- :func:`plot_walks`: the walks of all sequences of each sample overlaid, normalised for
  length, one panel per sample (the Figure 1 kind of nucleotide-model-experiments);
- :func:`plot_cgr_grid`: frequency CGR images (log colour scale), one panel per sample, or a
  grid of models x sources (natural, model-generated, Markov-generated);
- :func:`source_umap` and :func:`plot_source_umap`: a UMAP of natural and generated
  sequences on k-mer frequency features, coloured by source (the Figure 3 kind).

UMAP settings follow the species probe (15 neighbours, cosine metric, min_dist 0.1, a fixed
seed, with which umap-learn runs single-threaded and reproducibly).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from dnalm.core.alphabet import kmer_frequencies
from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write, read_fasta
from dnalm.core.log import progress_disabled
from dnalm.core.umap2d import umap_2d
from dnalm.core.walks import CGR_CORNERS, cgr_image, walk_batch
from dnalm.report import style

log = logging.getLogger(__name__)

#: colour of natural sequences in the source UMAP (near-black: the reference, not a model)
NATURAL_COLOR = "#222222"
#: colour of the Markov (count-model) sampler: the grey of every dnalm baseline
MARKOV_COLOR = style.BASELINE_COLOR


def read_sequences(
    path: str | os.PathLike, max_sequences: int | None = None, seed: int = 0
) -> list[str]:
    """The sequences of a FASTA file (gzip or plain), or a seeded subset of at most
    `max_sequences` of them (kept in file order)."""
    seqs = [seq for _, seq, _ in read_fasta(path)]
    if max_sequences is not None and len(seqs) > max_sequences:
        keep = np.sort(np.random.default_rng(seed).choice(len(seqs), max_sequences, False))
        seqs = [seqs[i] for i in keep]
    return seqs


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return math.ceil(n / cols), cols


def _hide_unused(axes, n: int) -> None:
    for ax in axes[n:]:
        ax.set_visible(False)


def plot_walks(
    walks: Mapping[str, np.ndarray], png_path: str | os.PathLike, title: str | None = None
) -> list[Path]:
    """One panel per sample: every walk of the sample (an (N, points, 2) array of
    :func:`dnalm.core.walks.walk_batch`) as a thin line, their mean as a thick one, the
    origin marked. Axes are the walk coordinates divided by sequence length (T-A skew to the
    right, G-C skew up). PNG + SVG."""
    if not walks:
        raise InputFormatError("plot_walks: no samples to draw")
    n_rows, n_cols = _grid(len(walks))
    colors = style.palette(len(walks))
    with style.style():
        fig = style.new_figure(min(style.WIDTH_2COL, 2.0 * n_cols + 0.4), 2.0 * n_rows + 0.5)
        axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False).ravel())
        for ax, (name, paths), color in zip(axes, walks.items(), colors, strict=False):
            paths = np.asarray(paths, dtype=np.float64)
            if paths.size:
                alpha = float(np.clip(8.0 / len(paths), 0.03, 0.6))
                for p in paths:
                    ax.plot(p[:, 0], p[:, 1], color=color, lw=0.5, alpha=alpha, rasterized=True)
                mean = paths.mean(0)
                ax.plot(mean[:, 0], mean[:, 1], color="black", lw=1.4, label="mean walk")
            else:
                ax.text(0.5, 0.5, "no sequences", ha="center", va="center",
                        transform=ax.transAxes)  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
            if paths.size:
                ax.plot([0], [0], marker="o", color="black", ms=3)
            ax.axhline(0, color=style.CHANCE_COLOR, lw=0.4, ls=":")
            ax.axvline(0, color=style.CHANCE_COLOR, lw=0.4, ls=":")
            ax.set_title(f"{name} ({len(paths)})", fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
        for ax in axes[: len(walks)]:
            ax.set_xlabel("(T - A) / length", fontsize=7)
            ax.set_ylabel("(G - C) / length", fontsize=7)
        _hide_unused(axes, len(walks))
        if title:
            fig.suptitle(title, fontsize=9)
        return style.save(fig, png_path)


def _draw_cgr(ax, image: np.ndarray, vmin: float, vmax: float, corners: bool):
    # lazy: matplotlib/seaborn (~0.5 s) load only when a figure is drawn
    from matplotlib.colors import LogNorm

    shown = np.where(image > 0, image, np.nan)  # empty cells: background, not log(0)
    im = ax.imshow(
        shown, origin="lower", extent=(0, 1, 0, 1), cmap="viridis", interpolation="nearest",
        norm=LogNorm(vmin=vmin, vmax=vmax),
    )  # fmt: skip
    ax.set_facecolor("white")
    ax.set_xticks([])
    ax.set_yticks([])
    if corners:
        for base, (x, y) in CGR_CORNERS.items():
            ax.text(x, y, base, ha="right" if x == 0 else "left",
                    va="top" if y == 0 else "bottom", fontsize=7, fontweight="bold",
                    transform=ax.transAxes)  # fmt: skip
    return im


def plot_cgr_grid(
    images: Mapping[str, Mapping[str, np.ndarray]],
    png_path: str | os.PathLike,
    k: int,
    title: str | None = None,
    wrap: int | None = None,
) -> list[Path]:
    """Frequency CGR images ((2^k, 2^k), from :func:`dnalm.core.walks.cgr_image`) on one
    log colour scale: rows by the outer key, columns by the inner key (e.g. model x
    natural/generated/markov). With `wrap` a single row is wrapped after that many panels
    (per-sample images). Corners are labelled A, C, G, T. PNG + SVG."""
    cells = [(r, c, img) for r, row in images.items() for c, img in row.items()]
    if not cells:
        raise InputFormatError("plot_cgr_grid: no images to draw")
    positive = [img[img > 0] for _, _, img in cells]
    positive = np.concatenate([p for p in positive if p.size] or [np.ones(1)])
    vmin, vmax = float(positive.min()), float(positive.max())
    vmax = max(vmax, vmin * 1.0001)
    if wrap and len(images) == 1:
        n_rows, n_cols = _grid(len(cells), wrap)
        titles = [c for _, c, _ in cells]
    else:
        n_rows = len(images)
        n_cols = max(len(row) for row in images.values())
        titles = [f"{r}: {c}" if r else c for r, c, _ in cells]
    with style.style():
        fig = style.new_figure(min(style.WIDTH_2COL, 1.8 * n_cols + 1.0), 1.8 * n_rows + 0.5)
        axes = fig.subplots(n_rows, n_cols, squeeze=False)
        flat: list = []
        if wrap and len(images) == 1:
            flat = list(axes.ravel())
        else:
            for i, row in enumerate(images.values()):
                flat += list(axes[i, : len(row)])
                for ax in axes[i, len(row) :]:
                    ax.set_visible(False)
        im = None
        for ax, (_, _, img), name in zip(flat, cells, titles, strict=False):
            im = _draw_cgr(ax, np.asarray(img, dtype=np.float64), vmin, vmax, corners=True)
            if not np.any(img):
                ax.text(0.5, 0.5, "no sequences", ha="center", va="center",
                        transform=ax.transAxes)  # fmt: skip
            ax.set_title(name, fontsize=8)
            ax.grid(False)
        if wrap and len(images) == 1:
            _hide_unused(flat, len(cells))
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8,
                     label=f"{k}-mer frequency (log scale)")  # fmt: skip
        if title:
            fig.suptitle(title, fontsize=9)
        return style.save(fig, png_path)


def source_umap(
    sequences: Mapping[str, Sequence[str]],
    k: int = 4,
    *,
    n_neighbors: int = 15,
    metric: str = "cosine",
    min_dist: float = 0.1,
    seed: int = 42,
) -> pd.DataFrame:
    """UMAP of sequences from several sources (source -> sequences) on their overlapping
    k-mer frequency vectors (:func:`dnalm.core.alphabet.kmer_frequencies`, 4^k features, each
    row summing to 1). -> DataFrame(source, index, length, x, y), reproducible for a seed."""
    names = [s for s, seqs in sequences.items() for _ in seqs]
    seqs = [q for qs in sequences.values() for q in qs]
    if len(seqs) < 3:
        raise InputFormatError(f"UMAP needs at least 3 sequences, got {len(seqs)}")
    xy = umap_2d(
        kmer_frequencies(seqs, k),
        n_neighbors=n_neighbors,
        metric=metric,
        min_dist=min_dist,
        seed=seed,
        what="sequences",
    )
    index = [i for qs in sequences.values() for i in range(len(qs))]
    return pd.DataFrame(
        {
            "source": names,
            "index": index,
            "length": [len(q) for q in seqs],
            "x": xy[:, 0].astype(np.float64),
            "y": xy[:, 1].astype(np.float64),
        }
    )


def source_palette(sources: Sequence[str]) -> dict[str, object]:
    """natural: near-black, markov: baseline grey, every model a palette colour."""
    models = [s for s in sources if s not in ("natural", "markov")]
    colors = dict(zip(models, style.palette(len(models)), strict=True))
    out: dict[str, object] = {}
    for s in sources:
        out[s] = NATURAL_COLOR if s == "natural" else MARKOV_COLOR if s == "markov" else colors[s]
    return out


def plot_source_umap(
    coords: pd.DataFrame, png_path: str | os.PathLike, k: int, title: str | None = None
) -> list[Path]:
    """Scatter of a :func:`source_umap` table coloured by source, natural first (drawn
    underneath), the Markov sampler hollow. PNG + SVG."""
    missing = {"source", "x", "y"} - set(coords.columns)
    if missing:
        raise InputFormatError(f"plot_source_umap: coordinates table lacks {sorted(missing)}")
    order = list(dict.fromkeys(["natural", *coords["source"], "markov"]))
    order = [s for s in order if (coords["source"] == s).any()]
    pal = source_palette(order)
    size = 10 if len(coords) <= 2000 else max(2.0, 10 * math.sqrt(2000 / len(coords)))
    with style.style():
        fig = style.new_figure(4.6, 3.6)
        ax = fig.add_subplot()
        for s in order:
            sub = coords[coords["source"] == s]
            kw = {"facecolors": "none", "edgecolors": pal[s], "linewidths": 0.7}
            if s != "markov":
                kw = {"color": pal[s], "linewidths": 0}
            ax.scatter(sub["x"], sub["y"], s=size, alpha=0.75, label=f"{s} ({len(sub)})",
                       rasterized=len(coords) > 5000, **kw)  # fmt: skip
        ax.set_xlabel("UMAP 1")
        ax.set_ylabel("UMAP 2")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title or f"natural vs generated ({k}-mer frequencies)")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title="source")
        return style.save(fig, png_path)


def sample_figures(
    test_fastas: Mapping[str, str | os.PathLike],
    walks_png: str | os.PathLike,
    cgr_png: str | os.PathLike,
    *,
    k: int = 6,
    points: int = 200,
    max_sequences: int | None = 500,
    seed: int = 0,
) -> dict[str, int]:
    """Figures (a) and (b) from each sample's held-out CDS: overlaid walks and CGR images.
    Returns sample -> number of sequences drawn."""
    walks, images, counts = {}, {}, {}
    for sample, path in tqdm(
        test_fastas.items(), desc="walks and CGR", unit="sample", disable=progress_disabled()
    ):
        seqs = read_sequences(path, max_sequences, seed)
        counts[sample] = len(seqs)
        walks[sample] = walk_batch(seqs, points)
        images[f"{sample} ({len(seqs)})"] = cgr_image(seqs, k)
        log.info("%s: %d held-out CDS from %s", sample, len(seqs), path)
    plot_walks(walks, walks_png, title="DNA walks of held-out CDS, normalised for length")
    plot_cgr_grid({"": images}, cgr_png, k, title=f"CGR of held-out CDS (k = {k})", wrap=4)
    return counts


def generated_figures(
    fastas: Mapping[str, Mapping[str, str | os.PathLike]],
    cgr_png: str | os.PathLike,
    umap_png: str | os.PathLike,
    umap_tsv: str | os.PathLike,
    *,
    k: int = 6,
    umap_k: int = 4,
    max_sequences: int | None = 500,
    seed: int = 0,
    umap_settings: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """Figures (c) and (d): `fastas` is model -> {"natural", "samples", "markov"} -> FASTA.
    CGR images of natural / model-generated / Markov-generated per model; one UMAP of all
    sources, natural and Markov sequences pooled over models (each distinct sequence once).
    Writes the UMAP coordinates as TSV and returns them."""
    images: dict[str, dict[str, np.ndarray]] = {}
    pools: dict[str, dict[str, None]] = {"natural": {}}
    for model, files in tqdm(
        fastas.items(), desc="generated", unit="model", disable=progress_disabled()
    ):
        row = {}
        for key, label in (("natural", "natural"), ("samples", model), ("markov", "markov")):
            seqs = read_sequences(files[key], max_sequences, seed)
            row[f"{label} ({len(seqs)})" if key != "samples" else f"generated ({len(seqs)})"] = (
                cgr_image(seqs, k)
            )
            pools.setdefault(label, {}).update(dict.fromkeys(seqs))
        images[model] = row
    plot_cgr_grid(images, cgr_png, k, title=f"CGR of natural and generated sequences (k = {k})")
    settings = {key: v for key, v in (umap_settings or {}).items()
                if key in ("n_neighbors", "metric", "min_dist", "seed")}  # fmt: skip
    coords = source_umap({s: list(p) for s, p in pools.items() if p}, umap_k, **settings)
    with atomic_write(umap_tsv) as fh:
        coords.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    plot_source_umap(coords, umap_png, umap_k)
    return coords


__all__ = [
    "generated_figures",
    "plot_cgr_grid",
    "plot_source_umap",
    "plot_walks",
    "read_sequences",
    "sample_figures",
    "source_palette",
    "source_umap",
]
