"""Rule generate: samples of one causal model, its Markov baseline and the natural set, and
their metric table."""

import torch

from dnalm.core.smk import run_script
from dnalm.generation.run import generate_sets, metrics_table


def main(smk):
    torch.set_num_threads(int(smk.threads))
    cds = bool(smk.params.cds)
    generate_sets(
        smk.params.model_dir,
        list(smk.input.test),
        list(smk.input.train),
        smk.params.out_dir,
        smk.params.settings,
        unit=int(smk.params.unit),
        cds=cds,
        device=smk.params.device,
        external=dict(smk.params.external) or None,
    )
    metrics_table(
        smk.wildcards.model,
        smk.params.out_dir,
        list(smk.input.train),
        smk.params.reference_dir,
        smk.output.metrics,
        cds=cds,
        reference_name=smk.params.reference,
        device=smk.params.device,
    )


run_script(snakemake, main)
