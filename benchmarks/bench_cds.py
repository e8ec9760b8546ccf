"""CDS extraction cost: `dnalm.genome.cds` and the `dnalm cds` command against a plain
Biopython loop over the same GenBank file, in CPU seconds, in one run.

Usage:  python benchmarks/bench_cds.py [GENBANK] [--repeat N]
(default GENBANK: ../shared/data/genbank/Streptococcus_pyogenes_M1_GAS.gb.gz, or
$DNALM_SHARED_DATA/genbank/...).

Three timings (process CPU time, user + system; the best of `--repeat` runs):

``plain``    the reference: ``SeqIO.parse(handle, "genbank")`` and, for every CDS feature,
             ``feature.extract(record.seq)`` translated with its ``/transl_table`` (11 when
             absent), ``to_stop=False``; Biopython is imported before the clock starts.
``library``  ``dnalm.genome.cds.extract_cds`` on the same file (QC, ids, drop policy), in
             this process; the one-time cost of importing ``dnalm.genome.cds`` (after
             Biopython) is shown beside it and added in ``library+import``.
``command``  ``python -m dnalm.cli cds --sample s --format gbff --source GENBANK ...`` as a
             child process, writing its FASTA and TSV to a temporary folder: the CPU of the
             child (``resource.getrusage(RUSAGE_CHILDREN)``), interpreter start, imports and
             output files included.

The ratios to ``plain`` are printed last. Targets: ``library+import`` and ``command`` each
<= 1.5x ``plain``. The machine's other load shows in wall time, much less in CPU time, and
the minimum over repeats is reported.
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
sys.path.insert(0, str(SCRIPTS))

from Bio import SeqIO  # noqa: E402  (imported before any clock starts: both paths need it)
from Bio.Seq import Seq  # noqa: E402, F401


def default_genbank() -> Path:
    base = os.environ.get("DNALM_SHARED_DATA")
    root = Path(base) if base else REPO.parent / "shared" / "data"
    return root / "genbank" / "Streptococcus_pyogenes_M1_GAS.gb.gz"


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def plain_loop(path: Path) -> int:
    """Parse, extract every CDS and translate it with its table; returns the CDS count."""
    opener = gzip.open if path.name.endswith(".gz") else open
    n = 0
    with opener(path, "rt") as fh:
        for rec in SeqIO.parse(fh, "genbank"):
            for feat in rec.features:
                if feat.type != "CDS":
                    continue
                table = int((feat.qualifiers.get("transl_table") or ["11"])[0])
                feat.extract(rec.seq).translate(table=table)
                n += 1
    return n


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_command(path: Path, out: Path) -> float:
    path_var = os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path_var}
    cmd = [
        sys.executable,
        "-m",
        "dnalm.cli",
        "cds",
        "--sample",
        "bench",
        "--format",
        "gbff",
        "--source",
        str(path),
        "--fasta-out",
        str(out / "cds.fasta"),
        "--tsv-out",
        str(out / "cds.tsv"),
    ]
    before = child_cpu()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return child_cpu() - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("genbank", nargs="?", type=Path, default=default_genbank())
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path: Path = args.genbank
    if not path.is_file():
        sys.exit(f"no such GenBank file: {path}")

    t0 = cpu()
    import dnalm.genome.cds as cds_module

    import_s = cpu() - t0

    plain, library, command = [], [], []
    n_plain = n_lib = 0
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            t0 = cpu()
            n_plain = plain_loop(path)
            plain.append(cpu() - t0)
            t0 = cpu()
            result = cds_module.extract_cds("bench", "gbff", path)
            library.append(cpu() - t0)
            n_lib = len(result.rows)
            command.append(run_command(path, Path(tmp)))
    best_plain, best_lib, best_cmd = min(plain), min(library), min(command)
    print(f"file: {path.name}  ({n_plain} CDS features; library rows {n_lib})")
    print(f"plain Biopython loop   {best_plain:7.3f} s CPU")
    print(f"library extract_cds    {best_lib:7.3f} s CPU")
    print(f"import dnalm.genome.cds {import_s:6.3f} s CPU (once, after Biopython)")
    print(f"library+import         {best_lib + import_s:7.3f} s CPU")
    print(f"dnalm cds (subprocess) {best_cmd:7.3f} s CPU")
    print(
        f"ratios to plain: library {best_lib / best_plain:.2f}x, "
        f"library+import {(best_lib + import_s) / best_plain:.2f}x, "
        f"command {best_cmd / best_plain:.2f}x  (target <= 1.5x)"
    )
    print(f"all runs (s CPU): plain {plain}, library {library}, command {command}")


if __name__ == "__main__":
    t_wall = time.perf_counter()
    main()
    print(f"benchmark wall time {time.perf_counter() - t_wall:.1f} s")
