"""A real single-node SLURM cluster on localhost, for testing `--profile profiles/slurm`.

Why: the SLURM profile is only worth shipping if a workflow really goes through `sbatch`,
status checks and GPU requests. This module starts Debian's Slurm (slurmctld + slurmd + munged)
on the current machine, with fake GPU devices so that GPU requests (`--gpus`, `--gres`) are
scheduled and jobs see `CUDA_VISIBLE_DEVICES`, exactly as on a GPU cluster.

Everything Slurm writes (slurm.conf, gres.conf, state, spool, logs, pid files) lives in one
state directory. Clients (sbatch, squeue, sinfo, Snakemake's SLURM plugin, and the `srun` that
the plugin runs inside each job) find the cluster through the default path
/etc/slurm/slurm.conf, a symlink to <state_dir>/slurm.conf made by start() and removed by stop().
(The environment variable SLURM_CONF is not enough: the plugin's job step removes every SLURM_*
variable before its nested `srun`.) An /etc/slurm/slurm.conf that is not such a symlink is never
touched: start() refuses to run.
munged is the system's (socket /run/munge/munge.socket.2), started as the munge user when it is
not already running and stopped again only if this module started it.

Daemons are stopped by the pids in their pid files, never by process name.

Needs root and the Debian packages slurm-wlm and munge (tests/setup_system.sh installs them).

CLI::

    python tests/support/slurm_cluster.py start  --state-dir DIR [--gpus N] [--nodes N]
    python tests/support/slurm_cluster.py status --state-dir DIR
    python tests/support/slurm_cluster.py stop   --state-dir DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: Name of the default partition (Default=YES, the first node only).
#: tests/slurm/profile/config.yaml uses it.
PARTITION = "dnalm_test"
#: With nodes > 1: the partition of all nodes (several slurmd on this one host, each its own
#: NodeName and port), for jobs that need a multi-node allocation.
MULTI_PARTITION = "dnalm_multi"
CLUSTER_NAME = "dnalm"
SLURMCTLD_PORT = 6817
SLURMD_PORT = 6818
#: Memory kept back for the OS when computing the node's RealMemory (MiB).
RESERVED_MEMORY_MB = 1024
#: Memory a job gets per CPU when it asks for none (MiB).
DEFAULT_MEM_PER_CPU_MB = 1024

SYSTEM_SLURM_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PIDFILE = Path("/run/munge/munged.pid")
MUNGE_DIRS = (
    Path("/etc/munge"),
    Path("/var/lib/munge"),
    Path("/var/log/munge"),
    Path("/run/munge"),
)
FAKE_GPU_PREFIX = "/dev/fakegpu"
# Same major/minor as /dev/null: a harmless character device Slurm accepts as a GPU file.
FAKE_GPU_DEVNUM = (1, 3)

REQUIRED_PROGRAMS = {
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "squeue": "slurm-client",
    "sinfo": "slurm-client",
    "scontrol": "slurm-client",
    "scancel": "slurm-client",
    "munged": "munge",
    "munge": "munge",
}


class ClusterError(RuntimeError):
    """The cluster could not be started, queried or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class ClusterInfo:
    """What a client needs to use a running test cluster."""

    state_dir: Path
    slurm_conf: Path
    partition: str
    node: str
    cpus: int
    real_memory_mb: int
    gpus: int
    #: nodes of the cluster: the first is `node`, the others `node`-2, ... (same host)
    nodes: int = 1

    @property
    def node_names(self) -> list[str]:
        return node_names(self.node, self.nodes)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for Slurm clients (and Snakemake) talking to this cluster."""
        return client_env(base)


def client_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: os.environ) for Slurm clients of a test cluster.

    SLURM_CONF is removed so that clients read /etc/slurm/slurm.conf (our symlink), the path
    that also reaches the job steps.
    """
    env = dict(os.environ if base is None else base)
    env.pop("SLURM_CONF", None)
    return env


# --------------------------------------------------------------------------- availability


def slurm_available() -> tuple[bool, str]:
    """Whether a test cluster can be started here, and if not, why (for pytest.skip)."""
    if sys.platform != "linux":
        return False, f"a local SLURM cluster needs Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return False, (
            "starting a local SLURM cluster needs root (daemons, /dev/fakegpu* devices); "
            "run the tests as root, e.g. in CI"
        )
    missing = sorted({pkg for prog, pkg in REQUIRED_PROGRAMS.items() if not _which(prog)})
    if missing:
        return False, (
            f"Debian packages missing: {', '.join(missing)}; install them with "
            "`tests/setup_system.sh` (apt-get install slurm-wlm munge)"
        )
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return False, "the 'munge' user does not exist; reinstall the munge package"
    if SYSTEM_SLURM_CONF.exists() and not SYSTEM_SLURM_CONF.is_symlink():
        return False, (
            f"{SYSTEM_SLURM_CONF} exists: this machine has its own SLURM, which the test "
            "harness does not touch"
        )
    if not MUNGE_KEY.exists():
        return False, f"{MUNGE_KEY} is missing; reinstall the munge package or run mungekey -c"
    return True, "root, slurm-wlm and munge are installed"


def _which(program: str) -> str | None:
    """shutil.which that also looks in the sbin folders (absent from some root PATHs)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
    return shutil.which(program, path=path)


def _require(program: str) -> str:
    found = _which(program)
    if not found:
        raise ClusterError(
            f"{program} not found (Debian package {REQUIRED_PROGRAMS.get(program, '?')}); "
            "run tests/setup_system.sh as root"
        )
    return found


# --------------------------------------------------------------------------- small helpers


def _run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 30) -> str:
    """Run a short command; return stdout; raise ClusterError with stderr on failure."""
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise ClusterError(f"`{' '.join(args)}` did not finish within {timeout} s") from err
    if proc.returncode != 0:
        raise ClusterError(
            f"`{' '.join(args)}` failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()}"
        )
    return proc.stdout


def _spawn_daemon(args: list[str], log: Path, *, env: dict[str, str] | None = None) -> None:
    """Start a self-daemonizing program and wait for its launcher to return.

    Output goes to a file, not a pipe, so a daemon that keeps a descriptor open cannot block us.
    """
    with open(log, "ab") as out:
        proc = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
            timeout=60,
            check=False,
        )
    if proc.returncode != 0:
        raise ClusterError(
            f"`{' '.join(args)}` exited with {proc.returncode}; see {log}:\n{_tail(log)}"
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text[-lines:])


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _proc_name(pid: int) -> str | None:
    """The command name of a live pid (None if gone or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ..." — comm may contain spaces or parentheses.
    comm = fields[fields.index("(") + 1 : fields.rindex(")")]
    state = fields[fields.rindex(")") + 2 :].split()[0]
    return None if state == "Z" else comm


def _alive(pidfile: Path, expected: str) -> int | None:
    """The pid in `pidfile` if that process is running and is `expected` (guards pid reuse)."""
    pid = _read_pid(pidfile)
    if pid is None:
        return None
    name = _proc_name(pid)
    return pid if name is not None and name.startswith(expected[:15]) else None


def _terminate(pid: int, expected: str, timeout: float) -> None:
    """SIGTERM the pid, wait, then SIGKILL; only if it still is the expected program."""
    if _proc_name(pid) is None or not _proc_name(pid).startswith(expected[:15]):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _proc_name(pid) is None:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _proc_name(pid) is not None:
        time.sleep(0.1)


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class _Paths:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def gres_conf(self) -> Path:
        return self.root / "gres.conf"

    @property
    def state(self) -> Path:
        return self.root / "ctld-state"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def ctld_pid(self) -> Path:
        return self.run / "slurmctld.pid"

    @property
    def slurmd_pid(self) -> Path:
        return self.run / "slurmd.pid"

    def slurmd_pids(self) -> list[Path]:
        """The pid file of each slurmd (slurmd.pid; slurmd.NODE.pid with several nodes)."""
        return sorted(self.run.glob("slurmd*.pid"))

    @property
    def record(self) -> Path:
        """What start() did (cluster info, created devices, whether munged is ours)."""
        return self.root / "cluster.json"


def _paths(state_dir: Path | str) -> _Paths:
    return _Paths(Path(state_dir).resolve())


# --------------------------------------------------------------------------- config


def node_hardware() -> dict[str, str]:
    """The node description printed by `slurmd -C` (CPUs, Boards, ..., RealMemory)."""
    out = _run([_require("slurmd"), "-C"])
    first = out.splitlines()[0]
    return dict(item.split("=", 1) for item in first.split() if "=" in item)


def real_memory_mb() -> int:
    """MemTotal minus RESERVED_MEMORY_MB, in MiB (what the node offers to jobs)."""
    meminfo = Path("/proc/meminfo").read_text()
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, flags=re.MULTILINE)
    if not match:
        raise ClusterError("cannot read MemTotal from /proc/meminfo")
    return max(256, int(match.group(1)) // 1024 - RESERVED_MEMORY_MB)


def render_slurm_conf(
    paths: _Paths, hw: dict[str, str], memory_mb: int, gpus: int, nodes: int = 1
) -> str:
    """slurm.conf for one node on 127.0.0.1 (settings from docs/local-slurm-cluster.md);
    with `nodes` > 1, more nodes on the same host (one slurmd each, `slurmd -N NAME`, with
    their own port, spool, pid and log files) and a partition MULTI_PARTITION of all of them,
    while the default partition keeps the first node only."""
    node = hw["NodeName"]
    several = nodes > 1
    host = socket.gethostname().split(".")[0]
    topology = " ".join(
        f"{key}={hw[key]}"
        for key in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
        if key in hw
    )
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    lines = [
        "# Written by tests/support/slurm_cluster.py — a single-node test cluster; do not edit.",
        f"ClusterName={CLUSTER_NAME}",
        f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={SLURMCTLD_PORT}",
        f"SlurmdPort={SLURMD_PORT}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CryptoType=crypto/munge",
        f"StateSaveLocation={paths.state}",
        f"SlurmdSpoolDir={paths.spool / '%n' if several else paths.spool}",
        f"SlurmctldPidFile={paths.ctld_pid}",
        f"SlurmdPidFile={paths.run / 'slurmd.%n.pid' if several else paths.slurmd_pid}",
        f"SlurmctldLogFile={paths.log / 'slurmctld.log'}",
        f"SlurmdLogFile={paths.log / ('slurmd.%n.log' if several else 'slurmd.log')}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "ProctrackType=proctrack/linuxproc",
        # task/none makes the plugin's `srun --cpu-bind=q` fail.
        "TaskPlugin=task/affinity",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "MpiDefault=none",
        "MailProg=/bin/true",
        "ReturnToService=2",
        # The plugin's squeue status checks need finished jobs kept >= 3 x init seconds;
        # the tests read job records after long workflow runs, so keep them an hour.
        "MinJobAge=3600",
        # Without it a job with no --mem takes the whole node's memory and runs alone.
        f"DefMemPerCPU={DEFAULT_MEM_PER_CPU_MB}",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        "SchedulerType=sched/backfill",
        "InactiveLimit=0",
        "KillWait=5",
        "Waittime=0",
    ]
    if gpus:
        lines.append("GresTypes=gpu")
    if several:
        # every node declares the host's CPUs and memory: use the declared ones
        lines.append("SlurmdParameters=config_overrides")
        names = node_names(node, nodes)
        host = socket.gethostname().split(".")[0]
        for i, name in enumerate(names):
            lines.append(
                f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={SLURMD_PORT + i} "
                f"{topology} RealMemory={memory_mb}{gres} State=UNKNOWN"
            )
        lines.append(
            f"PartitionName={MULTI_PARTITION} Nodes={','.join(names)} MaxTime=INFINITE State=UP"
        )
    else:
        lines.append(
            f"NodeName={node} NodeAddr=127.0.0.1 {topology} RealMemory={memory_mb}{gres} "
            "State=UNKNOWN"
        )
    lines += [
        f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        "",
    ]
    return "\n".join(lines)


def node_names(node: str, nodes: int) -> list[str]:
    return [node] + [f"{node}-{i}" for i in range(2, nodes + 1)]


def render_gres_conf(node: str, gpus: int, nodes: int = 1) -> str:
    """gres.conf: autodetection off, one fake device file per GPU (Slurm needs File=); every
    node of the host has the same fake devices."""
    lines = ["# Written by tests/support/slurm_cluster.py", "AutoDetect=off"]
    lines += [
        f"NodeName={name} Name=gpu File={FAKE_GPU_PREFIX}{i}"
        for name in node_names(node, nodes)
        for i in range(gpus)
    ]
    return "\n".join(lines) + "\n"


def _make_fake_gpus(gpus: int) -> list[str]:
    """Create /dev/fakegpuI character devices; return the ones this call created."""
    created = []
    for i in range(gpus):
        dev = Path(f"{FAKE_GPU_PREFIX}{i}")
        if dev.exists() or dev.is_symlink():
            if not stat.S_ISCHR(dev.lstat().st_mode):
                raise ClusterError(
                    f"{dev} exists but is not a character device; Slurm rejects it as a GPU "
                    "file. Remove it and start again."
                )
            continue
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(*FAKE_GPU_DEVNUM))
        os.chmod(dev, 0o666)  # mknod's mode is filtered by the umask
        created.append(str(dev))
    return created


def _link_system_conf(conf: Path) -> bool:
    """Point /etc/slurm/slurm.conf at `conf`; True if a link was made (False: already there)."""
    link = SYSTEM_SLURM_CONF
    if link.is_symlink():
        target = Path(os.readlink(link))
        if target == conf:
            return False
        if Path(target).exists():
            raise ClusterError(
                f"{link} points to {target}, the config of another test cluster; stop that one "
                f"first (cluster.py stop --state-dir {target.parent})"
            )
        link.unlink()  # dangling link left by a cluster whose state dir is gone
    elif link.exists():
        raise ClusterError(
            f"{link} exists and is not a test-cluster symlink; this machine has its own SLURM "
            "configuration, which the test harness will not overwrite. Run the SLURM tests on a "
            "machine without one (CI), or move the file away."
        )
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(conf)
    return True


def _unlink_system_conf(conf: Path) -> bool:
    """Remove /etc/slurm/slurm.conf if it is our symlink to `conf`."""
    link = SYSTEM_SLURM_CONF
    if link.is_symlink() and Path(os.readlink(link)) == conf:
        link.unlink()
        return True
    return False


# --------------------------------------------------------------------------- munge


def _munge_works() -> bool:
    """True if a munged answers on the default socket (credential round trip)."""
    try:
        enc = subprocess.run(
            [_require("munge"), "-n"], capture_output=True, timeout=10, check=False
        )
        if enc.returncode != 0:
            return False
        dec = subprocess.run(
            [_require("unmunge")], input=enc.stdout, capture_output=True, timeout=10, check=False
        )
    except (subprocess.TimeoutExpired, ClusterError):
        return False
    return dec.returncode == 0


def _start_munge(log: Path) -> int | None:
    """Start munged as the munge user if none answers; return its pid if we started it."""
    if _munge_works():
        return None
    pw = pwd.getpwnam("munge")
    for folder in MUNGE_DIRS:
        folder.mkdir(parents=True, exist_ok=True)
        # munged refuses files it does not own (e.g. after it once ran as root).
        for sub in [folder, *folder.rglob("*")]:
            os.chown(sub, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
    MUNGE_KEY.chmod(0o400)
    runuser = _require("runuser")
    _spawn_daemon([runuser, "-u", "munge", "--", _require("munged")], log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if _munge_works():
            return _alive(MUNGE_PIDFILE, "munged")
        time.sleep(0.1)
    raise ClusterError(
        f"munged did not answer within 15 s; see /var/log/munge/munged.log:\n"
        f"{_tail(Path('/var/log/munge/munged.log'))}"
    )


# --------------------------------------------------------------------------- public API


def _read_record(paths: _Paths) -> dict:
    try:
        return json.loads(paths.record.read_text())
    except (OSError, ValueError):
        return {}


def _info_from_record(record: dict) -> ClusterInfo:
    data = dict(record["info"])
    data["state_dir"] = Path(data["state_dir"])
    data["slurm_conf"] = Path(data["slurm_conf"])
    return ClusterInfo(**data)


def _node_state(info: ClusterInfo) -> str:
    """The state of the nodes ("idle" when every node is idle; else the first other one)."""
    try:
        out = _run([_require("sinfo"), "-h", "-N", "-o", "%t"], env=info.env(), timeout=10)
    except ClusterError:
        return ""
    states = set(out.split())
    if states == {"idle"}:
        return "idle"
    return sorted(states - {"idle"})[0] if states else ""


def _wait_idle(info: ClusterInfo, paths: _Paths, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = _node_state(info)
        if state == "idle":
            return
        if state.startswith(("drain", "down", "inval", "fail")):
            break
        time.sleep(0.2)
    reason = ""
    with contextlib.suppress(ClusterError):
        reason = _run([_require("sinfo"), "-R", "-h"], env=info.env(), timeout=10).strip()
    raise ClusterError(
        f"the node did not become idle within {timeout:.0f} s (state {state or 'unknown'!r}"
        f"{', reason: ' + reason if reason else ''}).\n"
        f"slurmctld.log:\n{_tail(paths.log / 'slurmctld.log')}\n"
        + "".join(f"{log.name}:\n{_tail(log)}\n" for log in sorted(paths.log.glob("slurmd*.log")))
    )


def start(state_dir: Path | str, gpus: int = 2, timeout: float = 60, nodes: int = 1) -> ClusterInfo:
    """Start (or reuse) the test cluster whose files live in `state_dir`; wait until idle.
    `nodes` > 1: that many nodes on this host (see render_slurm_conf), each with `gpus`.

    Idempotent: if this state dir's slurmctld and slurmd are running with the same number of
    GPUs, nothing is restarted. Raises ClusterError with the reason and the log tail otherwise.
    """
    ok, reason = slurm_available()
    if not ok:
        raise ClusterError(f"cannot start a local SLURM cluster: {reason}")
    if gpus < 0:
        raise ClusterError(f"--gpus must be >= 0, got {gpus}")
    if nodes < 1:
        raise ClusterError(f"--nodes must be >= 1, got {nodes}")
    paths = _paths(state_dir)
    record = _read_record(paths)
    ctld = _alive(paths.ctld_pid, "slurmctld")
    slurmds = [_alive(pidfile, "slurmd") for pidfile in paths.slurmd_pids()]
    slurmd = bool(slurmds) and all(slurmds)
    if record and ctld and slurmd:
        info = _info_from_record(record)
        _link_system_conf(paths.conf)
        if (info.gpus, info.nodes) != (gpus, nodes) or len(slurmds) != info.nodes:
            raise ClusterError(
                f"a cluster with {info.nodes} node(s) and {info.gpus} GPU(s) is already running "
                f"from {paths.root}; stop it first (cluster.py stop --state-dir {paths.root})"
            )
        _wait_idle(info, paths, timeout)
        return info
    if ctld or any(slurmds):  # half-running: clean up before a fresh start
        stop(paths.root)
        record = _read_record(paths)
    for port in (SLURMCTLD_PORT, *range(SLURMD_PORT, SLURMD_PORT + nodes)):
        if _port_in_use(port):
            raise ClusterError(
                f"port {port} on 127.0.0.1 is in use: another slurmctld/slurmd is running "
                "(perhaps a test cluster from another state dir; stop it with "
                "`cluster.py stop --state-dir THAT_DIR`)"
            )

    for folder in (paths.root, paths.state, paths.spool, paths.log, paths.run):
        folder.mkdir(parents=True, exist_ok=True)
    hw = node_hardware()
    memory = real_memory_mb()
    info = ClusterInfo(
        state_dir=paths.root,
        slurm_conf=paths.conf,
        partition=PARTITION,
        node=hw["NodeName"],
        cpus=int(hw["CPUs"]),
        real_memory_mb=memory,
        gpus=gpus,
        nodes=nodes,
    )
    for name in info.node_names if nodes > 1 else ():
        (paths.spool / name).mkdir(exist_ok=True)
    paths.conf.write_text(render_slurm_conf(paths, hw, memory, gpus, nodes))
    paths.gres_conf.write_text(render_gres_conf(info.node, gpus, nodes))
    _link_system_conf(paths.conf)

    # Record before starting anything, so that stop() can undo a partial start.
    record = {
        "info": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()},
        "created_devices": sorted(set(record.get("created_devices", []))),
        "munged_pid": record.get("munged_pid"),
    }
    record["created_devices"] = sorted(set(record["created_devices"]) | set(_make_fake_gpus(gpus)))
    paths.record.write_text(json.dumps(record, indent=2))
    munged_pid = _start_munge(paths.log / "munged.launch.log")
    if munged_pid is not None:
        record["munged_pid"] = munged_pid
        paths.record.write_text(json.dumps(record, indent=2))

    env = info.env()
    # -c: start from a clean job state (old jobs of a previous run are of no use to a test).
    _spawn_daemon(
        [_require("slurmctld"), "-c", "-f", str(paths.conf)],
        paths.log / "slurmctld.launch.log",
        env=env,
    )
    if nodes == 1:
        _spawn_daemon(
            [_require("slurmd"), "-f", str(paths.conf)], paths.log / "slurmd.launch.log", env=env
        )
    for name in info.node_names if nodes > 1 else ():
        _spawn_daemon(
            [_require("slurmd"), "-N", name, "-f", str(paths.conf)],
            paths.log / f"slurmd.{name}.launch.log",
            env=env,
        )
    try:
        _wait_idle(info, paths, timeout)
    except ClusterError:
        stop(paths.root)
        raise
    return info


def _cancel_jobs(info: ClusterInfo, timeout: float) -> None:
    """Cancel this cluster's jobs and wait for them to leave the queue (ends slurmstepd)."""
    env = info.env()
    with contextlib.suppress(ClusterError):
        jobs = _run([_require("squeue"), "-h", "-o", "%A"], env=env, timeout=10).split()
        if not jobs:
            return
        _run([_require("scancel"), *jobs], env=env, timeout=10)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = _run([_require("squeue"), "-h", "-t", "R,CG,PD", "-o", "%A"], env=env)
            if not out.strip():
                return
            time.sleep(0.2)


def stop(state_dir: Path | str, timeout: float = 20) -> list[str]:
    """Stop the cluster of `state_dir` by its pid files; return what was stopped.

    Cancels running jobs, stops slurmd then slurmctld, stops munged only if start() launched
    it, and removes the /dev/fakegpu* devices start() created. Safe to call repeatedly.
    """
    paths = _paths(state_dir)
    record = _read_record(paths)
    done: list[str] = []
    if record and _alive(paths.ctld_pid, "slurmctld"):
        _cancel_jobs(_info_from_record(record), timeout)
    daemons = [(pidfile, "slurmd") for pidfile in paths.slurmd_pids()]
    for pidfile, name in (*daemons, (paths.ctld_pid, "slurmctld")):
        pid = _alive(pidfile, name)
        if pid:
            _terminate(pid, name, timeout)
            done.append(f"{name} (pid {pid})")
    munged = record.get("munged_pid")
    if munged:
        if _alive(MUNGE_PIDFILE, "munged") == munged:
            _terminate(munged, "munged", timeout)
            done.append(f"munged (pid {munged})")
        record["munged_pid"] = None
    for dev in record.get("created_devices", []):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(dev)
            done.append(f"removed {dev}")
    if _unlink_system_conf(paths.conf):
        done.append(f"removed {SYSTEM_SLURM_CONF}")
    if record:
        record["created_devices"] = []
        paths.record.write_text(json.dumps(record, indent=2))
    return done


def status(state_dir: Path | str) -> dict:
    """Pids of the daemons (None if not running), node state and config paths."""
    paths = _paths(state_dir)
    record = _read_record(paths)
    result: dict = {
        "state_dir": str(paths.root),
        "slurm_conf": str(paths.conf) if paths.conf.exists() else None,
        "slurmctld": _alive(paths.ctld_pid, "slurmctld"),
        "slurmd": [_alive(pidfile, "slurmd") for pidfile in paths.slurmd_pids()] or None,
        "munged": _alive(MUNGE_PIDFILE, "munged"),
        "munged_started_here": bool(record.get("munged_pid")),
        "system_conf_link": SYSTEM_SLURM_CONF.is_symlink()
        and Path(os.readlink(SYSTEM_SLURM_CONF)) == paths.conf,
        "node_state": None,
    }
    if record and result["slurmctld"]:
        info = _info_from_record(record)
        result.update(asdict(info))
        result["state_dir"], result["slurm_conf"] = str(info.state_dir), str(info.slurm_conf)
        result["node_state"] = _node_state(info) or None
    result["running"] = bool(result["slurmctld"] and result["slurmd"] and all(result["slurmd"]))
    return result


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; exit status 0 on success, 1 on a ClusterError."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--state-dir", required=True, type=Path, help="folder for all files")
    parser.add_argument("--gpus", type=int, default=2, help="fake GPUs per node (start)")
    parser.add_argument(
        "--nodes", type=int, default=1, help=f"nodes on this host; >1 adds {MULTI_PARTITION}"
    )
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for idle")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            info = start(args.state_dir, gpus=args.gpus, timeout=args.timeout, nodes=args.nodes)
            print(
                f"SLURM is up: node {info.node} ({info.cpus} CPUs, {info.real_memory_mb} MiB, "
                f"{info.gpus} fake GPU(s)), partition {info.partition}; "
                f"{SYSTEM_SLURM_CONF} -> {info.slurm_conf}"
            )
        elif args.command == "stop":
            done = stop(args.state_dir)
            print("stopped: " + (", ".join(done) if done else "nothing was running"))
        else:
            print(json.dumps(status(args.state_dir), indent=2))
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
