"""Rule pretrain: train one language model (dnalm.training.pretrain). With more than one GPU the
training runs under torchrun (one process per GPU, DistributedDataParallel)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from dnalm.core.errors import DnalmError
from dnalm.core.smk import run_script
from dnalm.training.pretrain import pretrain


def main(smk):
    spec = smk.params.spec
    out_dir = Path(smk.params.model_dir)
    train_cfg = dict(smk.params.train)
    train_cfg.setdefault("threads", smk.threads)
    gpus = int(smk.params.gpus)
    # the model's pretraining loss (dnalm.training.objectives; absent: ce)
    loss = {"loss": spec.get("loss") or "ce", "loss_options": spec.get("loss_options") or {}}
    if gpus <= 1:
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
    # Several GPUs: one process per GPU through torchrun (rank 0 writes the outputs).
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_json = out_dir / "launch.json"
    launch = {"overrides": spec.get("overrides") or {}, "train": train_cfg, **loss}
    cfg_json.write_text(json.dumps(launch))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={gpus}", "-m", "dnalm.training.pretrain",
        "--corpus", str(smk.input.corpus), "--out", str(out_dir),
        "--objective", spec["objective"], "--preset", spec["preset"],
        *(["--arch", spec["arch"]] if spec.get("arch") else []),
        "--config-json", str(cfg_json),
    ]  # fmt: skip
    print("launching:", " ".join(cmd), file=sys.stderr, flush=True)
    # the worker processes import dnalm from workflow/scripts, ahead of the user's PYTHONPATH
    search = [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in search if p)}
    proc = subprocess.run(cmd, stderr=sys.stderr, stdout=sys.stderr, env=env)
    if proc.returncode != 0:
        raise DnalmError(f"torchrun exited with {proc.returncode}; see {smk.log[0]}")


run_script(snakemake, main)
