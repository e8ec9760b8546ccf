"""Rule dnatext_train: tokenizer, the three tiny models and the evaluation table
(dnalm.multimodal.pipeline)."""

import shutil
from pathlib import Path

import torch

from dnalm.core.artifacts import EVALUATION_TSV
from dnalm.core.smk import run_script
from dnalm.multimodal.pipeline import run


def main(smk):
    torch.set_num_threads(int(smk.threads))
    out = Path(smk.output.model)
    run(smk.input.pairs, smk.input.tokenizer, dict(smk.params.cfg), out)
    shutil.move(out / EVALUATION_TSV, smk.output.table)


run_script(snakemake, main)
