"""Rule baseline_cnn: the one-hot CNN of DNA-LLM on one task (dnalm.finetuning.baselines)."""

from pathlib import Path

import torch

from dnalm.core.config import CNNTrainConfig, tracking_spec
from dnalm.core.smk import run_script
from dnalm.finetuning.baselines import train_onehot_cnn
from dnalm.finetuning.data import load_task
from dnalm.finetuning.tables import subsample_split, validate_task_table


def main(smk):
    cfg = CNNTrainConfig.from_dict(smk.params.settings, "baselines.onehot_cnn.train")
    torch.set_num_threads(int(smk.threads))
    df = load_task(smk.input.task)
    validate_task_table(df, df.attrs["kind"], smk.input.task)
    seed = int(cfg.seed)
    df = subsample_split(df, "train", cfg.max_train_examples, seed)
    df = subsample_split(df, "validation", cfg.max_validation_examples, seed)
    train_onehot_cnn(
        df,
        Path(smk.output.metrics).parent,
        config=cfg,
        task=smk.wildcards.ftask,
        # tracking.backend: the run named as its log file
        tracking=tracking_spec(smk.config, f"finetune/{smk.wildcards.ftask}/{smk.wildcards.cnn}"),
    )


run_script(snakemake, main)
