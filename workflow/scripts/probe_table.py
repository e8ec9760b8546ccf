"""Rule probe_table: one row per probed model, and the accuracy figure."""

from dnalm import figures
from dnalm.probe import assemble_table
from dnalm.smk import run_script


def main(smk):
    assemble_table(list(smk.input), smk.output.table)
    figures.plot_probe_accuracy(smk.output.table, smk.output.figure)


run_script(snakemake, main)
