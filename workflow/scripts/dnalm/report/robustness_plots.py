"""The robustness figure of one model (dnalm.evaluation.robustness's panel table): the
reverse-complement and shift correlations, the mean score over tokenizer phases and lengths
modulo k (with the flag threshold), and the mean change of the log-likelihood after one
deleted base against its distance from the window's centre; 95% bootstrap intervals over
windows, in the one style of :mod:`dnalm.report.style`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.report import style


def _bars(ax, part: pd.DataFrame, labels, color) -> None:
    y = part["value"].to_numpy(float)
    lo = np.clip(y - part["ci95_low"].to_numpy(float), 0, None)
    hi = np.clip(part["ci95_high"].to_numpy(float) - y, 0, None)
    ax.bar(labels, y, yerr=np.nan_to_num(np.stack([lo, hi])), color=color, capsize=3)


def plot_robustness(
    panel: pd.DataFrame, out_png: str | os.PathLike, threshold: float
) -> list[Path]:
    """Three or four panels (phases only for k > 1). Returns [png, svg]."""
    model = str(panel["model"].iloc[0])
    corr = panel[panel["test"].isin(["rc", "shift"])]
    phase = panel[panel["test"].isin(["phase", "length_mod"])]
    indel = panel[panel["test"] == "indel"]
    n = 3 if len(phase) else 2
    c1, c2, c3 = style.palette(3)
    with style.style():
        fig = style.new_figure(4.0 * n, 3.4)
        axes = fig.subplots(1, n)
        labels = [
            "RC" if t == "rc" else f"+{s} nt"
            for t, s in zip(corr["test"], corr["setting"], strict=True)
        ]
        _bars(axes[0], corr, labels, c1)
        axes[0].set_ylim(min(0.0, float(np.nanmin(corr["value"]))) - 0.02, 1.02)
        axes[0].set_title("score correlation with the window")
        axes[0].set_ylabel("Pearson r over windows")
        if len(phase):
            ax = axes[1]
            flags = panel[panel["test"].isin(["phase_spread", "length_spread"])]
            for test, color, marker in (("phase", c2, "o"), ("length_mod", c3, "s")):
                part = phase[phase["test"] == test]
                x = part["setting"].astype(int).to_numpy()
                y = part["value"].to_numpy(float)
                err = np.nan_to_num(
                    np.stack([y - part["ci95_low"].to_numpy(float), part["ci95_high"] - y])
                )
                spread = flags[flags["test"].str.startswith(test.split("_")[0])]
                flag = " FLAGGED" if len(spread) and int(spread["flag"].iloc[0]) else ""
                ax.errorbar(x, y, yerr=np.clip(err, 0, None), color=color, marker=marker,
                            capsize=3, label=f"{test.replace('_', ' ')}{flag}")  # fmt: skip
            ax.set_xlabel("offset (nt, 0..k-1)")
            ax.set_ylabel("mean log-likelihood (nats/nt)")
            ax.set_title(f"tokenizer phase (flag above {threshold:g} nats/nt spread)")
            ax.legend()
        ax = axes[-1]
        _bars(ax, indel, [str(s) for s in indel["setting"]], c3 if not len(phase) else c1)
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.set_xlabel("deleted base: distance from the centre (nt)")
        ax.set_ylabel("mean change of log-likelihood (nats)")
        ax.set_title("one deletion")
        fig.suptitle(model)
        return style.save(fig, out_png)
