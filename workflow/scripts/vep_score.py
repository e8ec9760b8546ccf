"""Rule vep_score: one model's zero-shot scores of the simulated SNVs."""

import torch

from dnalm.core.device import select_device
from dnalm.core.smk import run_script
from dnalm.evaluation.vep import run_vep


def main(smk):
    torch.set_num_threads(int(smk.threads))
    s = smk.params.settings
    run_vep(
        smk.params.model_dir,
        smk.input.vcf,
        smk.input.fasta,
        smk.output.table,
        smk.output.vcf,
        window=int(s["window"]),
        edge=s["edge"],
        rc_average=bool(s["rc_average"]),
        device=str(select_device(smk.params.device)),
        external=dict(smk.params.external) or None,
    )


run_script(snakemake, main)
