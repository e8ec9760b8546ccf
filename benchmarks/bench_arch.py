"""Training throughput of each architecture of dnalm.modeling.models against a plain PyTorch
decoder of the same shape, with and without packed windows, measured in one process.

Every architecture is built through ``dnalm.modeling.models`` (``resolve_arch`` +
``build_model``) at one shape (``--n-layer``, ``--n-head``, ``--d-model``, d_ff = 4 x
d_model), so the parameter counts are close but not equal (BERT has biases and an MLM head
transform, OPT two extra position rows): the table prints each model's count. Adding an
architecture is one line of ``ARCHS``.

The reference is written here: a nanoGPT-style decoder (learned positions, pre-LayerNorm
blocks, GELU MLP, no linear biases, tied input/output embeddings) whose attention is
``F.scaled_dot_product_attention``: ``is_causal=True`` for plain windows, and for packed
windows the same dense block mask our models use
(:func:`dnalm.modeling.models.packed_attention_mask`), or on CUDA a FlexAttention block mask
(``--attn flex``).

One training step, the same on every side: forward on (B, T) tokens with their position ids
(our models through :func:`dnalm.modeling.models.forward_logits`, exactly as pretraining
calls them: it always builds the packed mask from the position ids), cross-entropy on every
position against fixed random targets, backward, AdamW. Windows are ``plain`` (one
sequence, positions 0..T-1) or ``packed`` (several sequences of random lengths whose
positions restart at 0). A repeat runs every (model, windows) pair for ``--steps`` timed
steps after ``--warmup`` untimed ones, in an order rotated from repeat to repeat
(interleaved: a burst of load from other processes lands on every side); the ratio
ours/reference tokens/s is taken per repeat against the reference of the same windows and
repeat, and the median (min-max) over repeats is printed.

On CUDA (``--device cuda --dtype bf16``: bf16 autocast) the table adds the model FLOPs
utilisation: ``training_flops_per_token`` (6 N_non-embedding + 12 n_layer T d_model) x
tokens/s / (``--peak-tflops`` x 1e12), the same formula for every side, packed windows
included (the attention term counts the whole window, as dense attention computes it).
Flex attention trains only on CUDA in torch 2.13 (no CPU backward), so ``--attn flex`` is
refused on CPU. An architecture that refuses a setting (ModernBERT refuses flex; Mamba on
CUDA without its kernels refuses a shape whose sequential path would not fit) is skipped
with a printed note, and the others are timed.

    python benchmarks/bench_arch.py                               # CPU, small shape
    python benchmarks/bench_arch.py --archs opt,bert --threads 2 --repeats 5
    python benchmarks/bench_arch.py --device cuda --dtype bf16 --attn dense,flex \\
        --n-layer 12 --n-head 12 --d-model 768 --batch 16 --block 1024 --peak-tflops 989
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "workflow" / "scripts"), str(REPO)]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from dnalm.core.errors import DnalmError  # noqa: E402
from dnalm.modeling import models as dmodels  # noqa: E402
from dnalm.modeling.flops import SSM_ARCHS, training_flops_per_token  # noqa: E402

#: name -> (objective, arch, the shape keys it takes). One line per architecture. Equal
#: parameter count at one width: SwiGLU/GeGLU MLPs default to d_ff = 8/3 x width (three
#: matrices, the same count as a 4 x width GELU MLP); a Mamba layer holds about half a
#: transformer block's weights, so it gets twice the layers (as in the Mamba paper).
ATTENTION_KEYS = ("n_layer", "n_head", "d_model", "context", "dropout")
ARCHS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "opt": ("gpt", "opt", {"d_ff": 4}),
    "gpt_neox": ("gpt", "gpt_neox", {"d_ff": 4}),
    "llama": ("gpt", "llama", {"drop": ("dropout",)}),
    "mamba": ("gpt", "mamba", {"layers": 2, "drop": ("n_head", "dropout")}),
    "bert": ("mlm", "bert", {"d_ff": 4}),
    "modernbert": ("mlm", "modernbert", {"d_ff_frac": 8 / 3}),
    "esm": ("mlm", "esm", {"d_ff": 4}),
}
VOCAB = 16  # a nucleotide-sized vocabulary (ACGTN + specials)
SPECIAL = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "sep_id": None, "mask_id": 4}
H100_BF16_DENSE_TFLOPS = 989.0


# --------------------------------------------------------------------------- reference


class Block(nn.Module):
    def __init__(self, d: int, n_head: int, d_ff: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d, bias=False)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d_ff, bias=False)
        self.out = nn.Linear(d_ff, d, bias=False)

    def forward(self, x: torch.Tensor, attend) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = attend(q, k, v)  # (B, H, T, Dh)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class RefDecoder(nn.Module):
    """nanoGPT-style decoder: learned positions, pre-LN, GELU MLP, tied embeddings."""

    def __init__(self, vocab: int, context: int, n_layer: int, n_head: int, d: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, n_head, 4 * d) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, attend) -> torch.Tensor:
        x = self.wte(tokens) + self.wpe(positions)  # (B, T, C)
        for block in self.blocks:
            x = block(x, attend)
        return self.head(self.ln_f(x))  # (B, T, V)


def reference_attention(positions: torch.Tensor, packed: bool, attn: str):
    """The attention function of the reference for one batch (mask built once per step,
    as forward_logits does for our models)."""
    if not packed:
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if attn == "flex":
        from torch.nn.attention.flex_attention import flex_attention

        from dnalm.modeling.attention import flex_block_mask

        block = flex_block_mask(dmodels.segment_ids(positions), causal=True)
        compiled = _compiled_flex(flex_attention)
        return lambda q, k, v: compiled(q, k, v, block_mask=block)
    mask = dmodels.packed_attention_mask(positions, True, "sdpa", torch.float32)  # (B,1,T,T)
    return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


_FLEX: dict[str, Any] = {}


def _compiled_flex(fn):
    if "fn" not in _FLEX:
        _FLEX["fn"] = torch.compile(fn)
    return _FLEX["fn"]


# --------------------------------------------------------------------------- sides


def count(model: nn.Module) -> dict[str, int]:
    return dmodels.count_parameters(model)


def build_side(name: str, args, attn: str) -> dict[str, Any]:
    """One model to time: {'name', 'model', 'step' (callable), 'n', 'arch'}."""
    torch.manual_seed(0)
    shape = {"n_layer": args.n_layer, "n_head": args.n_head, "d_model": args.d_model,
             "d_ff": 4 * args.d_model, "context": args.block, "dropout": 0.0}  # fmt: skip
    if name == "ref":
        model = RefDecoder(VOCAB, args.block, args.n_layer, args.n_head, args.d_model)
        arch = shape
    else:
        objective, arch_name, how = ARCHS[name]
        over = {k: shape[k] for k in ATTENTION_KEYS if k not in how.get("drop", ())}
        over["n_layer"] = args.n_layer * how.get("layers", 1)
        if "d_ff" in how:
            over["d_ff"] = how["d_ff"] * args.d_model
        if "d_ff_frac" in how:
            over["d_ff"] = round(how["d_ff_frac"] * args.d_model)
        if arch_name not in SSM_ARCHS:
            over["attn_implementation"] = "flex_attention" if attn == "flex" else "sdpa"
        arch = dmodels.resolve_arch(objective, "tiny", over, arch_name)
        model = dmodels.build_model(objective, arch, VOCAB, SPECIAL)
    model.to(args.torch_device).train()
    # Mamba without its CUDA kernels: a warning with the memory estimate, or refused
    note = dmodels.check_cuda_path(model, args.torch_device, args.batch, args.block)
    if note:
        print(f"note: {name}: {note}", file=sys.stderr)
    return {"name": name, "model": model, "arch": arch, "n": count(model)}


def build_sides(archs: list[str], attns: list[str], args) -> tuple[dict, dict]:
    """The reference and every (architecture, attention) model: ({(name, attn): side},
    {(name, attn): why}) - a combination its architecture refuses (ModernBERT and flex) is
    skipped with a printed note instead of ending the run before anything is timed."""
    sides, skipped = {}, {}
    for name in ["ref", *archs]:
        for attn in attns:
            try:
                sides[(name, attn)] = build_side(name, args, attn)
            except DnalmError as err:
                if name == "ref":
                    raise
                skipped[(name, attn)] = str(err)
                print(f"note: {name} with {attn} attention skipped: {err}", file=sys.stderr)
    return sides, skipped


def make_batches(args, packed: bool, n: int) -> list[tuple[torch.Tensor, ...]]:
    """`n` (tokens, positions, targets) batches of (B, T); packed windows hold sequences of
    random lengths (16..T/2 tokens) whose positions restart at 0."""
    g = torch.Generator().manual_seed(1)
    out = []
    for _ in range(n):
        tokens = torch.randint(5, VOCAB, (args.batch, args.block), generator=g)
        targets = torch.randint(5, VOCAB, (args.batch, args.block), generator=g)
        if packed:
            rows = []
            for _ in range(args.batch):
                pos: list[int] = []
                while len(pos) < args.block:
                    length = int(torch.randint(16, max(17, args.block // 2), (1,), generator=g))
                    pos += range(length)
                rows.append(pos[: args.block])
            positions = torch.tensor(rows)
        else:
            positions = torch.arange(args.block).expand(args.batch, -1).contiguous()
        out.append(tuple(t.to(args.torch_device) for t in (tokens, positions, targets)))
    return out


def train_steps(side: dict[str, Any], batches, packed: bool, attn: str, args) -> float:
    """Run one training step per batch; returns the wall seconds (device synchronised)."""
    model = side["model"]
    opt = side.setdefault("opt", torch.optim.AdamW(model.parameters(), lr=1e-4))
    amp = args.dtype == "bf16"
    sync = torch.cuda.synchronize if args.torch_device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for tokens, positions, targets in batches:
        with torch.autocast(args.torch_device.type, dtype=torch.bfloat16, enabled=amp):
            if side["name"] == "ref":
                logits = model(tokens, positions, reference_attention(positions, packed, attn))
            else:
                logits = dmodels.forward_logits(model, tokens, positions)
        loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), targets.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- main


def run(args) -> list[dict[str, Any]]:
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in archs if a not in ARCHS]
    if unknown:
        sys.exit(f"--archs: unknown {unknown}; known: {sorted(ARCHS)}")
    attns = [a.strip() for a in args.attn.split(",")]
    if "flex" in attns and args.torch_device.type != "cuda":
        sys.exit("--attn flex: FlexAttention has no backward on CPU in torch 2.13; use CUDA")
    cases = [("plain", "dense")] + [("packed", a) for a in attns]
    needed = sorted({"dense", *attns})  # plain windows always use the dense (sdpa) models
    sides, args.skipped = build_sides(archs, needed, args)
    data = {(w, a): make_batches(args, w == "packed", args.warmup + args.steps) for w, a in cases}
    # a state-space model cannot keep packed sequences apart (it refuses them): plain only
    keys = [
        (name, w, a)
        for w, a in cases
        for name in ["ref", *archs]
        if (w == "plain" or name == "ref" or ARCHS[name][1] not in SSM_ARCHS) and (name, a) in sides
    ]
    for name, w, a in keys:  # warm-up: threads, allocator, kernel selection, compiles
        train_steps(sides[(name, a)], data[(w, a)][: args.warmup], w == "packed", a, args)
    times: dict[tuple, list[float]] = {k: [] for k in keys}
    for rep in range(args.repeats):
        shift = rep % len(keys)
        for name, w, a in keys[shift:] + keys[:shift]:
            batches = data[(w, a)][args.warmup :]
            times[(name, w, a)].append(
                train_steps(sides[(name, a)], batches, w == "packed", a, args)
            )
        print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    n_tokens = args.steps * args.batch * args.block
    rows = []
    for name, w, a in keys:
        side = sides[(name, a)]
        tok_s = [n_tokens / t for t in times[(name, w, a)]]
        ref = [n_tokens / t for t in times[("ref", w, a)]]
        ratios = [x / r for x, r in zip(tok_s, ref, strict=True)]
        row = {
            "model": name,
            "windows": w if w == "plain" else f"packed/{a}",
            "params": side["n"]["total"],
            "non_embedding": side["n"]["non_embedding"],
            "tok_s": statistics.median(tok_s),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
        if args.torch_device.type == "cuda":
            fpt = training_flops_per_token(side["arch"], row["non_embedding"], args.block)
            row["mfu"] = fpt * row["tok_s"] / (args.peak_tflops * 1e12)
        rows.append(row)
    return rows


def print_table(rows: list[dict[str, Any]], args) -> None:
    cols = [
        ("model", lambda r: r["model"]),
        ("windows", lambda r: r["windows"]),
        ("params", lambda r: f"{r['params'] / 1e6:.3f}M"),
        ("non-emb", lambda r: f"{r['non_embedding'] / 1e6:.3f}M"),
        ("tok/s", lambda r: f"{r['tok_s']:,.0f}"),
        ("ratio vs ref", lambda r: f"{r['ratio']:.3f}"),
        ("min-max", lambda r: f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f}"),
    ]
    if any("mfu" in r for r in rows):
        cols.append((f"MFU (peak {args.peak_tflops:g} TF/s)", lambda r: f"{r['mfu']:.1%}"))
    cells = [[c for c, _ in cols]] + [[f(r) for _, f in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for i, row in enumerate(cells):
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    threads = torch.get_num_threads()
    print(
        f"\n{args.torch_device.type} {args.dtype}, {threads} thread(s); shape {args.n_layer} "
        f"layers x {args.n_head} heads x {args.d_model} wide, batch {args.batch} x "
        f"{args.block} tokens, {args.steps} timed steps after {args.warmup} warm-up, "
        f"{args.repeats} interleaved repeats; ratio = tokens/s over the reference's on the "
        "same windows in the same repeat (median, min-max)."
    )
    for (name, attn), why in getattr(args, "skipped", {}).items():
        print(f"skipped: {name} with {attn} attention ({why})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", default=",".join(ARCHS), help=f"comma-separated, of {sorted(ARCHS)}")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--block", type=int, default=256, help="window length in tokens")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per side and repeat")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--attn", default="dense", help="packed-window attention: dense[,flex]")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 1 on CPU)"
    )
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_BF16_DENSE_TFLOPS,
        help="peak dense TFLOP/s of the GPU for the MFU column (default 989: H100/H200 bf16)",
    )
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available")
    if args.dtype == "bf16" and args.device != "cuda":
        sys.exit("--dtype bf16 is the CUDA path; on CPU use fp32")
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    if args.d_model % args.n_head:
        sys.exit(f"--d-model {args.d_model} is not divisible by --n-head {args.n_head}")
    args.torch_device = torch.device(args.device)
    rows = run(args)
    print_table(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    bad = [r for r in rows if not math.isfinite(r["tok_s"])]
    if bad:
        sys.exit(f"non-finite throughput: {bad}")


if __name__ == "__main__":
    main()
