"""Reliability diagrams (calibration) of classifiers: one panel per group (a probe kind, a
fine-tuning task), one line per classifier, in the one style of :mod:`dnalm.report.style`.

Input: calibration dicts as :func:`dnalm.evaluation.calibration.reliability` returns them
(``ece``, ``n``, ``bins`` with ``low``, ``high``, ``count``, ``confidence``, ``accuracy``).
A point is one non-empty equal-width confidence bin (x: mean confidence, y: accuracy of the
items in it); the diagonal is perfect calibration; the legend gives each line's ECE.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dnalm.core.errors import InputFormatError
from dnalm.report import style

#: Lines drawn per panel at most (the rest, by ascending ECE, are left out and counted).
MAX_LINES = 12


def plot_reliability(
    panels: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]],
    png_path: str | os.PathLike,
    title: str | None = None,
) -> list[Path]:
    """Reliability diagrams: `panels` maps a panel title to (line label, calibration dict)
    pairs; PNG + SVG. A panel with no line says so; no panel at all is an error."""
    if not panels:
        raise InputFormatError(f"{png_path}: no classifier to draw a reliability diagram of")
    n = len(panels)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    width = style.WIDTH_1COL + 0.6 if cols == 1 else style.WIDTH_2COL
    with style.style():
        fig = style.new_figure(width, 2.9 * rows + 0.3)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, (name, lines) in zip(axes, panels.items(), strict=False):
            ordered = sorted(lines, key=lambda t: t[1].get("ece", math.inf))
            shown = ordered[:MAX_LINES]
            colors = style.palette(len(shown))
            ax.plot([0, 1], [0, 1], ls=":", color="0.4", lw=0.8, label="perfect calibration")
            for (label, calib), color in zip(shown, colors, strict=True):
                pts = [b for b in calib.get("bins", []) if b.get("count")]
                ax.plot(
                    [b["confidence"] for b in pts],
                    [b["accuracy"] for b in pts],
                    marker="o",
                    ms=2.5,
                    lw=1.0,
                    color=color,
                    label=f"{label} (ECE {calib['ece']:.3f})",
                )
            if not shown:
                ax.text(0.5, 0.5, "no classifier", ha="center", va="center")
            extra = len(ordered) - len(shown)
            ax.set(
                xlim=(0, 1),
                ylim=(0, 1),
                xlabel="confidence (top-class probability)",
                ylabel="accuracy",
                title=name + (f" ({extra} more not shown)" if extra > 0 else ""),
            )
            ax.set_aspect("equal")
            ax.legend(fontsize=5.5, loc="upper left", frameon=False)
        for ax in axes[n:]:
            ax.set_visible(False)
        if title:
            fig.suptitle(title)
        return style.save(fig, png_path)


__all__ = ["MAX_LINES", "plot_reliability"]
