"""Rule generate: samples of one causal model, its Markov baseline and the natural set."""

import torch

from dnalm.core.smk import run_script
from dnalm.generation.run import generate_sets


def main(smk):
    torch.set_num_threads(int(smk.threads))
    generate_sets(
        smk.params.model_dir,
        list(smk.input.test),
        list(smk.input.train),
        smk.params.out_dir,
        smk.params.settings,
        unit=int(smk.params.unit),
        cds=bool(smk.params.cds),
        device=smk.params.device,
    )


run_script(snakemake, main)
