"""What the text buys after a longer CPU run: the dnatext stage (dnalm.multimodal.pipeline)
on a paired corpus the workflow wrote, with more steps than the test config's 10.

    PYTHONPATH=workflow/scripts python benchmarks/dnatext_longer_run.py \\
        results/dnatext/corpus/pairs.tsv results/tokenizers/bpe OUT_DIR \\
        --steps 400 [--samples spyogenes mgallisepticum]

Prints the evaluation table (one row per metric) and the seconds per phase, and writes them
(evaluation.tsv, timing.json, the three model folders) into OUT_DIR. The model is the tiny
one of the test config (hidden 32, one layer, base-wise embedder 16 wide) unless
--hidden/--layers say otherwise.
"""

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from dnalm.multimodal.corpus import read_pairs
from dnalm.multimodal.pipeline import run

ap = argparse.ArgumentParser()
ap.add_argument("pairs")
ap.add_argument("dna_tokenizer")
ap.add_argument("out")
ap.add_argument("--steps", type=int, default=400)
ap.add_argument("--batch-size", type=int, default=16)
ap.add_argument("--max-len", type=int, default=96)
ap.add_argument("--hidden", type=int, default=32)
ap.add_argument("--layers", type=int, default=1)
ap.add_argument("--text-vocab-size", type=int, default=300)
ap.add_argument("--samples", nargs="*", help="keep only these samples' pairs")
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

torch.set_num_threads(args.threads)
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
pairs_path = Path(args.pairs)
if args.samples:
    pairs = read_pairs(pairs_path)
    pairs = pairs[pairs["sample"].isin(args.samples)]
    pairs_path = out / "pairs.tsv"
    pairs.to_csv(pairs_path, sep="\t", index=False)
counts = read_pairs(pairs_path)["split"].value_counts().to_dict()
cfg = {
    "text_tokenizer": "wordpiece",
    "text_vocab_size": args.text_vocab_size,
    "model": {
        "hidden_size": args.hidden,
        "num_hidden_layers": args.layers,
        "num_attention_heads": 2,
        "base_dim": 16,
        "base_layers": 1,
        "base_heads": 2,
    },
    "train": {"steps": args.steps, "batch_size": args.batch_size, "max_len": args.max_len},
    "evaluation": {"max_candidates": 16, "max_queries": 32, "max_test_pairs": 200},
}
t0 = time.perf_counter()
table = run(pairs_path, args.dna_tokenizer, cfg, out)
wall = time.perf_counter() - t0
print(f"pairs per split: {counts}")
with pd.option_context("display.max_rows", None, "display.width", 120):
    print(table.to_string(index=False))
print(json.dumps(json.loads((out / "timing.json").read_text()), indent=1))
print(f"wall {wall:.1f} s")
