"""Rule probe_table: one row per probed model, and the accuracy figure."""

from dnalm.core.smk import run_script
from dnalm.evaluation.probe import assemble_table
from dnalm.report import figures


def main(smk):
    assemble_table(list(smk.input), smk.output.table)
    figures.plot_probe_accuracy(smk.output.table, smk.output.figure)


run_script(snakemake, main)
