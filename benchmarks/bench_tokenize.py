"""Tokenization throughput: the NumPy path of dnalm.tokenization.tokenizers versus the `tokenizers`
library (tokenizer.json, Rust) batch path, on the CDS of a real genome, on one CPU core.

Usage:  python benchmarks/bench_tokenize.py [GENBANK] [--repeat N]
(default GENBANK: ../shared/data/genbank/Streptococcus_pyogenes_M1_GAS.gb.gz, or
$DNALM_SHARED_DATA/genbank/...).

Both paths start from the list of CDS strings and end with the token ids of every CDS
(NumPy: uint16 arrays; tokenizers: `encode_batch_fast` and the `.ids` lists, the fastest
call it has). For kmer_overlapping the tokenizers path gets its DNABERT-style
space-separated k-mer text prepared outside the timed region, which favours it. The
process is pinned to one core and the tokenizers thread pool is disabled. Each path runs
`--repeat` times; the best time is reported. The ids of the two paths are checked to be
equal. Targets: NumPy >= 20x the tokenizers path, and >= 50 M nt/s for nucleotide and
k-mer.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # before `tokenizers` is imported
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["RAYON_RS_NUM_CPUS"] = "1"

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import numpy as np  # noqa: E402

from dnalm.tokenization.build import build_tokenizer  # noqa: E402

SPECS = [
    {"type": "nucleotide"},
    {"type": "kmer", "k": 6},
    {"type": "kmer", "k": 3},
    {"type": "kmer_overlapping", "k": 6},
    {"type": "codon"},
]


def default_genbank() -> Path:
    base = os.environ.get("DNALM_SHARED_DATA")
    root = Path(base) if base else REPO.parent / "shared" / "data"
    return root / "genbank" / "Streptococcus_pyogenes_M1_GAS.gb.gz"


def load_cds(path: Path) -> list[str]:
    """The CDS sequences of every record (Biopython feature extraction), upper-case."""
    from Bio import SeqIO

    opener = gzip.open if path.name.endswith(".gz") else open
    seqs = []
    with opener(path, "rt") as fh:
        for rec in SeqIO.parse(fh, "genbank"):
            for feat in rec.features:
                if feat.type == "CDS" and feat.location is not None:
                    s = str(feat.extract(rec.seq)).upper()
                    if s:
                        seqs.append(s)
    return seqs


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("genbank", nargs="?", type=Path, default=default_genbank())
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    seqs = load_cds(args.genbank)
    n_nt = sum(map(len, seqs))
    print(
        f"{args.genbank.name}: {len(seqs)} CDS, {n_nt / 1e6:.2f} M nt; one core; best of "
        f"{args.repeat}"
    )
    header = f"{'tokenizer':<22}{'NumPy nt/s':>14}{'tokenizers nt/s':>17}{'ratio':>8}  ids equal"
    print(header)
    print("-" * len(header))
    for spec in SPECS:
        tok = build_tokenizer(spec)
        rust = tok.tokenizers_object()
        texts = [tok.hf_text(s) for s in seqs]  # untimed (identity except overlapping)
        t_np, ids_np = best_time(lambda tok=tok: tok.encode_batch(seqs), args.repeat)
        t_hf, encs = best_time(
            lambda rust=rust, texts=texts: [
                e.ids for e in rust.encode_batch_fast(texts, add_special_tokens=False)
            ],
            max(1, args.repeat // 2),
        )
        same = all(
            np.array_equal(a, np.asarray(b, dtype=np.uint16))
            for a, b in zip(ids_np, encs, strict=True)
        )
        name = "-".join([spec["type"], *(f"{k}{v}" for k, v in spec.items() if k != "type")])
        print(
            f"{name:<22}{n_nt / t_np / 1e6:>11.1f} M{n_nt / t_hf / 1e6:>14.2f} M"
            f"{t_hf / t_np:>7.0f}x  {same}"
        )


if __name__ == "__main__":
    main()
