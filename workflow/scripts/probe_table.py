"""Rule probe_table: one row per probed model and probe kind, the accuracy figure and the
reliability diagrams."""

from dnalm.core.smk import run_script
from dnalm.evaluation.calibration import probe_table_curves
from dnalm.evaluation.probe import assemble_table
from dnalm.report.calibration_plots import plot_reliability
from dnalm.report.probe_plots import plot_probe_accuracy


def main(smk):
    assemble_table(list(smk.input), smk.output.table)
    plot_probe_accuracy(smk.output.table, smk.output.figure)
    curves = probe_table_curves(smk.output.table)
    plot_reliability(
        {f"{kind} probe": lines for kind, lines in curves.items()},
        smk.output.calibration,
        title="species probe calibration (test fragments)",
    )


run_script(snakemake, main)
