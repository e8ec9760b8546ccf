"""Rule pretrain: train one language model (dnalm.training.pretrain). With more than one GPU the
training runs under torchrun (one process per GPU, DDP or FSDP2); with more than one node, one
torchrun per node started by srun inside the SLURM allocation (dnalm.training.distributed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dnalm.core.errors import DnalmError
from dnalm.core.smk import run_script
from dnalm.training.distributed import check_strategy, first_node, launch_command
from dnalm.training.pretrain import pretrain


def main(smk):
    spec = smk.params.spec
    out_dir = Path(smk.params.model_dir)
    train_cfg = dict(smk.params.train)
    train_cfg.setdefault("threads", smk.threads)
    gpus, nodes = int(smk.params.gpus), int(smk.params.nodes)
    strategy = check_strategy(smk.params.strategy)
    # the model's pretraining loss (dnalm.training.objectives; absent: ce)
    loss = {"loss": spec.get("loss") or "ce", "loss_options": spec.get("loss_options") or {}}
    if gpus <= 1 and nodes <= 1:
        pretrain(
            smk.input.corpus,
            out_dir,
            spec["objective"],
            spec["preset"],
            spec.get("overrides") or {},
            train_cfg,
            resume=True,
            loss=loss,
            arch=spec.get("arch"),
        )
        return
    # Several processes: torchrun (rank 0 writes the outputs), one per node through srun.
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_json = out_dir / "launch.json"
    launch = {"overrides": spec.get("overrides") or {}, "train": train_cfg, **loss}
    cfg_json.write_text(json.dumps(launch))
    worker = [
        "dnalm.training.pretrain",
        "--corpus", str(smk.input.corpus), "--out", str(out_dir),
        "--objective", spec["objective"], "--preset", spec["preset"],
        *(["--arch", spec["arch"]] if spec.get("arch") else []),
        "--config-json", str(cfg_json), "--strategy", strategy,
    ]  # fmt: skip
    host = first_node() if nodes > 1 else None
    job = os.environ.get("SLURM_JOB_ID", "dnalm")
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    cmd = launch_command(
        max(nodes, 1), max(gpus, 1), worker, rdzv_host=host, job_id=job, cpus_per_task=cpus
    )
    print("launching:", " ".join(cmd), file=sys.stderr, flush=True)
    # the worker processes import dnalm from workflow/scripts, ahead of the user's PYTHONPATH
    search = [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in search if p)}
    proc = subprocess.run(cmd, stderr=sys.stderr, stdout=sys.stderr, env=env)
    if proc.returncode != 0:
        raise DnalmError(f"{cmd[0]} exited with {proc.returncode}; see {smk.log[0]}")


run_script(snakemake, main)
