"""Rule probe_layer_table: the layer probes of every layer-probed model beside the k-mer
baseline (dnalm.evaluation.layer_probe.layer_table) and their figure, a curve per model."""

from dnalm.core.smk import run_script
from dnalm.evaluation.layer_probe import layer_table
from dnalm.report.probe_plots import plot_layer_probe


def main(smk):
    layer_table(list(smk.input.layers), [smk.input.kmer], smk.output.table)
    plot_layer_probe(smk.output.table, smk.output.figure)


run_script(snakemake, main)
