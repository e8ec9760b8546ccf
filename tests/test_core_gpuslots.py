"""GPU slots on a local multi-GPU machine (dnalm.core.gpuslots): each GPU job sees only the
devices it holds. No GPU is needed: the machine's GPUs are a fake CUDA_VISIBLE_DEVICES list,
and the jobs report what they see; the slots (lock files) and Snakemake are real."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dnalm.core import gpuslots

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"


@pytest.fixture
def fake_gpus(tmp_path, monkeypatch):
    """A machine whose GPUs are `ids`, with its slot files under tmp_path."""

    def make(ids: str) -> dict:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ids)
        monkeypatch.setenv(gpuslots.LOCK_DIR_ENV, str(tmp_path / "slots"))
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
        monkeypatch.delenv(gpuslots.SWITCH_ENV, raising=False)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS), str(REPO)])
        return env

    yield make
    gpuslots.release()


JOB = textwrap.dedent(
    """
    import os, pathlib, subprocess, sys, time
    from dnalm.core.smk import run_script

    def main(smk):
        reports = pathlib.Path("reports")
        reports.mkdir(exist_ok=True)
        if smk.rule == "pair":  # a 2-GPU torchrun job: each rank reports its device
            subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                            "--nproc-per-node=2", "rank.py"], check=True)
        else:
            (reports / smk.wildcards.x).write_text(os.environ["CUDA_VISIBLE_DEVICES"])
        deadline = time.time() + 90  # hold the slots until every job has reported
        while len(list(reports.iterdir())) < 4 and time.time() < deadline:
            time.sleep(0.2)
        pathlib.Path(smk.output[0]).write_text(os.environ["CUDA_VISIBLE_DEVICES"])

    run_script(snakemake, main)
    """
)

RANK = textwrap.dedent(
    """
    import os, pathlib
    rank = int(os.environ["LOCAL_RANK"])
    visible = os.environ["CUDA_VISIBLE_DEVICES"].split(",")
    # cuda:<local rank> of this process is this physical device
    pathlib.Path("reports", f"rank{rank}").write_text(visible[rank])
    """
)

SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input: "single_a.txt", "single_b.txt", "pair.txt"

    rule single:
        output: "single_{x}.txt"
        wildcard_constraints: x="a|b"
        log: "logs/single_{x}.log"
        resources: gpu=1
        script: "job.py"

    rule pair:
        output: "pair.txt"
        log: "logs/pair.log"
        resources: gpu=2
        script: "job.py"
    """
)


def test_concurrent_gpu_jobs_see_distinct_devices(tmp_path, fake_gpus):
    """Two 1-GPU jobs and a 2-GPU torchrun job run at once on a 4-GPU machine under
    `--resources gpu=4`: each job sees exactly its own devices, the torchrun ranks two
    distinct ones, and no device is seen by two jobs."""
    env = fake_gpus("0,1,2,3")
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "Snakefile").write_text(SNAKEFILE)
    (wd / "job.py").write_text(JOB)
    (wd / "rank.py").write_text(RANK)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "3", "--resources", "gpu=4", "--quiet"],
        cwd=wd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    logs = "".join(p.read_text() for p in (wd / "logs").glob("*.log")) if proc.returncode else ""
    assert proc.returncode == 0, proc.stderr[-4000:] + logs
    seen = {p.name: p.read_text() for p in (wd / "reports").iterdir()}
    assert set(seen) == {"a", "b", "rank0", "rank1"}, seen
    pair = (wd / "pair.txt").read_text().split(",")
    assert len(pair) == 2, pair
    assert [seen["rank0"], seen["rank1"]] == pair
    devices = [seen["a"], seen["b"], seen["rank0"], seen["rank1"]]
    assert sorted(devices) == ["0", "1", "2", "3"], seen  # one device each, none shared


def test_a_crashed_job_frees_its_slot(fake_gpus):
    """A job killed with SIGKILL leaves no stale slot: while it lives its GPU is refused
    (naming the holder and the slot folder), after its death the GPU is free again."""
    env = fake_gpus("7")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from dnalm.core import gpuslots\n"
            "print(gpuslots.claim(1, job='crasher', wait_s=30), flush=True)\n"
            "sys.stdin.read()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
        ],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "['7']"
        with pytest.raises(gpuslots.GpuSlotError, match=r"crasher.*slot files in"):
            gpuslots.claim(1, job="second", wait_s=0.3, poll_s=0.1)
        holder.stdin.close()  # the holder kills itself
        assert holder.wait(timeout=30) == -9
        assert gpuslots.claim(1, job="second", wait_s=10, poll_s=0.1) == ["7"]
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "7"
    finally:
        if holder.poll() is None:
            holder.kill()


def test_more_gpus_than_the_machine_has_is_refused(fake_gpus):
    fake_gpus("0,1")
    with pytest.raises(gpuslots.GpuSlotError, match="asks for 3 GPUs but this machine has 2"):
        gpuslots.claim(3, job="pretrain model=m")


def test_nothing_is_claimed_without_gpus_or_inside_slurm(fake_gpus, monkeypatch):
    fake_gpus("")
    assert gpuslots.claim(1) == []
    fake_gpus("0,1")
    monkeypatch.setenv("SLURM_JOB_ID", "42")  # SLURM gave the job its devices already
    assert gpuslots.claim(1) == []
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
