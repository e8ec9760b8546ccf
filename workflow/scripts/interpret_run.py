"""Rule interpret: attributions of one run on test sequences of its task."""

import torch

from dnalm.core.smk import run_script
from dnalm.interpretation.run import interpret_run


def main(smk):
    torch.set_num_threads(max(1, int(smk.threads)))
    interpret_run(
        smk.params.run_dir,
        smk.input.task,
        smk.params.out_dir,
        dict(smk.params.settings),
        run_name=smk.wildcards.irun,
        task_name=smk.wildcards.itask,
    )


run_script(snakemake, main)
