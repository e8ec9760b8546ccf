"""CPU of a process's first 2-D UMAP map: umap-learn finding the neighbours itself against
dnalm.core.umap2d handing it the same exact neighbours from scikit-learn.

Usage:  python benchmarks/bench_umap.py [--points N] [--dim D] [--repeats R]

Most of the cost of a small map is numba compiling umap-learn's functions on their first
call in a process, so each variant runs in its own fresh interpreter (R times, interleaved),
and the script prints the median CPU seconds of each and their ratio. Every workflow job that
draws a map (the probe maps, the before/after pair, the walks of generated sequences) is such
a fresh process. Measured (300 x 16 points, cosine, one run each on 2 shared cores):
umap-learn's own search 16.9 CPU s, the precomputed exact neighbours 10.4 CPU s (0.62x).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import resource, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
n, d, variant = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
x = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
before = resource.getrusage(resource.RUSAGE_SELF)
if variant == "umap-learn":
    import umap
    umap.UMAP(n_neighbors=15, metric="cosine", random_state=42).fit_transform(x)
else:
    from dnalm.core.umap2d import umap_2d
    umap_2d(x)
after = resource.getrusage(resource.RUSAGE_SELF)
print((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime))
"""


def cpu_seconds(variant: str, n: int, d: int) -> float:
    env_path = f"{REPO / 'workflow' / 'scripts'}"
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), str(d), variant],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=300)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    times: dict[str, list[float]] = {"umap-learn": [], "dnalm": []}
    for _ in range(args.repeats):
        for variant in times:  # interleaved: load changes hit both alike
            times[variant].append(cpu_seconds(variant, args.points, args.dim))
    ref = statistics.median(times["umap-learn"])
    for variant, ts in times.items():
        med = statistics.median(ts)
        print(f"{variant:11s} median {med:6.2f} CPU s  ({med / ref:.2f}x)  runs {ts}")


if __name__ == "__main__":
    main()
