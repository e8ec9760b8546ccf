"""Several processes, several nodes: how pretraining is launched and how its model is split.

Launch (:func:`launch` of a :class:`dnalm.training.run.PretrainRun`, with
:func:`launch_command`): one node runs ``torchrun --standalone`` with one process per
GPU, as before; ``nodes`` > 1 (inside a SLURM allocation) runs ``srun --ntasks-per-node=1``
that starts one ``torchrun`` per node, all meeting at a c10d rendezvous on the allocation's
first node (:func:`first_node`). The job's nodes are found from its job id
(``scontrol show job``), because Snakemake's SLURM job-step plugin starts the rule with every
``SLURM_*`` variable removed except the job id, the array ids, the cluster name and the submit
dir/host; the CPUs of each node's task are passed in (the rule's threads), not read from
``$SLURM_CPUS_PER_TASK``. The
ranks, the batch schedule and the data order do not depend on how the processes are spread
over nodes: ``dnalm.training.lm_data.BatchSchedule`` splits each optimizer step's windows
over the world size only.

Strategies (``pretrain.strategy``):

* ``ddp``: DistributedDataParallel, every process holds the whole model and optimizer state.
* ``fsdp``: PyTorch FSDP2 (:func:`torch.distributed.fsdp.fully_shard`): each layer of the
  model's layer list and then the whole model is sharded over the processes, so parameters,
  gradients and AdamW state take 1/world of the memory each on every process. Gradients are
  reduce-scattered (averaged over the processes, as DDP does), so the loss scaling of
  ``Trainer.train_step`` (the scale of ``TrainingLoop.train_step``) is the same for both.

Checkpoints under ``fsdp`` are *gathered*: the full weights and the full optimizer state are
collected (``torch.distributed.checkpoint.state_dict`` with ``full_state_dict``), and rank 0
writes them in exactly the format of a DDP run (dnalm.training.checkpoint: safetensors
weights, trainer_state.pt). On resume every process reads the same files and keeps its own
shard. So a checkpoint is exact (a run resumes bitwise on CPU), the exported model folder is
a plain Hugging Face folder, and nothing in the files depends on the number of processes
except the RNG states (one per process, as for DDP). Evaluation, the test split and the export
run on an unsharded copy of the model (the *replica*, one per process) that is refreshed from
the shards when used: it costs the memory of the weights once, a quarter of what a process of
DDP holds in weights, gradients and AdamW state.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from dnalm.core.artifacts import LAUNCH_JSON
from dnalm.core.errors import ConfigError, DnalmError
from dnalm.training.run import WORKER_MODULE

if TYPE_CHECKING:
    from dnalm.training.run import PretrainRun

STRATEGIES = ("ddp", "fsdp")
#: default TCP port of the c10d rendezvous on the first node of a multi-node job
DEFAULT_PORT = 29500
#: how long a process waits for the others in one collective (seconds); the environment
#: variable overrides it (e.g. for a slow shared file system's checkpoint writes)
TIMEOUT_ENV, DEFAULT_TIMEOUT_S = "DNALM_DIST_TIMEOUT_S", 1800


def collective_timeout_s() -> float:
    """The process group's timeout: ``$DNALM_DIST_TIMEOUT_S`` seconds, default 30 minutes."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or raw == "":
        return float(DEFAULT_TIMEOUT_S)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(
            f"{TIMEOUT_ENV}={raw!r}: must be a number of seconds > 0 (unset: {DEFAULT_TIMEOUT_S})"
        )
    return value


# --------------------------------------------------------------------------- launch


def launch_command(
    nodes: int,
    gpus: int,
    worker: Sequence[str],
    *,
    python: str = sys.executable,
    rdzv_host: str | None = None,
    port: int = DEFAULT_PORT,
    job_id: str = "dnalm",
    cpus_per_task: int | None = None,
) -> list[str]:
    """The command that starts `worker` (arguments after ``python -m``, e.g.
    ``["dnalm.training.pretrain", "--corpus", ...]``) on `nodes` nodes x `gpus` processes.

    nodes == 1: ``python -m torch.distributed.run --standalone --nproc-per-node G -m ...``
    (today's single-node launch). nodes > 1: ``srun --nodes N --ntasks-per-node=1
    --kill-on-bad-exit=1 python -m torch.distributed.run --nnodes N --nproc-per-node G
    --rdzv-backend c10d --rdzv-endpoint HOST:PORT --rdzv-id JOB -m ...``; `rdzv_host` is the
    allocation's first node (required then). `cpus_per_task`: the CPUs of each node's task
    (the rule's threads; srun does not inherit sbatch's since SLURM 22.05, and the job-step
    plugin removes ``$SLURM_CPUS_PER_TASK``)."""
    nodes, gpus = int(nodes), int(gpus)
    if nodes < 1 or gpus < 1:
        raise ConfigError(f"pretrain.nodes and pretrain.gpus must be >= 1, got {nodes}, {gpus}")
    run = [python, "-m", "torch.distributed.run"]
    if nodes == 1:
        return [*run, "--standalone", f"--nproc-per-node={gpus}", "-m", *worker]
    if not rdzv_host:
        raise ConfigError(
            f"pretrain.nodes is {nodes}: a multi-node run needs the rendezvous host (the first "
            "node of the SLURM allocation)"
        )
    cpus = [f"--cpus-per-task={int(cpus_per_task)}"] if cpus_per_task else []
    return [
        "srun", f"--nodes={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *cpus,
        *run, f"--nnodes={nodes}", f"--nproc-per-node={gpus}",
        "--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_host}:{port}", f"--rdzv-id={job_id}",
        "-m", *worker,
    ]  # fmt: skip


def launch(run: PretrainRun, log_file: str | os.PathLike | None = None) -> None:
    """Run the pretraining `run` on ``run.nodes`` x ``run.gpus`` processes: write the run to
    ``out_dir/launch.json``, start the workers (``python -m dnalm.training.worker``) with
    :func:`launch_command` (torchrun; srun across nodes, meeting on :func:`first_node`,
    each node's task with ``run.cpus`` CPUs), with this copy of dnalm first on their
    PYTHONPATH, and wait. Rank 0 writes the outputs. A failed launch raises DnalmError
    (naming `log_file`, where their output goes, when given)."""
    check_strategy(run.strategy)
    run.out_dir.mkdir(parents=True, exist_ok=True)
    spec = run.save(run.out_dir / LAUNCH_JSON)
    host = first_node() if run.nodes > 1 else None
    job = os.environ.get("SLURM_JOB_ID", "dnalm")
    cmd = launch_command(
        max(run.nodes, 1),
        max(run.gpus, 1),
        [WORKER_MODULE, str(spec)],
        rdzv_host=host,
        job_id=job,
        cpus_per_task=run.cpus,
    )
    print("launching:", " ".join(cmd), file=sys.stderr, flush=True)
    # the workers import dnalm from the folder above this package, ahead of the user's path
    scripts = str(Path(__file__).resolve().parents[2])
    search = [scripts, os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in search if p)}
    proc = subprocess.run(cmd, stderr=sys.stderr, stdout=sys.stderr, env=env)
    if proc.returncode != 0:
        where = f"; see {log_file}" if log_file else ""
        raise DnalmError(f"{cmd[0]} exited with {proc.returncode}{where}")


def _scontrol(*args: str) -> str:
    if shutil.which("scontrol") is None:
        raise ConfigError("pretrain.nodes > 1: `scontrol` (SLURM) is not on PATH")
    proc = subprocess.run(["scontrol", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ConfigError(
            f"`scontrol {' '.join(args)}` failed ({proc.returncode}): {proc.stderr.strip()}"
        )
    return proc.stdout


def _fields(text: str) -> dict[str, str]:
    """``Key=Value`` pairs of one ``scontrol show ... -o`` record."""
    return dict(item.split("=", 1) for item in text.split() if "=" in item)


def allocation_nodes(nodelist: str | None = None) -> list[str]:
    """The node names of this SLURM job: `nodelist`, else ``$SLURM_JOB_NODELIST``, else the
    ``NodeList`` of ``scontrol show job $SLURM_JOB_ID`` (under Snakemake's job-step plugin
    the job id is all that is left), expanded by ``scontrol show hostnames``."""
    nodelist = nodelist or os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if not nodelist:
        job = os.environ.get("SLURM_JOB_ID") or os.environ.get("SLURM_JOBID")
        if not job:
            raise ConfigError(
                "pretrain.nodes > 1 runs only inside a SLURM allocation of that many nodes "
                "(neither SLURM_JOB_ID nor SLURM_JOB_NODELIST is set): submit with "
                "--profile profiles/slurm"
            )
        nodelist = _fields(_scontrol("show", "job", "-o", job)).get("NodeList")
        if not nodelist or nodelist == "(null)":
            raise ConfigError(
                f"`scontrol show job {job}` names no nodes (NodeList={nodelist}): "
                "is the job running?"
            )
    nodes = _scontrol("show", "hostnames", nodelist).split()
    if not nodes:
        raise ConfigError(f"scontrol show hostnames {nodelist!r} named no host")
    return nodes


def first_node(nodelist: str | None = None) -> str:
    """The rendezvous address of a multi-node run: the first node of this job
    (:func:`allocation_nodes`) by its ``NodeAddr`` (``scontrol show node``; SLURM's default
    is the node name), so that node names that are not host names still work."""
    node = allocation_nodes(nodelist)[0]
    try:
        addr = _fields(_scontrol("show", "node", "-o", node)).get("NodeAddr")
    except ConfigError:
        addr = None
    return addr or node


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise ConfigError(f"pretrain.strategy must be one of {STRATEGIES}, got {strategy!r}")
    return strategy


# --------------------------------------------------------------------------- wrapping


def _layer_lists(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The layers of the outermost ModuleLists of `model` (a transformer's blocks)."""
    chosen: list[str] = []
    layers: list[torch.nn.Module] = []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.ModuleList) and not any(
            name.startswith(c + ".") for c in chosen
        ):
            chosen.append(name)
            layers.extend(mod)
    return layers


def fsdp_mixed_precision(precision: str) -> dict[str, str] | None:
    """FSDP2's mixed-precision policy under `precision` (the resolved one), as recorded in
    a checkpoint's setup: bf16 compute and all-gathers with float32 gradient reductions
    (and float32 sharded parameters and optimizer state) under bf16; None (plain float32)
    otherwise."""
    if precision == "bf16":
        return {"param_dtype": "bfloat16", "reduce_dtype": "float32"}
    return None


def wrap(
    model: torch.nn.Module,
    device: torch.device,
    world: int,
    strategy: str,
    precision: str = "fp32",
) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """(the module to train, the replica): `model` under DDP (world > 1) or sharded in place
    with FSDP2 (strategy fsdp, world > 1; then the replica is an unsharded copy for
    evaluation and export, and under `precision` bf16 the shards run with
    :func:`fsdp_mixed_precision`'s policy); `model` itself and no replica with one process."""
    check_strategy(strategy)
    if world <= 1:
        return model, None
    if strategy == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids), None
    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.device_mesh import init_device_mesh

    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = fsdp_mixed_precision(precision)
    kwargs = {}
    if policy is not None:
        kwargs["mp_policy"] = MixedPrecisionPolicy(
            **{k: getattr(torch, v) for k, v in policy.items()}
        )
    replica = copy.deepcopy(model)
    mesh = init_device_mesh(device.type, (world,))
    for layer in _layer_lists(model):
        fully_shard(layer, mesh=mesh, **kwargs)
    fully_shard(model, mesh=mesh, **kwargs)
    return model, replica


def is_sharded(model: torch.nn.Module) -> bool:
    if "torch.distributed.fsdp" not in sys.modules:
        return False  # only wrap() shards, and it imports FSDP first
    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def grad_sync(module: torch.nn.Module, sync: bool) -> contextlib.AbstractContextManager:
    """A context for one micro-batch's backward that reduces gradients only when `sync`
    (the last micro-batch of a step): DDP's no_sync, FSDP2's requires_gradient_sync."""
    inner = getattr(module, "_orig_mod", module)  # torch.compile's wrapper
    if is_sharded(inner):
        inner.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    if sync or not hasattr(inner, "no_sync"):
        return contextlib.nullcontext()
    return module.no_sync()


# --------------------------------------------------------------------------- gathered states


def _options(**kw):
    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def refresh_replica(model: torch.nn.Module, replica: torch.nn.Module, step: int) -> None:
    """Copy the full weights of the sharded `model` into `replica` (collective: every process
    calls it at the same point), unless it already holds those of `step`."""
    if getattr(replica, "_dnalm_step", None) == step:
        return
    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    full = get_model_state_dict(model, options=_options())
    with torch.no_grad():
        replica.load_state_dict(full, strict=True)
    replica._dnalm_step = step


def optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer state to checkpoint: gathered (keyed by parameter name; complete on rank
    0 only, collective) for a sharded model, the plain state_dict otherwise."""
    if not is_sharded(model):
        return optimizer.state_dict()
    if not optimizer.state:
        # before the first step: torch's gatherer would initialise the state with a zero-lr
        # step (AdamW's step count 1), changing every later update; nothing to gather
        return {"state": {}, "param_groups": []}
    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=_options(cpu_offload=True))


def load_optimizer_state(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
) -> None:
    """Load a checkpoint's optimizer state (every process passes the full one it read)."""
    if not is_sharded(model):
        optimizer.load_state_dict(state)
        return
    if not state["state"]:  # saved before the first step: a fresh optimizer is the same
        return
    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, optim_state_dict=state, options=_options())


def load_model_state(model: torch.nn.Module, replica: torch.nn.Module, step: int) -> None:
    """Shard the weights already loaded into `replica` (from a checkpoint) into `model`."""
    # lazy: torch.distributed's FSDP/checkpoint modules load only for sharded (multi-GPU) runs
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    set_model_state_dict(model, replica.state_dict(), options=_options())
    replica._dnalm_step = step
    if dist.is_initialized():
        dist.barrier()


def leave_process_group(tr, barrier: bool = True) -> None:
    """Free the wrapper and destroy the process group of a multi-process run (`tr`: the
    pretraining Trainer) (after a
    barrier, so that every rank has finished its collectives); nothing with one process or
    when already left."""
    if tr.world <= 1 or not dist.is_initialized():
        return
    if barrier:
        dist.barrier()
    # The DDP wrapper's reducer holds the process group. Freed after it, the group's gloo
    # destructor would run under the GIL and join a worker thread that waits for the GIL (a
    # deadlock at exit, seen under load): free the wrapper first.
    tr.module = tr.loop.module = None
    gc.collect()
    dist.destroy_process_group()
