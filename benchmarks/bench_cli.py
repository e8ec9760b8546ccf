"""Start-up cost of the `dnalm` command line: `dnalm --help` (and `dnalm cds --help`) against
`python -c pass`, in one run.

Usage:  python benchmarks/bench_cli.py [--repeat N]

Each command runs `--repeat` times as a child process (the library on PYTHONPATH); the best
wall time, the best CPU time of the child (user + system,
``resource.getrusage(RUSAGE_CHILDREN)``) and its peak resident memory (``ru_maxrss`` of a
child that ran alone: a ``wait4`` on that child) are printed, and whether the child imported
torch or transformers. Target: `dnalm --help` <= 0.5 s wall, without torch.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"

PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "'HEAVY=' + ','.join(m for m in ('torch', 'transformers') if m in sys.modules) + '\\n'))\n"
    "sys.argv = ['dnalm', *sys.argv[1:]]\n"
    "from dnalm.cli import main\n"
    "sys.exit(main())\n"
)

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "dnalm --help": [sys.executable, "-m", "dnalm.cli", "--help"],
    "dnalm cds --help": [sys.executable, "-m", "dnalm.cli", "cds", "--help"],
}


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MiB) of one child run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def heavy_imports(args: list[str], env: dict[str, str]) -> str:
    """Which of torch and transformers `dnalm ARGS` imported."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True
    )
    line = next((x for x in proc.stderr.splitlines() if x.startswith("HEAVY=")), "HEAVY=?")
    return line.removeprefix("HEAVY=") or "none"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    path_var = os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path_var}
    print(f"{'command':<20} {'wall s':>8} {'CPU s':>8} {'RSS MiB':>8}  torch/transformers")
    rows = {}
    for name, cmd in COMMANDS.items():
        runs = [run_once(cmd, env) for _ in range(args.repeat)]
        rows[name] = (min(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs))
        heavy = "-" if name.startswith("python") else heavy_imports(cmd[3:], env)
        wall, cpu, rss = rows[name]
        print(f"{name:<20} {wall:8.3f} {cpu:8.3f} {rss:8.1f}  {heavy}")
    base = rows["python -c pass"]
    for name in list(COMMANDS)[1:]:
        wall, cpu, _ = rows[name]
        print(f"{name}: +{wall - base[0]:.3f} s wall, +{cpu - base[1]:.3f} s CPU over python")


if __name__ == "__main__":
    main()
