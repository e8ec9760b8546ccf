"""Rule gene_completion_baseline: one baseline (Markov, codon trigram, nearest training
gene) continues the held-out genes the models continue; its table."""

from dnalm.core.smk import run_script
from dnalm.generation.genecomp import baseline_completer, run_source


def main(smk):
    name = smk.wildcards.baseline
    order = int(smk.params.markov_order)
    run_source(
        name,
        lambda train: baseline_completer(name, train, order),
        list(smk.params.samples),
        dict(smk.params.splits),
        smk.params.settings,
        smk.output.table,
    )


run_script(snakemake, main)
