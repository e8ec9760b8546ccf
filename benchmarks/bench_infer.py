"""Inference throughput on a CPU: batched generation with the model's cache and batched VEP
scoring (dnalm.generation.sampling, dnalm.evaluation.vep) against the one-sequence-at-a-time
paths they replaced, kept here as the reference.

Usage:  python benchmarks/bench_infer.py [--repeats 3] [--threads 1] [--arch opt]
        [--n-seqs 64] [--length 200] [--n-snvs 1000] [--window 128]

Models: the ``tiny`` preset of `--arch` (a causal architecture), random-initialised here
with the nucleotide tokenizer, context 256 (a random model's scores and samples cost what a
trained one's do).

* generate: `--n-seqs` samples of `--length` nt after the prefix ATG (temperature 1, top-k
  4; [EOS] disabled so every sample runs for `--length` tokens). Reference: the former loop, one
  sample after the other, the whole prefix through the model for every new token, one host
  sync per token. New: :func:`dnalm.generation.sampling.generate` (batched, cached).
* vep: `--n-snvs` SNVs at random positions of a random 20 kb contig, `--window`-nt windows.
  Reference: the former scoring, one window per forward pass (REF then ALT of each SNV).
  New: :func:`dnalm.evaluation.vep.score_variants` (many windows per forward pass). The
  scores of the two paths are checked to agree within 1e-4.

Each repeat runs the reference and the new path back to back (interleaved, the order
alternating between repeats, so a burst of load from other processes lands on both); the
ratio is the reference's time over the new path's in the same repeat, and the median
(min-max) over repeats is printed. Targets: generate >= 10x, vep >= 5x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dnalm.evaluation import vep  # noqa: E402
from dnalm.evaluation.inference import LoadedModel, token_logits  # noqa: E402
from dnalm.evaluation.variants import Variant  # noqa: E402
from dnalm.generation import sampling  # noqa: E402
from dnalm.kinds.tokenizers import token_width  # noqa: E402
from dnalm.modeling import models as dm  # noqa: E402
from dnalm.tokenization import build as dtok  # noqa: E402

CONTEXT = 256


def model_folder(folder: Path, arch: str) -> Path:
    tok = dtok.build_tokenizer({"type": "nucleotide"})
    tok.save(folder)
    torch.manual_seed(0)
    spec = dm.resolve_arch("gpt", "tiny", {"context": CONTEXT}, arch)
    dm.build_model("gpt", spec, tok.vocab_size, tok.special_ids).save_pretrained(str(folder))
    (folder / "run.json").write_text(json.dumps({"tokenizer": "t", "tokenizer_hash": tok.hash}))
    return folder


# ----------------------------------------------------------------- the former paths (reference)


def old_filter_logits(logits, top_k=None):
    if top_k:
        kth = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return logits


@torch.no_grad()
def old_generate(lm, prefix, n, max_new_tokens, temperature, top_k, seed):
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for _ in range(n):
        ids = sampling.encode_prefix(lm, prefix)
        for _ in range(max_new_tokens):
            logits = token_logits(lm, ids[-lm.context :])[-1] / temperature
            probs = torch.softmax(old_filter_logits(logits, top_k), -1).cpu()
            token = int(torch.multinomial(probs, 1, generator=gen))
            if token == lm.eos_id:
                break
            ids.append(token)
        out.append(lm.decode(ids))
    return out


@torch.no_grad()
def old_score_ids(lm, ids):
    out = np.full(len(ids), np.nan)
    ctx, stride = lm.context, max(1, lm.context // 2)
    done, start = 1, 0
    while done < len(ids):
        window = ids[start : start + ctx]
        logp = torch.log_softmax(token_logits(lm, window), -1)
        for t in range(max(done, start + 1), start + len(window)):
            out[t] = float(logp[t - start - 1, ids[t]])
        done = start + len(window)
        start += stride
    return out


def old_vep(lm, contig, variants, window):
    scores = []
    for v in variants:
        pos0 = v.pos - 1
        start, end = vep.window_bounds(len(contig), pos0, window, token_width(lm.spec))
        ref = contig[start:end]
        alt = ref[: pos0 - start] + v.alt + ref[pos0 - start + 1 :]
        eos = end == len(contig)
        r, a = lm.encode(ref, eos=eos), lm.encode(alt, eos=eos)
        scores.append(float(np.nansum(old_score_ids(lm, a)) - np.nansum(old_score_ids(lm, r))))
    return scores


# ----------------------------------------------------------------------------- timing


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--arch", default="opt")
    ap.add_argument("--n-seqs", type=int, default=64)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--n-snvs", type=int, default=1000)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--only", choices=["generate", "vep"], default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        lm = LoadedModel.from_folder(model_folder(Path(tmp), args.arch))
    lm.eos_id = None  # every sample runs to its full length on both paths
    rng = np.random.default_rng(0)
    contig = "".join(rng.choice(list("ACGT"), 20_000))
    half = args.window
    positions = rng.choice(np.arange(half + 1, len(contig) - half), args.n_snvs, replace=False)
    variants = [
        Variant(
            "c1", int(p), f"v{i}", contig[p - 1], "ACGT"[("ACGT".index(contig[p - 1]) + 1) % 4], i
        )
        for i, p in enumerate(positions)
    ]

    def gen_old():
        return old_generate(lm, "ATG", args.n_seqs, args.length, 1.0, 4, 0)

    def gen_new():
        return sampling.generate(lm, "ATG", args.n_seqs, args.length, 1.0, 4, 0)

    def vep_old():
        return old_vep(lm, contig, variants, args.window)

    def vep_new():
        return [s for s, _, _ in vep.score_variants(lm, {"c1": contig}, variants, args.window)]

    benches = {"generate": (gen_old, gen_new), "vep": (vep_old, vep_new)}
    if args.only:
        benches = {args.only: benches[args.only]}
    results = {name: {"old": [], "new": [], "ratio": []} for name in benches}
    for r in range(args.repeats):
        for name, (old, new) in benches.items():
            order = [("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]
            got = {}
            for side, fn in order:
                t, got[side] = timed(fn)
                results[name][side].append(t)
            if name == "vep":
                diff = np.abs(np.array(got["old"]) - np.array(got["new"])).max()
                assert diff < 1e-4, f"vep scores differ by {diff}"
            else:
                assert len(got["new"]) == args.n_seqs
                assert all(s.startswith("ATG") and len(s) <= 3 + args.length for s in got["new"])
            res = results[name]
            res["ratio"].append(res["old"][-1] / res["new"][-1])
            print(
                f"repeat {r + 1} {name}: reference {res['old'][-1]:.2f}s, "
                f"new {res['new'][-1]:.2f}s, ratio {res['ratio'][-1]:.1f}x",
                flush=True,
            )
    print(
        f"\n{args.arch} tiny, context {CONTEXT}, {args.threads} thread(s), "
        f"{args.repeats} interleaved repeats (median, min-max):"
    )
    what = {
        "generate": f"{args.n_seqs} sequences of {args.length} nt",
        "vep": f"{args.n_snvs} SNVs, {args.window}-nt windows",
    }
    for name, res in results.items():
        print(
            f"  {name} ({what[name]}): reference {statistics.median(res['old']):.2f}s, "
            f"new {statistics.median(res['new']):.2f}s, ratio "
            f"{statistics.median(res['ratio']):.1f}x ({min(res['ratio']):.1f}-"
            f"{max(res['ratio']):.1f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
