"""Rule interpret_summary: one table of every run's attribution summary and its figure."""

import pandas as pd

from dnalm.core.io import atomic_write
from dnalm.core.smk import run_script
from dnalm.report.attribution_plots import plot_auroc, plot_motif_similarity


def main(smk):
    table = pd.concat([pd.read_csv(f, sep="\t") for f in smk.input], ignore_index=True)
    with atomic_write(smk.output.table) as fh:
        table.to_csv(fh, sep="\t", index=False, float_format="%.4g")
    if "auroc_pooled" in table:
        plot_auroc(table, smk.output.figure)
    else:
        plot_motif_similarity(table, smk.output.figure)


run_script(snakemake, main)
