"""Rule generation_metrics: one model's samples and Markov baseline against natural sequences."""

import torch

from dnalm.core.smk import run_script
from dnalm.generation.run import metrics_table


def main(smk):
    torch.set_num_threads(int(smk.threads))
    metrics_table(
        smk.wildcards.model,
        smk.params.set_dir,
        list(smk.input.train),
        smk.params.reference_dir,
        smk.output.metrics,
        cds=bool(smk.params.cds),
        reference_name=smk.params.reference,
        device=smk.params.device,
    )


run_script(snakemake, main)
