"""Training throughput of dnalm's training step against a plain PyTorch loop.

Both run the same model (same initial weights, same attention mask) on the same batches in
the same process; blocks of steps alternate between the two and the median block throughput
is compared (target: ours / plain >= 0.95). "Ours" is Trainer.micro_batches + train_step:
reading the memmapped corpus, labels, global-token loss normalisation, the finiteness check,
clipping, AdamW and the LR schedule. "Plain" gets ready-made tensors and does forward, mean
cross-entropy, backward, clip and AdamW only. Also prints peak memory (CPU max RSS; CUDA max
allocated) and, on CUDA, the model FLOPs utilisation of a >= 50 M parameter preset in bf16.

    python benchmarks/bench_train.py [--preset tiny] [--steps 20] [--blocks 5]
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "workflow" / "scripts"), str(REPO)]

from dnalm.lm_data import IGNORE_INDEX  # noqa: E402
from dnalm.models import forward_logits, training_flops_per_token  # noqa: E402
from dnalm.train import Trainer  # noqa: E402
from tests.lm_corpus import make_corpus  # noqa: E402

# dense bf16 peak FLOP/s by device name fragment (vendor data sheets, SXM parts)
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(
    preset: str, objective: str, steps: int, blocks: int, micro: int, block_size: int, device: str
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = make_corpus(
            Path(tmp) / "c",
            block_size=block_size,
            n_seqs=(max(400, 4 * micro * block_size // 50), 40, 40),
        )
        tr = Trainer(
            corpus,
            Path(tmp) / "out",
            objective,
            preset,
            {"context": block_size},
            {"micro_batch_size": micro, "max_steps": 10**6, "warmup_steps": 10, "device": device},
            resume=False,
        )
        dev = tr.device
        ref_model = copy.deepcopy(tr.model).train()
        ref_opt = torch.optim.AdamW(ref_model.parameters(), lr=1e-4, fused=dev.type == "cuda")
        amp = tr.amp_dtype
        batches = [tr.micro_batches(s)[0] for s in range(steps)]
        batches = [tuple(t.to(dev) for t in b) for b in batches]
        causal = objective == "gpt"

        def plain_step(x, pos, y):
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = forward_logits(ref_model, x, pos)
            if causal:
                logits, y = logits[:, :-1], y[:, 1:]
            loss = F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                y.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(ref_model.parameters(), 1.0)
            ref_opt.step()
            ref_opt.zero_grad(set_to_none=True)
            return loss.item()

        n_tok = sum(int((b[0] != tr.pad_id).sum()) for b in batches)
        ours, plain = [], []
        tr.model.train()
        for _ in range(2):  # warm-up both
            tr.train_step(tr.micro_batches(tr.step))
            plain_step(*batches[0])
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for _ in range(blocks):
            _sync(dev)
            t0 = time.perf_counter()
            tokens = 0
            for _ in range(steps):
                _, _, n_in = tr.train_step(tr.micro_batches(tr.step))
                tokens += n_in
            _sync(dev)
            ours.append(tokens / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for b in batches:
                plain_step(*b)
            _sync(dev)
            plain.append(n_tok / (time.perf_counter() - t0))
        res = {
            "preset": f"{objective}/{preset}",
            "params": tr.params["total"],
            "device": str(dev),
            "precision": tr.precision,
            "batch": f"{micro} x {block_size}",
            "ours_tok_s": statistics.median(ours),
            "plain_tok_s": statistics.median(plain),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        res["ratio"] = res["ours_tok_s"] / res["plain_tok_s"]
        if dev.type == "cuda":
            res["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
            fpt = training_flops_per_token(tr.arch, tr.params["non_embedding"], block_size)
            achieved = fpt * res["ours_tok_s"]
            res["achieved_tflops"] = achieved / 1e12
            name = torch.cuda.get_device_name(dev)
            peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
            res["mfu"] = achieved / peak if peak and amp is not None else None
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--objective", default="gpt", choices=("gpt", "mlm"))
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block")
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--micro", type=int, default=16)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    runs = [
        bench(
            args.preset,
            args.objective,
            args.steps,
            args.blocks,
            args.micro,
            args.block_size,
            args.device,
        )
    ]
    if torch.cuda.is_available() and args.device != "cpu":
        runs.append(bench("base", "gpt", 10, 3, 16, 1024, "cuda"))  # ~85 M params, bf16
    for r in runs:
        print(
            f"{r['preset']} ({r['params']:,} params, {r['device']}, {r['precision']}, "
            f"batch {r['batch']}): ours {r['ours_tok_s']:,.0f} tok/s, plain "
            f"{r['plain_tok_s']:,.0f} tok/s, ratio {r['ratio']:.3f} (target >= 0.95); "
            f"peak RSS {r['peak_rss_mib']:,.0f} MiB",
            end="",
        )
        if "cuda_max_allocated_mib" in r:
            mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "n/a (unknown peak)"
            print(
                f"; CUDA max allocated {r['cuda_max_allocated_mib']:,.0f} MiB; "
                f"{r['achieved_tflops']:.1f} TFLOP/s, MFU {mfu}",
                end="",
            )
        print()


if __name__ == "__main__":
    main()
