"""Corpus-build memory and speed at 1x, 4x and 16x the same real input.

Usage:  python benchmarks/bench_corpus_memory.py [FASTA] [--sizes 1 4 16] [--scripts DIR]
(default FASTA: ../shared/data/fasta_gff/sacCer3_chrIV.fa.gz, or $DNALM_SHARED_DATA/...).

The genome is cut into 1 kb records; the input of size N is those records written N times
into one plain FASTA file (so 16x is 16 copies of chrIV, about 24.5 M nt). Each build
(tokenizers nucleotide and kmer6, block_size 256, packed, train split only) runs in a fresh
Python process, which reports its own peak RSS (``resource.getrusage(RUSAGE_SELF)``,
``ru_maxrss``), its RSS just before the build (imports, tokenizer), the build's wall time
and nucleotides per second. The table gives the ratio of each figure to the 1x build.
Target: flat peak memory: it grows only until the input fills one encoding batch
(BATCH_NT nucleotides) and the build has touched a whole shard buffer (shard_tokens
tokens), and stays there for any larger input. Measured (README.md): the build's own
allocations are flat past 16x, but glibc's dynamic mmap threshold adds about 10 MiB of RSS
from 16x to 64x; run with MALLOC_MMAP_THRESHOLD_=1048576 in the environment (the children
inherit it) to see the RSS flat too.

``--scripts DIR`` imports ``dnalm`` from another checkout's ``workflow/scripts`` (e.g. an
older commit exported with ``git archive``), to compare with the in-memory builder; the
options it does not know (shard_tokens) are then left out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKENIZERS = {"nucleotide": {"type": "nucleotide"}, "kmer6": {"type": "kmer", "k": 6}}
RECORD = 1000
BLOCK = 256


def default_fasta() -> Path:
    base = os.environ.get("DNALM_SHARED_DATA")
    root = Path(base) if base else REPO.parent / "shared" / "data"
    return root / "fasta_gff" / "sacCer3_chrIV.fa.gz"


def rss_mib() -> float:
    """Current resident set size of this process (MiB), from /proc."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> None:
    """One build in this process; prints a JSON line of figures."""
    sys.path.insert(0, args.scripts)
    import inspect

    from dnalm.core.log import setup_logging
    from dnalm.tokenization.build import build_tokenizer
    from dnalm.tokenization.corpus import build_corpus

    setup_logging(30)
    tok = build_tokenizer(json.loads(args.spec))
    kwargs = {"block_size": BLOCK, "packing": "packed", "seed": 0}
    if "shard_tokens" in inspect.signature(build_corpus).parameters:
        kwargs["shard_tokens"] = args.shard_tokens
    before = rss_mib()
    t0 = time.perf_counter()
    meta = build_corpus(tok, {"train": [args.fasta]}, args.out, **kwargs)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    nt = meta["train"]["nucleotides"]
    print(
        json.dumps(
            {
                "nt": nt,
                "peak_mib": peak,
                "before_mib": before,
                "seconds": secs,
                "nt_per_s": nt / secs,
                "windows": meta["train"]["n_windows"],
                "shards": meta["train"].get("n_shards", 1),
            }
        )
    )


def write_inputs(fasta: Path, sizes: list[int], folder: Path) -> dict[int, Path]:
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from dnalm.core.io import read_fasta

    _h, seq, _l = next(iter(read_fasta(fasta)))
    recs = [seq[i : i + RECORD] for i in range(0, len(seq), RECORD)]
    out = {}
    for n in sizes:
        path = folder / f"x{n}.fa"
        with open(path, "w") as fh:
            for copy in range(n):
                for i, r in enumerate(recs):
                    fh.write(f">c{copy}_r{i}\n{r}\n")
        out[n] = path
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("fasta", nargs="?", type=Path, default=default_fasta())
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--tokenizers", nargs="+", default=list(TOKENIZERS), choices=TOKENIZERS)
    p.add_argument("--scripts", default=str(REPO / "workflow" / "scripts"))
    p.add_argument("--shard-tokens", type=int, default=1 << 23, help="corpus.shard_tokens")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    if not args.fasta.is_file():
        print(f"input not found: {args.fasta} (set DNALM_SHARED_DATA)", file=sys.stderr)
        return 2
    print(
        f"dnalm from {args.scripts}; input {args.fasta} cut into {RECORD} nt records; "
        f"block_size {BLOCK}, shard_tokens {args.shard_tokens}"
    )
    header = (
        f"{'tokenizer':<11}{'size':>5}{'M nt':>8}{'peak MiB':>10}{'pre MiB':>9}"
        f"{'build MiB':>11}{'s':>7}{'M nt/s':>8}{'peak/1x':>9}{'build/1x':>10}{'nt/s/1x':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        inputs = write_inputs(args.fasta, args.sizes, Path(tmp))
        print(header)
        for name in args.tokenizers:
            first = None
            for n in args.sizes:
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    "--scripts",
                    args.scripts,
                    "--shard-tokens",
                    str(args.shard_tokens),
                    "--spec",
                    json.dumps(TOKENIZERS[name]),
                    "--out",
                    str(Path(tmp) / f"corpus-{name}-{n}"),
                    str(inputs[n]),
                ]
                res = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if res.returncode:
                    print(res.stderr, file=sys.stderr)
                    return 1
                r = json.loads(res.stdout.strip().splitlines()[-1])
                r["build_mib"] = r["peak_mib"] - r["before_mib"]
                first = first or r
                print(
                    f"{name:<11}{n:>4}x{r['nt'] / 1e6:>8.2f}{r['peak_mib']:>10.0f}"
                    f"{r['before_mib']:>9.0f}{r['build_mib']:>11.0f}{r['seconds']:>7.1f}"
                    f"{r['nt_per_s'] / 1e6:>8.2f}{r['peak_mib'] / first['peak_mib']:>9.2f}"
                    f"{r['build_mib'] / max(first['build_mib'], 1e-9):>10.2f}"
                    f"{r['nt_per_s'] / first['nt_per_s']:>9.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
