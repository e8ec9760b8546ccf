"""Rule probe_table: one row per probed model and probe kind (with the best layer and pooling
of the layer-probed models), the accuracy figure and the reliability diagrams."""

from dnalm.core.smk import run_script
from dnalm.evaluation.calibration import probe_table_curves
from dnalm.evaluation.layer_probe import add_best_layers
from dnalm.evaluation.probe import assemble_table, write_table
from dnalm.report.calibration_plots import plot_reliability
from dnalm.report.probe_plots import plot_probe_accuracy


def main(smk):
    table = assemble_table(list(smk.input.metrics))
    if smk.input.layers:  # the layer probe is on: name each model's best layer and pooling
        table = add_best_layers(table, list(smk.input.layers))
    write_table(table, smk.output.table)
    plot_probe_accuracy(smk.output.table, smk.output.figure)
    curves = probe_table_curves(smk.output.table)
    plot_reliability(
        {f"{kind} probe": lines for kind, lines in curves.items()},
        smk.output.calibration,
        title="species probe calibration (test fragments)",
    )


run_script(snakemake, main)
