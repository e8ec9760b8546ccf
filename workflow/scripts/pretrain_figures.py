"""Rule pretrain_figures: loss curves and the training-time comparison of all models."""

from dnalm import figures
from dnalm.smk import run_script


def main(smk):
    dirs = {m: f"results/models/{m}" for m in smk.params.models}
    figures.plot_pretrain_curves(dirs, smk.output.curves)
    figures.plot_pretrain_time(dirs, smk.output.time)


run_script(snakemake, main)
