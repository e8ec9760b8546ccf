"""Multi-node and sharded pretraining on CPU (gloo): the launch command, two torchrun
launchers as two "nodes" against one process, and FSDP2 on two processes with an exact resume
from a checkpoint taken mid-run.

Tolerances: the 2-process runs sum the same per-token losses and gradients as the 1-process
run with 2 accumulation steps, only in another order (an all-reduce / reduce-scatter of two
partial sums instead of one running sum), so losses agree to rel 1e-4 and weights to
atol 1e-4 after the steps here (float32 rounding compounding through AdamW); a resumed FSDP
run repeats the very same operations as the uninterrupted one, so it must be bitwise equal.
"""

from __future__ import annotations

import csv
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.training import checkpoint as ckpt
from dnalm.training import distributed
from dnalm.training.distributed import first_node, launch_command
from dnalm.training.run import WORKER_MODULE, PretrainRun
from tests.support.lm_corpus import make_corpus

REPO = Path(__file__).resolve().parents[1]
STEPS = 20
COMMON = [
    "--train-set", f"max_steps={STEPS}",
    "--train-set", "eval_interval=5",
    "--train-set", "log_interval=1",
    "--train-set", "eval_batches=2",
    "--train-set", "threads=1",
    "--train-set", "test_eval=false",
    "--train-set", "patience=null",
    "--train-set", "micro_batch_size=4",
]  # fmt: skip
WORKER = "dnalm.training.pretrain"


def _args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        WORKER, "--corpus", str(corpus), "--out", str(out), "--objective", "gpt",
        "--preset", "tiny", *COMMON, *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "workflow" / "scripts"), str(REPO)])
    env["OMP_NUM_THREADS"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _curves(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def _same_trajectory(one: Path, two: Path) -> None:
    r1, r2 = _curves(one / "curves.csv"), _curves(two / "curves.csv")
    assert [r["step"] for r in r1] == [r["step"] for r in r2]
    assert [r["tokens_seen"] for r in r1] == [r["tokens_seen"] for r in r2]
    assert len(r1) == STEPS + 1
    for a, b in zip(r1[1:], r2[1:], strict=True):
        assert math.isclose(float(a["train_loss"]), float(b["train_loss"]), rel_tol=1e-4)
        if a["val_loss"]:
            assert math.isclose(float(a["val_loss"]), float(b["val_loss"]), rel_tol=1e-4)
    w1, w2 = _weights(one), _weights(two)
    assert w1.keys() == w2.keys()
    worst = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert worst < 1e-4, worst


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory) -> Path:
    """One process, 2 accumulation steps of 4 windows: the reference of the 2-process runs."""
    out = tmp_path_factory.mktemp("single") / "m"
    cmd = [sys.executable, "-m", *_args(corpus, out, "--train-set", "grad_accum=2")]
    subprocess.run(cmd, check=True, env=_env(), capture_output=True, timeout=300)
    return out


# --------------------------------------------------------------------------- launch command


def test_one_node_keeps_the_standalone_torchrun_launch():
    cmd = launch_command(1, 4, [WORKER, "--out", "m"], python="py")
    assert cmd == [
        "py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4",
        "-m", WORKER, "--out", "m",
    ]  # fmt: skip


def test_two_nodes_run_one_torchrun_per_node_through_srun_with_c10d():
    cmd = launch_command(
        2, 4, [WORKER], python="py", rdzv_host="gpu017", port=29611, job_id="77", cpus_per_task=16
    )
    srun, torchrun = cmd[: cmd.index("py")], cmd[cmd.index("py") :]
    assert srun == [
        "srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--cpus-per-task=16"
    ]  # fmt: skip
    plain = launch_command(2, 4, [WORKER], rdzv_host="h")  # outside SLURM's CPU count
    assert not any(a.startswith("--cpus") for a in plain)
    assert torchrun[:3] == ["py", "-m", "torch.distributed.run"]
    for flag in (
        "--nnodes=2",
        "--nproc-per-node=4",
        "--rdzv-backend=c10d",
        "--rdzv-endpoint=gpu017:29611",
        "--rdzv-id=77",
    ):
        assert flag in torchrun
    assert "--standalone" not in torchrun
    assert torchrun[-2:] == ["-m", WORKER]


def test_multi_node_launch_needs_a_rendezvous_host_and_a_slurm_allocation(monkeypatch):
    with pytest.raises(ConfigError, match="rendezvous host"):
        launch_command(2, 1, [WORKER])
    with pytest.raises(ConfigError, match=r"pretrain\.nodes"):
        launch_command(0, 1, [WORKER])
    for var in ("SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOB_ID", "SLURM_JOBID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="SLURM allocation"):
        first_node()


#: a stand-in for SLURM's scontrol on machines without SLURM (tests/test_workflow_slurm.py
#: runs the launch against the real one): a running job 42 on gpu[01-02]
SCONTROL = """#!/bin/sh
case "$*" in
  "show job -o 42") echo "JobId=42 JobState=RUNNING NodeList=gpu[01-02] NumNodes=2";;
  "show hostnames gpu[01-02]") printf "gpu01\\ngpu02\\n";;
  "show node -o gpu01") echo "NodeName=gpu01 Arch=x86_64 NodeAddr=10.0.0.1 NodeHostName=gpu01";;
  *) echo "scontrol: unexpected $*" >&2; exit 1;;
esac
"""


def test_nodes_come_from_the_job_id_when_the_job_step_stripped_the_node_list(tmp_path, monkeypatch):
    """Snakemake's job-step plugin leaves SLURM_JOB_ID but no SLURM_JOB_NODELIST: the nodes
    come from `scontrol show job`, the rendezvous address from the first node's NodeAddr."""
    scontrol = tmp_path / "scontrol"
    scontrol.write_text(SCONTROL)
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for var in ("SLURM_JOB_NODELIST", "SLURM_NODELIST", "SLURM_JOBID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert distributed.allocation_nodes() == ["gpu01", "gpu02"]
    assert first_node() == "10.0.0.1"
    monkeypatch.setenv("SLURM_JOB_ID", "43")  # scontrol fails: the error names the command
    with pytest.raises(ConfigError, match=r"scontrol show job -o 43. failed \(1\)"):
        first_node()


def test_launch_runs_the_workers_on_the_saved_run(tmp_path, monkeypatch):
    run = PretrainRun(
        tmp_path / "corpus", tmp_path / "m", "gpt", "tiny", {"n_layer": 1},
        {"lr": 1e-5, "max_steps": 7}, loss="rc", loss_options={"consistency": 0.1},
        strategy="fsdp", gpus=3,
    )  # fmt: skip
    calls = []

    def fake_run(cmd, **kw):
        calls.append((cmd, kw["env"]))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setattr(distributed.subprocess, "run", fake_run)
    distributed.launch(run)
    ((cmd, env),) = calls
    spec = tmp_path / "m" / "launch.json"
    assert cmd[-4:] == ["--nproc-per-node=3", "-m", WORKER_MODULE, str(spec)]
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO / "workflow" / "scripts"), "/elsewhere"]
    back = PretrainRun.load(spec)
    assert back == run
    assert back.train.lr == 1e-5  # floats round-trip exactly
    monkeypatch.setattr(
        distributed.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 3)
    )
    with pytest.raises(DnalmError, match=r"exited with 3; see the\.log"):
        distributed.launch(run, log_file="the.log")


# --------------------------------------------------------------------------- processes


@pytest.mark.slow
def test_two_torchrun_nodes_follow_the_single_process_trajectory(corpus, single, tmp_path):
    """Two launchers with --nnodes 2 (one process each, c10d rendezvous on 127.0.0.1), the way
    srun starts them on two nodes, against one process with the same effective batch."""
    out = tmp_path / "two_nodes"
    port = _free_port()
    procs = [
        subprocess.Popen(
            # what srun runs on each node: the command after srun and its flags
            launch_command(2, 1, _args(corpus, out), rdzv_host="127.0.0.1", port=port)[4:],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _node in (0, 1)
    ]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    for p, text in zip(procs, logs, strict=True):
        assert p.returncode == 0, text[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2
    _same_trajectory(single, out)


CRASH = """
import os, sys
from dnalm.training import pretrain, pretrain_cli
step = pretrain.Trainer.train_step
def crashing(self, batches):
    if self.step == 12:
        os._exit(3)
    return step(self, batches)
pretrain.Trainer.train_step = crashing
sys.exit(pretrain_cli.main(sys.argv[1:]))
"""


def _torchrun_fsdp(corpus: Path, out: Path) -> subprocess.Popen:
    cmd = launch_command(1, 2, _args(corpus, out, "--strategy", "fsdp"))
    return subprocess.Popen(
        cmd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_fsdp_on_two_processes_trains_like_one_and_resumes_exactly(corpus, single, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    proc = _torchrun_fsdp(corpus, ref)
    text = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, text[-3000:]
    run = json.loads((ref / "run.json").read_text())
    assert (run["world_size"], run["strategy"]) == (2, "fsdp")
    assert ckpt.load_state(ckpt.last_checkpoint(ref / "checkpoints"))["setup"]["strategy"] == "fsdp"
    _same_trajectory(single, ref)  # sharded: the same training as one process

    # the same run, every process dying (os._exit, no cleanup) in step 13, after the
    # checkpoint of step 10: deterministic, unlike a kill timed from outside
    crash = tmp_path / "crash.py"
    crash.write_text(CRASH)
    cmd = launch_command(1, 2, _args(corpus, killed, "--strategy", "fsdp"))
    cmd[cmd.index("-m", 3) : cmd.index(WORKER) + 1] = [str(crash)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    killed_at = ckpt.folder_step(ckpt.last_checkpoint(killed / "checkpoints"))
    assert killed_at == 10, killed_at
    assert not (killed / "run.json").exists()

    proc = _torchrun_fsdp(corpus, killed)
    text = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, text[-3000:]
    assert f"resumed from {killed / 'checkpoints'}" in text
    a, b = _weights(ref), _weights(killed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ref_rows, res_rows = _curves(ref / "curves.csv"), _curves(killed / "curves.csv")
    assert [r["train_loss"] for r in ref_rows] == [r["train_loss"] for r in res_rows]
    # a plain Hugging Face folder
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(killed)
    assert sum(p.numel() for p in model.parameters()) == run["params"]["total"]


# --------------------------------------------------------------------------- after training

#: the worker (dnalm.training.worker) with a deliberately slow rank-0 step: rank 0's scoring of
#: the test split sleeps SLOW_S first; each rank notes when its run_pretraining returned and
#: its torch threads
SLOW_RANK0 = """
import json, os, sys, time
import torch
from dnalm.training import pretrain, worker
SLOW_S = float(os.environ["SLOW_S"])
rank, out = int(os.environ["RANK"]), os.environ["NOTES"]
scoring = pretrain.evaluate_test
def slow(tr):
    with open(f"{out}/slow_start", "w") as fh:
        fh.write(repr(time.time()))
    time.sleep(SLOW_S)
    return scoring(tr)
pretrain.evaluate_test = slow
code = worker.main(sys.argv[1:])
with open(f"{out}/rank{rank}.json", "w") as fh:
    json.dump({"done": time.time(), "threads": torch.get_num_threads()}, fh)
sys.exit(code)
"""


@pytest.mark.slow
def test_other_ranks_leave_before_rank0_scores_the_test_split(corpus, tmp_path):
    """2 gloo processes, as launch() starts them: rank 0 alone scores the test split (made
    slow on purpose, longer than the process group's timeout); the other rank must not wait
    for it at a barrier (it would time out and fail the finished run), and the run succeeds
    with its test metrics. Each process runs its share of the node's CPUs as torch threads
    (pretrain.threads CPUs per GPU: 4 CPUs / 2 processes)."""
    slow_s, timeout_s = 12.0, 6
    out, notes = tmp_path / "m", tmp_path / "notes"
    notes.mkdir()
    train = {
        "max_steps": 4, "eval_interval": 2, "eval_batches": 1, "log_interval": 1,
        "micro_batch_size": 4, "patience": None, "test_eval": True,
    }  # fmt: skip
    run = PretrainRun(corpus, out, "gpt", "tiny", train=train, gpus=2, cpus=4)
    assert run.train.threads == 2
    out.mkdir()
    spec = run.save(out / "launch.json")
    cmd = launch_command(1, 2, [WORKER_MODULE, str(spec)])
    script = tmp_path / "slow_rank0.py"
    script.write_text(SLOW_RANK0)
    cmd[cmd.index("-m", 3) : cmd.index(WORKER_MODULE) + 1] = [str(script)]
    env = {**_env(), "SLOW_S": str(slow_s), "NOTES": str(notes)}
    env[distributed.TIMEOUT_ENV] = str(timeout_s)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert json.loads((out / "metrics.json").read_text())  # rank 0 finished the scoring
    record = json.loads((out / "run.json").read_text())
    assert record["world_size"] == 2
    assert record["train"]["threads"] == 2
    slow_start = float((notes / "slow_start").read_text())
    ranks = [json.loads((notes / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["threads"] for r in ranks] == [2, 2]
    # rank 1 was gone long before rank 0's slow step ended (it did not wait at a barrier)
    assert ranks[1]["done"] < slow_start + slow_s / 2, ranks[1]["done"] - slow_start
    assert ranks[0]["done"] >= slow_start + slow_s


def test_collective_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(distributed.TIMEOUT_ENV, raising=False)
    assert distributed.collective_timeout_s() == 1800
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "7.5")
    assert distributed.collective_timeout_s() == 7.5
    monkeypatch.setenv(distributed.TIMEOUT_ENV, "soon")
    with pytest.raises(ConfigError, match=r"DNALM_DIST_TIMEOUT_S='soon'.*seconds > 0"):
        distributed.collective_timeout_s()


def _shard_and_step(rank: int, port: int, precision: str, out: str) -> None:
    """One of 2 gloo processes: shard a small model with wrap(), one forward/backward."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 2))
        module, replica = distributed.wrap(model, torch.device("cpu"), 2, "fsdp", precision)
        y = module(torch.randn(4, 8))
        y.float().sum().backward()
        if rank == 0:
            seen = {
                "output": str(y.dtype),
                "param": str(model[0].weight.dtype),
                "grad": str(model[0].weight.grad.dtype),
                "replica": str(next(replica.parameters()).dtype),
            }
            Path(out).write_text(json.dumps(seen))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("precision", "compute"), [("bf16", "torch.bfloat16"), ("fp32", "torch.float32")]
)
def test_fsdp_shards_compute_in_bf16_and_keep_float32_master_weights(tmp_path, precision, compute):
    policy = distributed.fsdp_mixed_precision(precision)
    if precision == "bf16":
        assert policy == {"param_dtype": "bfloat16", "reduce_dtype": "float32"}
    else:
        assert policy is None
    out = tmp_path / "seen.json"
    torch.multiprocessing.spawn(
        _shard_and_step, args=(_free_port(), precision, str(out)), nprocs=2, join=True
    )
    seen = json.loads(out.read_text())
    assert seen["output"] == compute  # the forward (all-gathered parameters) in bf16
    # sharded parameters, their gradients (reduced in float32) and the replica: float32
    assert seen["param"] == seen["grad"] == seen["replica"] == "torch.float32"


@pytest.mark.slow
def test_fsdp_bf16_run_records_its_policy_and_resumes(corpus, tmp_path):
    out = tmp_path / "bf16"
    extra = ("--strategy", "fsdp", "--train-set", "precision=bf16", "--train-set", "max_steps=5")
    cmd = launch_command(1, 2, _args(corpus, out, *extra))
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    setup = ckpt.load_state(ckpt.last_checkpoint(out / "checkpoints"))["setup"]
    assert setup["strategy"] == "fsdp"
    assert setup["precision"] == "bf16"
    assert setup["fsdp_mixed_precision"] == {"param_dtype": "bfloat16", "reduce_dtype": "float32"}
    assert all(torch.isfinite(w).all() for w in _weights(out).values())
    # the same settings again: the setup matches, the finished run is picked up
    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"resumed from {out / 'checkpoints'}" in again.stdout + again.stderr
    assert "starting over" not in again.stdout + again.stderr
