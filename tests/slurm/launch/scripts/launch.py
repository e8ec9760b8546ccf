"""The multi-node launch of dnalm.training.distributed inside a real SLURM job: record the
SLURM_* variables the job-step plugin left to the script, then train a tiny model on 2 nodes x
1 process with launch() (what workflow/scripts/pretrain.py does with pretrain.nodes: 2)."""

import json
import os
import sys
from pathlib import Path

from dnalm.training.distributed import launch
from dnalm.training.run import PretrainRun

smk = snakemake

with open(smk.log[0], "w") as log:
    sys.stderr = log
    seen = {k: v for k, v in os.environ.items() if k.startswith("SLURM_")}
    with open(smk.output.env, "w") as fh:
        json.dump(seen, fh, indent=1, sort_keys=True)
    train = {
        "max_steps": 4, "eval_interval": 2, "eval_batches": 1, "log_interval": 1,
        "micro_batch_size": 4, "patience": None, "test_eval": True,
    }  # fmt: skip
    run = PretrainRun(
        smk.input.corpus, Path(smk.output.run).parent, "gpt", "tiny", train=train,
        gpus=1, nodes=2, cpus=smk.threads,
    )  # fmt: skip
    launch(run, log_file=smk.log[0])
