"""GPU slots on a local multi-GPU machine: a job that holds N of Snakemake's `gpu` resource
sees exactly N devices of its own.

Snakemake's `--resources gpu=N` is only a counter: it keeps the jobs' sum under N but does
not say *which* GPUs a job may use, so every job would run on ``cuda:0``. Before a GPU rule's
script starts its work (:func:`dnalm.core.smk.run_script`), :func:`claim` takes the job's
devices and sets ``CUDA_VISIBLE_DEVICES`` to them, before torch initialises CUDA; a torchrun
job's workers inherit it, so its ranks use the claimed devices only.

A slot is one lock file per device under a per-machine folder (:func:`lock_dir`), held with
an exclusive ``flock`` for the job's life. The kernel releases it when the process exits,
crashes or is killed, so no stale slot survives a job. A job takes all its devices or none
(and retries), so two jobs never wait on each other's half.

The devices of the machine are the entries of ``CUDA_VISIBLE_DEVICES`` when Snakemake runs
with it set (a subset, or UUIDs), else the GPUs that ``nvidia-smi -L`` lists, else none (then
nothing is claimed: a CPU or Apple machine). Inside a SLURM job nothing is claimed either:
SLURM has already given the job its own devices. ``DNALM_GPU_SLOTS=off`` switches claiming
off. This module does not import torch.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from dnalm.core.errors import DnalmError

log = logging.getLogger(__name__)

#: Environment variables: the lock folder, and the switch ("off" - claim nothing).
LOCK_DIR_ENV = "DNALM_GPU_LOCK_DIR"
SWITCH_ENV = "DNALM_GPU_SLOTS"

_held: list[int] = []  # file descriptors of this process's slots (open for the job's life)


class GpuSlotError(DnalmError):
    """No slot could be claimed (too many GPUs asked for, or none free in time)."""


def lock_dir() -> Path:
    """The per-machine folder of the slot files: ``$DNALM_GPU_LOCK_DIR``, else
    ``$XDG_RUNTIME_DIR/dnalm-gpu-slots``, else ``<tmp>/dnalm-gpu-slots-<uid>``."""
    if os.environ.get(LOCK_DIR_ENV):
        return Path(os.environ[LOCK_DIR_ENV])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "dnalm-gpu-slots"
    return Path(tempfile.gettempdir()) / f"dnalm-gpu-slots-{os.getuid()}"


def machine_devices() -> list[str]:
    """The GPUs of this machine as ``CUDA_VISIBLE_DEVICES`` entries (module docstring)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


def _slot_file(device: str) -> Path:
    return lock_dir() / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock"


def _try_lock(device: str, job: str) -> int | None:
    """The open, locked slot file of `device` (its descriptor), or None when it is held."""
    path = _slot_file(device)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} {job}\n".encode())
    return fd


def _holder(device: str) -> str:
    with contextlib.suppress(OSError):
        return _slot_file(device).read_text().strip() or "?"
    return "?"


def claim(n: int, job: str = "", wait_s: float | None = None, poll_s: float = 1.0) -> list[str]:
    """Hold `n` free GPUs of this machine for the rest of this process and set
    ``CUDA_VISIBLE_DEVICES`` to them; returns them ([] when nothing is claimed: `n` < 1, no
    GPU here, inside a SLURM job, or switched off). Waits while they are busy (at most
    `wait_s` seconds; None - as long as it takes), logging once who holds them."""
    if n < 1 or os.environ.get(SWITCH_ENV, "").lower() == "off" or os.environ.get("SLURM_JOB_ID"):
        return []
    devices = machine_devices()
    if not devices:
        return []
    if n > len(devices):
        raise GpuSlotError(
            f"{job or 'this job'} asks for {n} GPUs but this machine has {len(devices)} "
            f"({','.join(devices)}); lower its GPU count (pretrain.gpus / finetune.gpus)"
        )
    try:
        lock_dir().mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise GpuSlotError(
            f"cannot create the GPU slot folder {lock_dir()} ({err}); set {LOCK_DIR_ENV} to a "
            "writable local folder, or DNALM_GPU_SLOTS=off"
        ) from err
    start, told = time.monotonic(), False
    while True:
        got: list[tuple[str, int]] = []
        for dev in devices:
            fd = _try_lock(dev, job)
            if fd is not None:
                got.append((dev, fd))
                if len(got) == n:
                    break
        if len(got) == n:
            _held.extend(fd for _, fd in got)
            mine = [dev for dev, _ in got]
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
            log.info("GPU slots: %s holds GPU %s (CUDA_VISIBLE_DEVICES)", job or "job", mine)
            return mine
        for _, fd in got:  # all or none: never sit on half while waiting
            os.close(fd)
        busy = "; ".join(f"GPU {d}: {_holder(d)}" for d in devices)
        if wait_s is not None and time.monotonic() - start >= wait_s:
            raise GpuSlotError(
                f"{job or 'this job'} found no {n} free GPU(s) within {wait_s:g} s ({busy}; "
                f"slot files in {lock_dir()}); run Snakemake with --resources gpu=N, N at most "
                "the machine's GPUs, or wait for the other jobs"
            )
        if not told:
            log.info("GPU slots: waiting for %d free GPU(s) (%s)", n, busy)
            told = True
        time.sleep(poll_s)


def release() -> None:
    """Give this process's slots back (also done by the kernel at exit or crash)."""
    while _held:
        os.close(_held.pop())
