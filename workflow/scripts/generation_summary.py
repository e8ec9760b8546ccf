"""Rule generation_summary: every model's generation metrics in one table, and its figure."""

from dnalm.core.smk import run_script
from dnalm.generation.metrics import summary_table
from dnalm.report.generation_plots import plot_generation_summary


def main(smk):
    summary_table(dict(zip(smk.params.models, smk.input.metrics, strict=True)), smk.output.table)
    plot_generation_summary(smk.output.table, smk.output.figure)


run_script(snakemake, main)
