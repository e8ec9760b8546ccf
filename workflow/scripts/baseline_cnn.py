"""Rule baseline_cnn: the one-hot CNN of DNA-LLM on one task (dnalm.finetuning.baselines)."""

from pathlib import Path

import torch

from dnalm.core.smk import run_script
from dnalm.finetuning.baselines import train_onehot_cnn
from dnalm.finetuning.finetune import subsample_split, validate_task_table
from dnalm.tasks.common import load_task


def main(smk):
    settings = dict(smk.params.settings)
    n_train = settings.pop("max_train_examples", None)
    n_val = settings.pop("max_validation_examples", None)
    torch.set_num_threads(int(smk.threads))
    df = load_task(smk.input.task)
    validate_task_table(df, df.attrs["kind"], smk.input.task)
    seed = int(settings.get("seed", 0))
    df = subsample_split(subsample_split(df, "train", n_train, seed), "validation", n_val, seed)
    train_onehot_cnn(df, Path(smk.output.metrics).parent, config=settings, task=smk.wildcards.ftask)


run_script(snakemake, main)
