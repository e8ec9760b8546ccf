"""Training throughput of dnalm's pretraining loop (Trainer.fit) against a plain PyTorch loop
doing the same model work, interleaved so that machine load hits both alike.

What each side does, from the same corpus folder and the same initial weights:

* ours: ``Trainer.fit()`` exactly as a run does it: batches gathered from the
  memory-mapped corpus (BatchSchedule, causal labels or MLM masks) by the prefetch thread
  one step ahead, the global-token loss normalisation, the loss and its finiteness kept on
  the device and read once per curves row, clipping, AdamW, the LR schedule, validation at
  step 0, every `eval_interval` steps and at the end, a checkpoint after each validation,
  a curves.csv row every `log_interval` steps, the progress bar (disabled: the worker's
  stderr is not a terminal, as under Snakemake or SLURM);
* reference: a nanoGPT-style plain loop over the same steps that does the same model
  work and nothing else: the same windows of each step gathered per step from the same
  arrays (same labels, same masks), the same micro-batches and accumulation, forward with
  the packed attention mask, summed cross-entropy over the step's targets, backward,
  clipping, AdamW with the same two parameter groups, the same warm-up/cosine schedule
  and dtype, and a plain no-grad validation pass over the same windows at the same steps;
  it reads the loss only at log steps and writes nothing.

The difference is then only our machinery (logging, curves, evaluation bookkeeping,
checkpoint writes, per-step checks). Both sides run in one process, taking turns every
`--slice` steps (ABAB...; only the side holding the turn runs, each is charged its own
running time), so a burst of load from other processes lands on both. Before each turn of
the reference, ours waits until its prefetch thread has filled its queue (the wait is
charged to ours), so that thread never runs during the reference's time. A repeat is one
full run of each side from fresh weights; the ratio ours/reference (tokens/s) is taken
per repeat and the median and min-max over repeats are reported (target >= 1.0).
tokens/s counts the non-pad input tokens of the training steps over the whole loop's
time, validation included on both sides. Peak RSS (``resource.getrusage``) comes from a
short run (2 log intervals) of each side alone in a fresh process; on CUDA also the peak
allocated memory and the model FLOPs utilisation of the training steps (FLOPs from
dnalm.modeling.flops.training_flops_per_token, time = loop time minus validation, over
`--peak-tflops`, default 989: the dense bf16 peak of an H100/H200 SXM).

    python benchmarks/bench_train.py                       # CPU: gpt/tiny and gpt/seed
    python benchmarks/bench_train.py --threads 2           # CPU, on a quiet machine
    python benchmarks/bench_train.py --presets mlm/tiny --repeats 5
    python benchmarks/bench_train.py --device cuda         # + gpt/base (85 M) in bf16
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "workflow" / "scripts"), str(REPO)]

#: Per-preset defaults by device kind: micro-batch, optimizer steps per run, window length.
DEFAULTS = {
    "cpu": {
        "tiny": {"micro": 16, "steps": 200, "block": 128},
        "seed": {"micro": 8, "steps": 100, "block": 128},
    },
    "cuda": {
        "tiny": {"micro": 16, "steps": 300, "block": 512},
        "seed": {"micro": 32, "steps": 300, "block": 300},
        "base": {"micro": 16, "steps": 200, "block": 1024},
    },
}
FALLBACK = {"cpu": {"micro": 8, "steps": 100, "block": 128}, "cuda": DEFAULTS["cuda"]["base"]}
H100_BF16_DENSE_TFLOPS = 989.0  # H100/H200 SXM data sheets: 989 TFLOP/s dense bf16
SIDES = ("ours", "ref")


# --------------------------------------------------------------------------- worker side


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, bucket: dict[str, float], key: str, device, sync: bool):
    """Wrap `fn` so its wall time adds to bucket[key] (synchronising CUDA at both ends
    when `sync`, so queued kernels are charged to the right piece)."""

    def wrapper(*args, **kwargs):
        if sync:
            _sync(device)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if sync:
                _sync(device)
            bucket[key] += time.perf_counter() - t0

    return wrapper


class RefRunner:
    """Drives the reference loop (a generator that yields after each optimizer step) in
    turns of `n` steps from the caller's thread, charging it the time of its turns (one
    thread for both sides: a second Python thread would get its own OpenMP pool, whose
    spinning workers would slow the other side)."""

    def __init__(self, gen, device):
        self.gen, self.device = gen, device
        self.active, self.result = 0.0, None

    def turn(self, n: int | None) -> None:
        """Run the next `n` steps (None: to the end)."""
        if self.result is not None:
            return
        _sync(self.device)
        t0 = time.perf_counter()
        try:
            for _ in itertools.count() if n is None else range(n):
                next(self.gen)
        except StopIteration as stop:
            self.result = stop.value
        _sync(self.device)
        self.active += time.perf_counter() - t0


def _warm_up(tr, model) -> None:
    """Two forward/backward passes on the first micro-batch, gradients dropped, weights
    untouched: the same for both sides (thread pools, allocator, kernel selection)."""
    import torch
    import torch.nn.functional as F

    from dnalm.modeling.models import forward_logits
    from dnalm.training.lm_data import IGNORE_INDEX

    x, pos, y, _ = tr.micro_batches(0)[0]  # (B, T) each; no loss weights here
    x, pos, y = x.to(tr.device), pos.to(tr.device), y.to(tr.device)
    for _ in range(2):
        with torch.autocast(
            tr.device.type, dtype=tr.amp_dtype or torch.float32, enabled=tr.amp_dtype is not None
        ):
            logits = forward_logits(model, x, pos)  # (B, T, V)
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=IGNORE_INDEX
        )
        loss.backward()
    model.zero_grad(set_to_none=True)
    _sync(tr.device)


def _settle(prefetchers: list) -> None:
    """Wait until the trainer's prefetch thread has filled its queue or ended."""
    for p in prefetchers[-1:]:
        while p._thread.is_alive() and not p._queue.full():
            time.sleep(0.0002)


def run_ours(tr, on_step: Callable[[int], None]) -> dict[str, Any]:
    """Trainer.fit() with its pieces timed (the wrappers cost microseconds a call);
    `on_step(step)` is called after every optimizer step."""
    parts = {"data_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0, "curves_s": 0.0}
    dev = tr.device
    tr.micro_batches = _timed(tr.micro_batches, parts, "data_s", dev, sync=False)
    tr.validate = _timed(tr.validate, parts, "eval_s", dev, sync=True)
    tr.save = _timed(tr.save, parts, "checkpoint_s", dev, sync=True)
    tr._record = _timed(tr._record, parts, "curves_s", dev, sync=False)
    train_step = tr.train_step
    made: list = []

    def stepping(batches):
        out = train_step(batches)
        _settle(made)  # its thread is idle during the other side's turn
        on_step(tr.step)
        return out

    tr.train_step = stepping
    from dnalm.training import pretrain as pretrain_mod

    real = pretrain_mod.Prefetcher

    class Recorded(real):  # the trainer's prefetcher, which _settle waits on
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    pretrain_mod.Prefetcher = Recorded
    try:
        tr.fit()
    finally:
        pretrain_mod.Prefetcher = real
    n_evals = sum(1 for r in tr.curves if r["val_loss"] is not None)
    return {"tokens": tr.tokens_seen, "steps": tr.step, "evals": n_evals, **parts}


def run_reference(tr, model) -> Generator[int, None, dict[str, Any]]:
    """A plain PyTorch loop doing the model work of Trainer.fit() (see the module doc) on
    `model` (a copy of the trainer's initial model); a generator that yields the step
    after each optimizer step and returns its tallies.

    It borrows from `tr` only what defines the work: the corpus arrays, the batch schedule
    (its own copy), the label and mask functions, the parameter groups and the schedule's
    multiplier."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from dnalm.modeling.models import forward_logits
    from dnalm.training.lm_data import IGNORE_INDEX, causal_labels
    from dnalm.training.lm_eval import EVAL_SALT
    from dnalm.training.pretrain import WarmupCosine, param_groups

    cfg, dev, amp = tr.cfg, tr.device, tr.amp_dtype
    schedule = copy.copy(tr.schedule)
    causal = tr.objective == "gpt"
    opt = torch.optim.AdamW(
        param_groups(model, cfg["weight_decay"]),
        lr=cfg["lr"],
        betas=(cfg["beta1"], cfg["beta2"]),
        eps=cfg["eps"],
        fused=dev.type == "cuda",
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, WarmupCosine(cfg["warmup_steps"], cfg["max_steps"], cfg["min_lr_ratio"])
    )

    def targets(tok: np.ndarray, pos: np.ndarray, windows: np.ndarray, salt: int):
        tok = tok.astype(np.int64)
        pos_t = torch.from_numpy(pos.astype(np.int64))  # (B, T)
        if causal:
            x = torch.from_numpy(tok)
            return x, pos_t, causal_labels(x, pos_t, tr.pad_id)
        xs, ys = tr.masker(tok, windows, salt)
        return torch.from_numpy(xs), pos_t, torch.from_numpy(ys)

    def batches(step: int):
        epoch = schedule.epoch_of(step)
        for w in schedule.windows(step)[:, 0]:  # (accum, micro)
            idx = np.sort(w)
            yield targets(tr.train_tok[idx], tr.train_pos[idx], idx, epoch)

    bs = cfg["eval_batch_size"] or cfg["micro_batch_size"]
    n_eval = tr.val_tok.shape[0]
    if cfg["eval_batches"] is not None:
        n_eval = min(n_eval, cfg["eval_batches"] * bs)

    @torch.no_grad()
    def evaluate() -> float:
        model.eval()
        total = torch.zeros((), device=dev)
        n = 0
        for start in range(0, n_eval, bs):
            rows = np.arange(start, min(start + bs, n_eval))
            x, pos, y = (
                t.to(dev) for t in targets(tr.val_tok[rows], tr.val_pos[rows], rows, EVAL_SALT)
            )
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = forward_logits(model, x, pos)  # (B, T, V)
            if causal:
                logits, y = logits[:, :-1], y[:, 1:]
            total += F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                y.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            n += int((y != IGNORE_INDEX).sum())
        model.train()
        return total.item() / max(n, 1)

    parts = {"eval_s": 0.0}
    timed_eval = _timed(evaluate, parts, "eval_s", dev, sync=True)
    model.train()
    timed_eval()
    tokens, n_evals, logged = 0, 1, []
    for step in range(cfg["max_steps"]):
        mbs = list(batches(step))
        n_targets = sum(int((y != IGNORE_INDEX).sum()) for _, _, y in mbs)
        tokens += sum(
            int((x != tr.pad_id).sum()) if tr.pad_id is not None else x.numel() for x, _, _ in mbs
        )
        step_loss = torch.zeros((), device=dev)
        for x, pos, y in mbs:
            x, pos, y = x.to(dev), pos.to(dev), y.to(dev)
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = forward_logits(model, x, pos)  # (B, T, V)
            if causal:
                logits, y = logits[:, :-1], y[:, 1:]
            loss = F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                y.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            ) / max(n_targets, 1)
            loss.backward()
            step_loss += loss.detach()
        if cfg["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        done = step + 1
        if done % cfg["log_interval"] == 0:
            logged.append(step_loss.item())
        if done % cfg["eval_interval"] == 0 or done == cfg["max_steps"]:
            timed_eval()
            n_evals += 1
        yield done
    return {"tokens": tokens, "steps": cfg["max_steps"], "evals": n_evals, **parts}


def _new_trainer(spec: dict[str, Any], tag: str):
    from dnalm.training.pretrain import Trainer
    from dnalm.training.run import PretrainRun

    return Trainer(
        PretrainRun(
            spec["corpus"],
            Path(spec["out"]) / tag,
            spec["objective"],
            spec["preset"],
            {"context": spec["block"]},
            spec["train"],
            resume=False,
        )
    )


def _describe(tr) -> dict[str, Any]:
    import torch

    return {
        "params": tr.params["total"],
        "non_embedding": tr.params["non_embedding"],
        "arch": tr.arch,
        "device": str(tr.device),
        "device_name": torch.cuda.get_device_name(tr.device) if tr.device.type == "cuda" else "",
        "precision": tr.precision,
        "threads": torch.get_num_threads(),
        "global_batch": tr.schedule.global_batch,
    }


def interleaved_repeat(spec: dict[str, Any], tag: str, first: str, slice_steps: int):
    """One repeat: a fresh trainer (ours) and a copy of its initial model (reference),
    taking turns every `slice_steps` optimizer steps; `first` says who starts."""
    tr = _new_trainer(spec, tag)
    ref_model = copy.deepcopy(tr.model)
    _warm_up(tr, tr.model)
    _warm_up(tr, ref_model)
    ref = RefRunner(run_reference(tr, ref_model), tr.device)

    def on_step(step: int) -> None:
        if step % slice_steps == 0:
            ref.turn(slice_steps)

    if first == "ref":
        ref.turn(slice_steps)
    before = ref.active
    _sync(tr.device)
    t0 = time.perf_counter()
    ours = run_ours(tr, on_step)
    _sync(tr.device)
    ours["wall_s"] = time.perf_counter() - t0 - (ref.active - before)
    ref.turn(None)
    ref.result["wall_s"] = ref.active
    return {"ours": ours, "ref": ref.result}, _describe(tr)


def alone(spec: dict[str, Any], side: str) -> dict[str, Any]:
    """One side alone in this fresh process: its peak RSS (and CUDA peak allocation)."""
    import torch

    tr = _new_trainer(spec, f"alone-{side}")
    if side == "ref":
        tr.loop.optimizer = tr.loop.scheduler = None  # the trainer's own (stateless yet): unused
    _warm_up(tr, tr.model)
    setup_rss = _maxrss_mib()
    if tr.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(tr.device)
    if side == "ours":
        _sync(tr.device)
        t0 = time.perf_counter()
        res = run_ours(tr, lambda step: None)
        _sync(tr.device)
        res["wall_s"] = time.perf_counter() - t0
    else:
        ref = RefRunner(run_reference(tr, tr.model), tr.device)
        ref.turn(None)
        res = {**ref.result, "wall_s": ref.active}
    res.update(setup_rss_mib=setup_rss, peak_rss_mib=_maxrss_mib())
    if tr.device.type == "cuda":
        res["cuda_peak_mib"] = torch.cuda.max_memory_allocated(tr.device) / 2**20
    return res


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["mode"] == "alone":
        return alone(spec, spec["side"])
    out: dict[str, Any] = {"repeats": []}
    for r in range(spec["repeats"]):
        first = SIDES[r % 2]  # AB, BA, AB, ...
        res, out["describe"] = interleaved_repeat(spec, f"rep{r}", first, spec["slice"])
        out["repeats"].append(res)
        o, f = res["ours"], res["ref"]
        print(
            f"  {spec['objective']}/{spec['preset']} repeat {r + 1}/{spec['repeats']}: ours "
            f"{o['tokens'] / o['wall_s']:,.0f} tok/s ({o['wall_s']:.1f} s), reference "
            f"{f['tokens'] / f['wall_s']:,.0f} tok/s ({f['wall_s']:.1f} s)",
            flush=True,
        )
    return out


# --------------------------------------------------------------------------- driver side


def spawn(spec: dict[str, Any]) -> dict[str, Any]:
    """Run worker(spec) in a fresh Python process. Its stderr goes to a file (so the
    trainer's tqdm bar is off, as in a batch job; shown if the worker fails); its progress
    lines are echoed as they come, its last stdout line is the JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, err_path = Path(tmp) / "spec.json", Path(tmp) / "stderr.txt"
        spec_path.write_text(json.dumps(spec))
        lines = []
        with open(err_path, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", str(spec_path)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("  "):
                    print(line, end="", file=sys.stderr, flush=True)
            proc.wait()
        if proc.returncode != 0:
            sys.exit(f"benchmark worker ({spec['mode']}) failed:\n{err_path.read_text()[-4000:]}")
    return json.loads(lines[-1])


def build_corpus(folder: Path, block: int, train_windows: int, val_windows: int) -> Path:
    """The synthetic Markov corpus of the tests, with at least about the requested window
    counts (its sequences average ~57 tokens with [BOS]/[EOS])."""
    from tests.support.lm_corpus import make_corpus

    per = 55.0 / block  # windows per sequence, a slight underestimate
    n_train = math.ceil(train_windows / per)
    n_val = math.ceil(val_windows / per)
    return make_corpus(folder, block_size=block, n_seqs=(n_train, n_val, 40))


def bench_preset(name: str, args, dev_kind: str, workdir: Path) -> dict[str, Any]:
    objective, preset = name.split("/") if "/" in name else ("gpt", name)
    d = {**FALLBACK[dev_kind], **DEFAULTS[dev_kind].get(preset, {})}
    micro = args.micro or d["micro"]
    steps = args.steps or d["steps"]
    block = args.block_size or d["block"]
    gb = micro * args.grad_accum
    corpus = build_corpus(
        workdir / f"corpus-{block}-{gb}", block, max(8 * gb, 64), args.eval_batches * micro
    )
    train = {
        "seed": 0,
        "micro_batch_size": micro,
        "grad_accum": args.grad_accum,
        "max_steps": steps,
        "warmup_steps": min(100, max(1, steps // 10)),
        "eval_interval": args.eval_interval,
        "log_interval": args.log_interval,
        "eval_batches": args.eval_batches,
        "patience": None,  # never stop early: both sides run every step
        "device": args.device,
        "threads": args.threads,
        "test_eval": False,
    }
    spec = {
        "mode": "interleaved",
        "corpus": str(corpus),
        "out": str(workdir / f"out-{objective}-{preset}"),
        "objective": objective,
        "preset": preset,
        "block": block,
        "train": train,
        "repeats": args.repeats,
        "slice": args.slice,
    }
    inter = spawn(spec)
    reps, desc = inter["repeats"], inter["describe"]
    # peak memory: each side alone in a fresh process, over a shorter run that still has
    # every phase (validation and checkpoint at step 0 and at the end, optimizer state,
    # curve rows); a longer run only adds curve rows
    short = {**train, "max_steps": min(steps, 2 * args.log_interval)}
    alone_runs = {
        side: spawn({**spec, "mode": "alone", "side": side, "train": short}) for side in SIDES
    }
    for rep in reps:
        for side in SIDES:
            rep[side]["tok_s"] = rep[side]["tokens"] / rep[side]["wall_s"]
        if (
            rep["ours"]["tokens"] != rep["ref"]["tokens"]
            or rep["ours"]["evals"] != rep["ref"]["evals"]
        ):
            sys.exit(f"the two sides did different work: {rep}")
    ratios = [rep["ours"]["tok_s"] / rep["ref"]["tok_s"] for rep in reps]
    out = {
        "name": f"{objective}/{preset}",
        **desc,
        "batch": f"{micro}x{args.grad_accum}x{block}",
        "steps": steps,
        "evals": reps[0]["ours"]["evals"],
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratios": ratios,
    }
    for side in SIDES:
        for key in ("tok_s", "wall_s", "eval_s"):
            out[f"{side}_{key}"] = statistics.median(rep[side][key] for rep in reps)
        out[f"{side}_peak_rss_mib"] = alone_runs[side]["peak_rss_mib"]
        out[f"{side}_setup_rss_mib"] = alone_runs[side]["setup_rss_mib"]
        if "cuda_peak_mib" in alone_runs[side]:
            out[f"{side}_cuda_peak_mib"] = alone_runs[side]["cuda_peak_mib"]
    for key in ("data_s", "checkpoint_s", "curves_s"):
        out[f"ours_{key}"] = statistics.median(rep["ours"][key] for rep in reps)
    if desc["device"].startswith("cuda"):
        from dnalm.modeling.flops import training_flops_per_token

        # every position of the batch counted (the synthetic corpus pads only its last window)
        fpt = training_flops_per_token(desc["arch"], desc["non_embedding"], block)
        flops = fpt * steps * desc["global_batch"] * block
        peak = args.peak_tflops * 1e12
        for side in SIDES:
            mfus = [flops / (rep[side]["wall_s"] - rep[side]["eval_s"]) / peak for rep in reps]
            out[f"{side}_mfu"] = statistics.median(mfus)
    return out


def print_table(rows: list[dict[str, Any]], args) -> None:
    cols: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("model", lambda r: r["name"]),
        ("params", lambda r: f"{r['params'] / 1e6:.2f}M"),
        ("device", lambda r: f"{r['device']} {r['precision']} t{r['threads']}"),
        ("batch", lambda r: r["batch"]),
        ("steps", lambda r: f"{r['steps']} ({r['evals']} ev)"),
        ("ours tok/s", lambda r: f"{r['ours_tok_s']:,.0f}"),
        ("ref tok/s", lambda r: f"{r['ref_tok_s']:,.0f}"),
        ("ratio", lambda r: f"{r['ratio_median']:.3f}"),
        ("min-max", lambda r: f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f}"),
        ("target", lambda r: "ok" if r["ratio_median"] >= 1.0 else "MISSED"),
        (
            "peak RSS MiB ours/ref",
            lambda r: f"{r['ours_peak_rss_mib']:,.0f}/{r['ref_peak_rss_mib']:,.0f}",
        ),
    ]
    if any("ours_cuda_peak_mib" in r for r in rows):
        cols += [
            (
                "CUDA peak MiB ours/ref",
                lambda r: f"{r['ours_cuda_peak_mib']:,.0f}/{r['ref_cuda_peak_mib']:,.0f}",
            ),
            (
                f"MFU ours/ref (peak {args.peak_tflops:g} TF/s)",
                lambda r: (
                    f"{r['ours_mfu']:.1%}/{r['ref_mfu']:.1%}"
                    + ("" if r["precision"] == "bf16" else " (not bf16)")
                ),
            ),
        ]
    cells = [[c[0] for c in cols]] + [[f(r) for _, f in cols] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for i, row in enumerate(cells):
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(
        f"\nratio = ours / reference tokens/s per repeat, median and min-max over "
        f"{args.repeats} repeats (turns every {args.slice} steps); target >= 1.0."
    )
    print("Median seconds per run (validation is model work that the reference does too):")
    for r in rows:
        rest = r["ours_wall_s"] - r["ours_eval_s"] - r["ours_data_s"] - r["ours_checkpoint_s"]
        rest -= r["ours_curves_s"]
        print(
            f"  {r['name']}: ours {r['ours_wall_s']:.2f} = batches {r['ours_data_s']:.3f} + "
            f"validation {r['ours_eval_s']:.3f} + checkpoints {r['ours_checkpoint_s']:.3f} + "
            f"curves {r['ours_curves_s']:.3f} + steps/rest {rest:.2f}; reference "
            f"{r['ref_wall_s']:.2f} (validation {r['ref_eval_s']:.3f}); ratios "
            + ", ".join(f"{x:.3f}" for x in r["ratios"])
        )
    if rows and rows[0]["device_name"]:
        print(f"GPU: {rows[0]['device_name']}; MFU against {args.peak_tflops:g} TFLOP/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--presets",
        help="comma-separated [objective/]preset list (default: gpt/tiny,gpt/seed; on CUDA "
        "also gpt/base, the >= 50 M preset the MFU is for)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="runs of each side per preset")
    ap.add_argument("--slice", type=int, default=10, help="steps per turn (ABAB granularity)")
    ap.add_argument("--steps", type=int, help="optimizer steps per run (default per preset)")
    ap.add_argument("--micro", type=int, help="micro-batch size (default per preset)")
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--block-size", type=int, help="window length (default per preset)")
    ap.add_argument("--eval-interval", type=int, default=100)
    ap.add_argument("--log-interval", type=int, default=10)
    ap.add_argument("--eval-batches", type=int, default=10)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: 1 on CPU, where a busy core stalls every "
        "multi-threaded kernel and the noise drowns the ratio; torch's default on CUDA)",
    )
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=H100_BF16_DENSE_TFLOPS,
        help="the GPU's peak dense bf16 TFLOP/s for MFU (default 989: H100/H200 SXM)",
    )
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        spec = json.loads(Path(args.worker).read_text())
        print(json.dumps(worker(spec)))
        return

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available")
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    dev_kind = "cuda" if cuda else "cpu"
    if args.threads is None and not cuda:
        args.threads = 1
    names = args.presets or ("gpt/tiny,gpt/seed,gpt/base" if cuda else "gpt/tiny,gpt/seed")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_train-") as tmp:
        for name in names.split(","):
            rows.append(bench_preset(name.strip(), args, dev_kind, Path(tmp)))
    print()
    print_table(rows, args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
