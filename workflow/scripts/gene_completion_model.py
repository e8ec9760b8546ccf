"""Rule gene_completion_model: one causal model continues held-out genes; its table."""

import torch

from dnalm.core.smk import run_script
from dnalm.generation.genecomp_model import run_model


def main(smk):
    torch.set_num_threads(int(smk.threads))
    run_model(
        smk.wildcards.model,
        smk.params.model_dir,
        list(smk.params.samples),
        dict(smk.params.splits),
        smk.params.settings,
        smk.output.table,
        unit=int(smk.params.unit),
        device=smk.params.device,
        external=dict(smk.params.external) or None,
    )


run_script(snakemake, main)
