"""Rule pretrain_figures: the summary table, loss curves and the training-time comparison
of all pretrained models."""

from dnalm.core.io import atomic_write
from dnalm.core.smk import run_script
from dnalm.report import pretrain_plots


def main(smk):
    dirs = {m: f"results/models/{m}" for m in smk.params.models}
    table = pretrain_plots.pretrain_table(dirs)
    with atomic_write(smk.output.table) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.6g")
    pretrain_plots.plot_pretrain_curves(dirs, smk.output.curves)
    pretrain_plots.plot_pretrain_time(dirs, smk.output.time)


run_script(snakemake, main)
