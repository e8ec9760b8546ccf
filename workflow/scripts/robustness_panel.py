"""Rule robustness: one model's robustness panel (table and figure)."""

import torch

from dnalm.core.device import select_device
from dnalm.core.smk import run_script
from dnalm.evaluation.inference import load_lm
from dnalm.evaluation.robustness import choose_windows, lm_scorer, pad_nt, panel, write_panel
from dnalm.report.robustness_plots import plot_robustness


def main(smk):
    torch.set_num_threads(int(smk.threads))
    s = smk.params.settings
    k = int(smk.params.k)
    windows = choose_windows(
        list(smk.params.test),
        int(s["n_windows"]),
        int(s["window_nt"]),
        pad_nt(s, k),
        int(s["seed"]),
    )
    lm = load_lm(
        smk.params.model_dir,
        str(select_device(smk.params.device)),
        dict(smk.params.external) or None,
    )
    df = panel(smk.wildcards.model, lm_scorer(lm), windows, s, k=k)
    write_panel(df, smk.output.table)
    plot_robustness(df, smk.output.figure, threshold=float(s["phase_threshold"]))


run_script(snakemake, main)
