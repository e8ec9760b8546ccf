"""Pretraining of causal (gpt) and masked (mlm) DNA language models on a token corpus.

:func:`run_pretraining` trains a :class:`dnalm.training.run.PretrainRun` in this process: the
workflow script, the ``dnalm pretrain`` command, ``python -m dnalm.training.pretrain`` and the
torchrun workers of dnalm.training.distributed.launch call it (:func:`pretrain` takes the
run's fields as arguments). :class:`Trainer` holds the data, evaluation and run record of
pretraining; its steps, checkpoints and resume are those of the one training loop
(:class:`dnalm.training.loop.TrainingLoop`).

What a run does:
* AdamW (built by the training loop from the run's settings) with two parameter groups
  (the weight-decay rule of dnalm.training.core, shared with fine-tuning): weight decay on
  weight matrices; none on biases, LayerNorm weights and
  embedding tables (token and position), since decaying those pulls scales and rare-token
  rows towards zero for no regularisation benefit;
* linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at `max_steps`;
  gradient clipping; gradient accumulation; bf16 autocast on GPU, fp32 on CPU; optional
  ``torch.compile``;
* the loss of a step is the sum of per-token losses over the whole global batch (all
  micro-batches and processes) divided by its number of targets, so 1 process with k
  accumulation steps and k processes give the same gradient; with ``lowercase_loss_weight``
  below 1 and a corpus with soft-masked input, each target's loss and count are weighted
  (lower-case targets by the weight), and the validation loss and bits/nt are reported both
  weighted (the objective, also for early stopping) and unweighted;
* a causal model's per-target loss is its `loss` (cross-entropy by default; the others and
  what curves report for them: dnalm.training.objectives);
* validation every `eval_interval` steps (and at step 0), early stopping after `patience`
  evaluations without improvement, checkpoints `last` and `best` (checkpoint.py) at every
  evaluation or every `checkpoint_interval` steps (a best in between is kept in host
  memory and written with the next checkpoint), rows of `curves.csv`;
* the next step's micro-batches are built in a background thread (loop.Prefetcher; pinned
  memory on CUDA), and the loss stays on the device between the rows of `curves.csv`
  (loop.DeviceTally): the steps in between never wait for the device;
  a non-finite loss stops the run with the step and a hint, and the last good checkpoint
  stays as it was (device, precision, early stopping, curves, the divergence error and
  the checkpoint check are those of dnalm.training.core, which fine-tuning uses too; a
  non-finite loss is found at the next row, with its step);
* a rerun resumes from the last checkpoint only when every setting that changes the result
  is the same (architecture, optimizer, schedule, batch sizes, seed, evaluation and
  stopping, precision, and the corpus: meta.json and the train/validation arrays, by
  sha256); otherwise it starts over with a warning that names the changed settings, and a
  finished run with the same settings is picked up without training;
* several processes (torchrun, one or several nodes): DistributedDataParallel or FSDP2 shards
  (`strategy`; launch, sharding and gathered checkpoints: dnalm.training.distributed);
* at the end: the best weights are exported as a Hugging Face folder (config.json,
  model.safetensors, tokenizer files), and the test split is scored against a count-based
  baseline (lm_eval.py): metrics.json, metrics.tsv, run.json.

Exactness: the data order is a function of (seed, epoch) and the MLM masks of
(seed, epoch, window); checkpoints carry every RNG state, so on CPU a run killed at any
moment and resumed ends with bitwise the same weights as an uninterrupted run.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from dnalm.core.artifacts import CURVES_CSV, METRICS_JSON, METRICS_TSV, RUN_JSON
from dnalm.core.device import select_device
from dnalm.core.errors import ConfigError, InputFormatError, TrainingDivergedError
from dnalm.core.io import atomic_write
from dnalm.core.log import progress_disabled
from dnalm.kinds.tokenizers import mask_span_for
from dnalm.modeling.flops import training_flops_per_token
from dnalm.modeling.models import (
    DEFAULT_ARCH,
    build_model,
    check_cuda_path,
    check_packed_support,
    count_parameters,
    default_attention,
    forward_logits,
    resolve_arch,
)
from dnalm.training import checkpoint as ckpt
from dnalm.training import core
from dnalm.training import distributed as dd
from dnalm.training.core import EarlyStopping, dist_info, divergence_error, param_groups
from dnalm.training.core import all_reduce_sum as _all_reduce_sum
from dnalm.training.lm_data import (
    IGNORE_INDEX,
    BatchSchedule,
    Masker,
    StepBatches,
    causal_labels,
    check_split,
    check_tokenizer_vocab,
    corpus_fingerprint,
    load_lowercase,
    load_meta,
    load_split,
    nt_per_token,
    read_tokenizer_spec,
    special_id_list,
    special_ids,
    split_path,
    target_weights,
)
from dnalm.training.lm_eval import evaluate_model, evaluate_test, summarise, write_metrics
from dnalm.training.loop import DeviceTally, Prefetcher, TrainingLoop, WarmupCosine
from dnalm.training.objectives import build_objective, test_objective, token_ce_sum
from dnalm.training.run import PretrainRun
from dnalm.training.track import open_tracker

log = logging.getLogger(__name__)

__all__ = [
    "TrainingDivergedError",
    "WarmupCosine",
    "param_groups",
    "pretrain",
    "write_pretrain_curves",
]

#: `format` entry of a pretraining checkpoint's trainer_state.pt. Version 2 records the
#: `setup` (every result-changing setting); older checkpoints (a `fingerprint` of the
#: architecture only) cannot tell whether they match, so a run starts over from them.
PRETRAIN_CHECKPOINT_FORMAT = "dnalm.training.pretrain/2"
#: training settings that do not change the weights (left out of a checkpoint's setup)
RESULT_NEUTRAL = (
    "log_interval",
    "checkpoint_interval",
    "baseline_order",
    "baseline_alpha",
    "test_eval",
    "device",
    "threads",
)


CURVE_COLUMNS = [
    "step",
    "tokens_seen",
    "train_loss",
    "val_loss",
    "bits_per_nt",
    "val_loss_weighted",
    "bits_per_nt_weighted",
    "val_loss_objective",
    "lr",
    "elapsed_s",
    "tokens_per_s",
]


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """State and steps of one pretraining run (one process of it under torchrun)."""

    def __init__(self, run: PretrainRun):
        self.run = run
        self.corpus_dir, self.out_dir = run.corpus_dir, run.out_dir
        self.objective, self.preset = run.objective, run.preset
        self.cfg = asdict(run.train)  # the settings as a mapping (run.json's `train`)
        self.arch = resolve_arch(run.objective, run.preset, run.overrides, run.arch)
        self.rank, self.world, self.local_rank = dist_info()
        self.is_main = self.rank == 0
        self.resume = run.resume
        self.strategy = dd.check_strategy(run.strategy)  # ddp | fsdp (distributed.py)
        if self.cfg["threads"]:
            torch.set_num_threads(int(self.cfg["threads"]))
        self._setup_device()
        self._setup_data()
        self.loss = build_objective(
            run.loss,
            run.loss_options,
            self.meta,
            self.tokenizer_dir,
            self.tokenizer_spec,
            run.objective,
            self.out_dir.name,
        )
        self._setup_model()

    # ---- setup

    def _setup_device(self) -> None:
        self.device = select_device(self.cfg["device"], local_rank=self.local_rank)
        use_cuda = self.device.type == "cuda"
        if use_cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if use_cuda else "gloo",
                timeout=datetime.timedelta(seconds=dd.collective_timeout_s()),
            )
        self.precision = core.resolve_precision(self.cfg["precision"], self.device)
        self.amp_dtype = core.amp_dtype(self.precision)

    def _setup_data(self) -> None:
        meta = load_meta(self.corpus_dir)
        self.meta = meta
        check_packed_support(self.arch["arch"], meta.get("packing"), str(self.corpus_dir))
        if "attn_implementation" not in self.run.overrides:  # flex for packed windows on CUDA
            attn = default_attention(self.arch, self.device.type, meta.get("packing"))
            self.arch["attn_implementation"] = attn
        self.block_size = int(meta["block_size"])
        if self.block_size > self.arch["context"]:
            raise ConfigError(
                f"corpus {self.corpus_dir} has block_size {self.block_size}, longer than the "
                f"position table of model {self.arch['arch']}/{self.preset} (context "
                f"{self.arch['context']}); set the model override `context` >= "
                f"{self.block_size} or build the corpus with a smaller block_size"
            )
        self.tokenizer_dir = self.corpus_dir / "tokenizer"
        self.tokenizer_spec = read_tokenizer_spec(self.tokenizer_dir)
        self.vocab_size = check_tokenizer_vocab(self.tokenizer_dir, int(meta["vocab_size"]))
        self.train_tok, self.train_pos = load_split(self.corpus_dir, "train")
        self.val_tok, self.val_pos = load_split(self.corpus_dir, "validation")
        for split, (tok, pos) in {
            "train": (self.train_tok, self.train_pos),
            "validation": (self.val_tok, self.val_pos),
        }.items():
            where = split_path(self.corpus_dir, split)
            if tok.shape[1] != self.block_size:
                raise InputFormatError(
                    f"{where}: window length {tok.shape[1]} differs from meta.json block_size "
                    f"{self.block_size}"
                )
            check_split(tok, pos, self.vocab_size, self.arch["context"], where)
        # soft-masked targets: loss weight lowercase_loss_weight (None: no flags, weight 1)
        self.low_weight = float(self.cfg["lowercase_loss_weight"])
        self.train_low = load_lowercase(self.corpus_dir, "train")
        self.val_low = load_lowercase(self.corpus_dir, "validation")
        if self.low_weight != 1.0 and self.train_low is None and self.rank == 0:
            log.warning(
                "lowercase_loss_weight %g has no effect: the train split of %s has no "
                "soft-masked (lower-case) input",
                self.low_weight,
                self.corpus_dir,
            )
        if self.low_weight == 1.0:
            self.train_low = None  # every target weighs 1: the plain mean
        self.nt_per_tok = nt_per_token(meta, "validation")
        self.pad_id = meta.get("pad_id")
        self.special = torch.tensor(special_id_list(meta), dtype=torch.long)
        cfg = self.cfg
        self.schedule = BatchSchedule(
            self.train_tok.shape[0],
            cfg["micro_batch_size"],
            cfg["grad_accum"],
            self.world,
            cfg["seed"],
        )
        self.masker = None
        if self.objective == "mlm":
            span = cfg["mask_span"] or mask_span_for(self.tokenizer_spec)
            self.masker = Masker(meta, cfg["seed"], cfg["mask_prob"], span)

    def _setup_model(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg["seed"])  # same initial weights on every rank
        self.model = build_model(self.objective, self.arch, self.vocab_size, special_ids(self.meta))
        self.model.to(self.device)
        # Mamba without its CUDA kernels: a warning with the memory estimate, or a refusal
        check_cuda_path(self.model, self.device, int(cfg["micro_batch_size"]), self.block_size)
        self.params = count_parameters(self.model)
        # DDP, or FSDP2 shards (then `replica`: an unsharded copy for evaluation and export)
        self.module, self.replica = dd.wrap(
            self.model, self.device, self.world, self.strategy, self.precision
        )
        # dropout streams differ between ranks, deterministically
        torch.manual_seed(cfg["seed"] * 1000 + 1 + self.rank)
        if cfg["compile"]:
            self.module = torch.compile(self.module)
        # the loop builds AdamW and the warm-up + cosine schedule from the run's settings
        self.loop = TrainingLoop(
            self.model,
            self._micro_loss,
            self.run.train,
            # fused on CUDA; elsewhere foreach (torch's default on CUDA only): one call per
            # operation, not per parameter, with the per-parameter loop's arithmetic
            fused=self.device.type == "cuda",
            foreach=None if self.device.type == "cuda" else True,
            device=self.device,
            precision=self.precision,
            module=self.module,
            replica=self.replica,
            grad_clip=cfg["grad_clip"],
            stopper=EarlyStopping(cfg["patience"], min_delta=cfg["min_delta"]),
            fmt=PRETRAIN_CHECKPOINT_FORMAT,
            world=self.world,
            rank=self.rank,
        )
        self.loop.setup = self.setup()  # what its checkpoints record
        self.tokens_seen = 0
        self.elapsed = 0.0
        self.last_val = None
        self.curves: list[dict[str, Any]] = []
        # curves.csv lines of self.curves, formatted once: the file is rewritten (atomically)
        # at every row, and re-formatting the whole history each time grew quadratically
        self._curve_lines: list[str] = []

    @property
    def step(self) -> int:
        return self.loop.step

    @property
    def best_step(self) -> int:
        return self.loop.best_step

    @property
    def best_val(self) -> float:
        return self.loop.best

    @property
    def stopped_early(self) -> bool:
        return self.loop.stopped

    # ---- checkpoints

    @property
    def ckpt_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def setup(self) -> dict[str, Any]:
        """Every setting that changes the result: a checkpoint resumes only a run with the
        same (checkpoint.setup_changes)."""
        # keep_checkpoints only when on: older checkpoints resume; switched on, a run starts over
        neutral = RESULT_NEUTRAL + (() if self.cfg["keep_checkpoints"] else ("keep_checkpoints",))
        train = {k: v for k, v in self.cfg.items() if k not in neutral}
        train["precision"] = self.precision
        o = self.objective
        mp = dd.fsdp_mixed_precision(self.precision)
        return {
            **train,
            "objective": self.objective,
            # the default arch unnamed, as before there were others: old checkpoints resume
            "arch": {k: v for k, v in self.arch.items() if (k, v) != ("arch", DEFAULT_ARCH[o])},
            "vocab_size": self.vocab_size,
            "tokenizer_hash": self.meta.get("tokenizer_hash"),
            "global_batch": self.schedule.global_batch,
            "data": corpus_fingerprint(self.corpus_dir, self.meta),
            **({} if self.loss.name == "ce" else self.loss.spec()),
            **({"strategy": "fsdp"} if self.replica is not None else {}),
            # FSDP2's bf16 policy (none under fp32: the setup of older fp32 checkpoints)
            **({"fsdp_mixed_precision": mp} if self.replica is not None and mp else {}),
        }

    def plain_model(self) -> torch.nn.Module:
        """The unsharded model with the current weights (TrainingLoop.plain_model)."""
        return self.loop.plain_model()

    def save(self, best: bool) -> None:
        """Write the checkpoint of this step (`best`: it is the best so far), after the
        weights of a best found since the last checkpoint (held by _evaluate)."""
        pending = getattr(self, "_best", None)
        if pending is not None and not best and self.is_main:
            step, weights = pending
            state = {"format": PRETRAIN_CHECKPOINT_FORMAT, "step": step, "best_only": True}
            ckpt.save_best_weights(self.ckpt_dir, step, weights, state)
        self._best = None
        extra = {
            "tokens_seen": self.tokens_seen,
            "elapsed": self.elapsed,
            "best_val": self.best_val,
            "last_val": self.last_val,
            "curves": self.curves,
        }
        self.loop.checkpoint(self.ckpt_dir, best, extra)
        if self.cfg["keep_checkpoints"] and self.is_main:
            ckpt.keep_weights(self.ckpt_dir, self.step)

    def _stale(self, state: dict[str, Any]) -> str | None:
        """Why the checkpoint `state` belongs to another run (None: it is this run's)."""
        where = f"the checkpoints in {self.ckpt_dir} (step {state.get('step')})"
        if state.get("format") != PRETRAIN_CHECKPOINT_FORMAT:
            return (
                f"{where} were written by an older dnalm that recorded only the architecture, "
                "not the other settings"
            )
        changes = self.loop.changes(state)
        if changes:
            return (
                f"settings changed since {where} were written: {', '.join(changes)} "
                f"({ckpt.describe_changes(changes)})"
            )
        return None

    def try_resume(self) -> bool:
        """Restore the last checkpoint of this very run (same setup). Checkpoints of another
        setup, or all of them when not `resume`, are removed (with a warning naming the
        changed settings) and the run starts over."""
        last = ckpt.last_checkpoint(self.ckpt_dir)
        state = ckpt.load_state(last) if last is not None and self.resume else None
        why = None if state is None else self._stale(state)
        if state is None or why:
            if why and self.is_main:
                log.warning("%s; starting over (the checkpoints are removed)", why)
            if self.is_main and self.ckpt_dir.exists() and (why or not self.resume):
                shutil.rmtree(self.ckpt_dir)
            if self.world > 1:
                dist.barrier()
            return False
        self.loop.resume(last, state)
        self.loop.restore_rng(state["rng"])
        for key in ("tokens_seen", "elapsed", "last_val"):
            setattr(self, key, state[key])
        self.curves = list(state["curves"])
        self._curve_lines = [core.curve_line(row, CURVE_COLUMNS) for row in self.curves]
        self.loop.track(*self.curves)
        log.info("resumed from %s (step %d)", last, self.step)
        return True

    # ---- steps

    def micro_batches(self, step: int) -> list[tuple[Any, ...]]:
        """This rank's micro-batches of `step`: (inputs, positions, labels, weights)
        # (B, T) each; weights (the target's loss weight) is None when all are 1. A pure
        function of the step (the prefetch thread builds them: Prefetcher)."""
        windows = self.schedule.windows(step)[:, self.rank]  # (accum, micro)
        epoch = self.schedule.epoch_of(step)
        out = []
        for w in windows:
            order = np.sort(w)  # sorted reads of the memmap; the batch is a set anyway
            tok = np.asarray(self.train_tok[order], dtype=np.int64)
            pos = torch.from_numpy(np.asarray(self.train_pos[order], dtype=np.int64))
            if self.objective == "gpt":
                inputs = torch.from_numpy(tok)
                labels = causal_labels(inputs, pos, self.pad_id)
            else:
                x, y = self.masker(tok, order, epoch)
                inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
            weights = None
            if self.train_low is not None:
                flags = self.train_low[order]
                weights = torch.from_numpy(target_weights(flags, self.low_weight))
            out.append((inputs, pos, labels, weights))
        return out

    def prepare(self, step: int) -> StepBatches:
        """The micro-batches of `step` with their counts (:meth:`counts`), in pinned memory
        on CUDA (copied with non_blocking): what the prefetch thread hands the loop."""
        batches = self.micro_batches(step)
        counts = self.counts(batches)
        if self.device.type == "cuda":
            batches = [tuple(None if t is None else t.pin_memory() for t in b) for b in batches]
        return StepBatches(batches, counts)

    def counts(self, batches) -> tuple[float, int]:
        """(total target weight, number of non-pad input tokens) of this rank's `batches`
        (host tensors: no device synchronisation)."""
        n_local = sum(
            float(w[lab != IGNORE_INDEX].sum())
            if w is not None
            else int((lab != IGNORE_INDEX).sum())
            for _, _, lab, w in batches
        )
        n_inputs = sum(
            int((x != self.pad_id).sum()) if self.pad_id is not None else x.numel()
            for x, _, _, _ in batches
        )
        return n_local, n_inputs

    def train_step(self, batches) -> tuple[torch.Tensor, float, int]:
        """One optimizer step over `batches` (this rank's micro-batches; a StepBatches
        carries their counts). Returns the global (mean loss, total target weight, number of
        non-pad input tokens): the loss, a float64 tensor on the device (not synchronised;
        the global mean under one process, this rank's share of it under several), is the
        mean over targets weighted by their lower-case weight (the plain mean when every
        target weighs 1, as without lower-case flags)."""
        dev = self.device
        counts = getattr(batches, "counts", None)
        n_local, n_inputs = self.counts(batches) if counts is None else counts
        n_global, n_in_global = _all_reduce_sum([n_local, n_inputs], dev)
        scale = self.world / max(n_global, 1.0)  # DDP averages gradients over ranks
        total = self.loop.train_step(batches, scale=scale)
        dtype = torch.float32 if dev.type == "mps" else torch.float64
        mean = (
            total.detach().to(dtype) / n_global
            if n_global > 0
            else total.new_zeros((), dtype=dtype)
        )
        return mean, n_global, int(n_in_global)

    def _micro_loss(self, batch) -> torch.Tensor:
        """The summed (weighted) loss of one micro-batch (inputs, positions, labels, weights)."""
        x, pos, y, w = batch
        x, pos, y = (t.to(self.device, non_blocking=True) for t in (x, pos, y))
        if self.objective == "gpt":  # the `loss` of the model (objectives.py)
            return self.loss.loss_sum(self._forward, x, pos, y, w)
        return token_ce_sum(self._forward(x, pos), y, w)  # masked targets

    def _forward(self, x, pos):
        with core.autocast(self.device, self.precision):
            return forward_logits(self.model, x, pos, module=self.module)  # (B, T, V)

    def validate(self) -> dict[str, float]:
        bs = self.cfg["eval_batch_size"] or self.cfg["micro_batch_size"]
        n = self.val_tok.shape[0]
        max_b = self.cfg["eval_batches"]
        # each rank scores a strided share of the evaluation windows; sums are all-reduced
        n_eval = n if max_b is None else min(n, max_b * bs)
        mine = np.arange(self.rank, n_eval, self.world)
        rows = mine if self.world > 1 else slice(0, n_eval)
        tok, pos = self.val_tok[rows], self.val_pos[rows]
        low = None if self.val_low is None else self.val_low[rows]
        model = self.plain_model()
        res = evaluate_model(
            model,
            tok,
            pos,
            self.meta,
            self.objective,
            self.nt_per_tok,
            batch_size=bs,
            masker=self.masker,
            device=self.device,
            autocast_dtype=self.amp_dtype,
            window_ids=mine,
            lowercase=low,
            lowercase_weight=self.low_weight,
        )
        if self.world > 1:
            keys = ("loss_sum", "n_targets", "n_nonspecial", "n_correct")
            wkeys = ("loss_sum_weighted", "weight_sum", "n_nonspecial_weighted")
            sums = _all_reduce_sum([float(res[k]) for k in (*keys, *wkeys)], self.device)
            res = summarise(*sums[:4], self.nt_per_tok, *sums[4:])
        # the objective: the weighted CE for ce (the plain one when every target weighs 1)
        res["loss_objective"] = res["loss_weighted"]
        if not math.isfinite(res["loss_weighted"]):
            res["loss_objective"] = res["loss"]
        if self.loss.name != "ce":
            args = (model, tok, pos, bs, self.device, self.amp_dtype, low, self.low_weight)
            num, den = _all_reduce_sum(list(self.loss.validation_sums(*args)), self.device)
            res["loss_objective"] = num / den if den else float("nan")
        for key in ("loss", "loss_weighted", "loss_objective"):
            if not math.isfinite(res[key]) and (key == "loss" or res["weight_sum"] > 0):
                raise self._diverged("the validation loss", res[key], self.step)
        return res

    def _diverged(self, what: str, value: float, step: int) -> TrainingDivergedError:
        epoch = self.schedule.epoch_of(max(step - 1, 0)) + 1
        cause = (
            f"lower `lr` (now {self.loop.base_lr}), lengthen `warmup_steps`, keep `grad_clip` on, "
            "or use precision fp32"
        )
        rerun = (
            "a rerun with the same settings resumes from it, one with changed settings starts over."
        )
        where = f"at step {step} (epoch {epoch} of the training windows; run {self.out_dir})"
        return divergence_error(what, value, where, cause, self.ckpt_dir, rerun)

    def _record(self, train_loss, val, lr, interval_tokens, interval_s) -> None:
        row = {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "train_loss": train_loss,
            "val_loss": val["loss"] if val else None,
            "bits_per_nt": val["bits_per_nt"] if val else None,
            "val_loss_weighted": val["loss_weighted"] if val else None,
            "bits_per_nt_weighted": val["bits_per_nt_weighted"] if val else None,
            "val_loss_objective": val["loss_objective"] if val else None,
            "lr": lr,
            "elapsed_s": round(self.elapsed, 3),
            "tokens_per_s": interval_tokens / interval_s if interval_s > 0 else None,
        }
        self.curves.append(row)
        self.loop.track(row)  # the run's tracker (tracking.backend) gets the same row
        self._curve_lines.append(core.curve_line(row, CURVE_COLUMNS))
        if self.is_main:
            write_pretrain_curves(self.out_dir / CURVES_CSV, self.curves, self._curve_lines)

    def _evaluate(self, train_loss, lr, itok, isec, checkpoint: bool) -> None:
        """Validate, record the row and, when `checkpoint`, write the checkpoint. Off the
        checkpoint steps, an improved best is kept as a CPU copy of its weights and written
        (as the `best` folder) with the next checkpoint."""
        val = self.validate()
        objective = val["loss_objective"]  # validate(); objectives.py says which
        self.last_val = objective
        improved = self.loop.evaluate(objective)
        self._record(train_loss, val, lr, itok, isec)
        checkpoint = checkpoint or self.loop.stopped  # the last step of an early stop
        if improved and not checkpoint:
            model = self.plain_model()  # the replica under FSDP: refreshed by validate()
            self._best = (self.step, ckpt.best_weights(model) if self.is_main else {})
        elif improved:
            self._best = None
        if checkpoint:
            self.save(best=improved)
        if self.loop.stopped:
            log.info(
                "early stop at step %d: no improvement for %d evaluations (best %.4f at step %d)",
                self.step,
                self.loop.stopper.bad_evals,
                self.best_val,
                self.best_step,
            )

    def _read_tally(self, tally) -> float:
        """The summed train loss since the last read (one host synchronisation); a
        non-finite loss on any step stops the run here, before any checkpoint."""
        total, bad = tally.read(self.world)
        if bad is not None:  # (step, its loss)
            raise self._diverged("the training loss", bad[1], bad[0])
        return total

    def fit(self) -> None:
        cfg = self.cfg
        resumed = self.try_resume()
        self._best = None
        if not resumed:
            self._evaluate(None, self.loop.lr, 0, 0.0, checkpoint=True)
        if self.is_main and resumed:
            write_pretrain_curves(self.out_dir / CURVES_CSV, self.curves, self._curve_lines)
        self.model.train()
        bar = tqdm(
            total=cfg["max_steps"],
            initial=self.step,
            unit="step",
            desc="pretrain",
            disable=progress_disabled() or not self.is_main,
            dynamic_ncols=True,
        )
        every = cfg["checkpoint_interval"] or cfg["eval_interval"]
        tally = DeviceTally(self.device)  # the loss stays on the device between rows
        n_acc, itok, lr = 0.0, 0, self.loop.lr
        t0 = time.perf_counter()
        with Prefetcher(self.prepare, self.step, cfg["max_steps"]) as batches:
            while self.step < cfg["max_steps"] and not self.stopped_early:
                lr = self.loop.lr  # the row's rate: of the interval's last step
                mean, n_targets, n_in = self.train_step(batches.get(self.step))
                tally.add(mean, self.step, times=n_targets)  # self.step: counted from 1
                self.tokens_seen += n_in
                n_acc += n_targets
                itok += n_in
                bar.update(1)
                last = self.step == cfg["max_steps"]
                at_eval = self.step % cfg["eval_interval"] == 0 or last
                at_ckpt = self.step % every == 0 or last
                if not (at_eval or at_ckpt or self.step % cfg["log_interval"] == 0):
                    continue
                loss_sum = self._read_tally(tally)  # the interval's one host sync
                isec = time.perf_counter() - t0
                self.elapsed += isec
                train_loss = loss_sum / max(n_acc, 1)
                bar.set_postfix(loss=f"{train_loss:.4f}", tok_s=f"{itok / max(isec, 1e-9):,.0f}")
                if at_eval:
                    self._evaluate(train_loss, lr, itok, isec, checkpoint=at_ckpt)
                else:
                    self._record(train_loss, None, lr, itok, isec)
                if at_ckpt and not at_eval:
                    self.save(best=False)
                n_acc, itok = 0.0, 0
                t0 = time.perf_counter()
        bar.close()


# --------------------------------------------------------------------------- helpers


def write_pretrain_curves(
    path: Path, rows: list[dict[str, Any]], lines: list[str] | None = None
) -> None:
    """Write pretraining's curves.csv (atomically; training.core.write_curves)."""
    core.write_curves(path, rows, CURVE_COLUMNS, lines)


# --------------------------------------------------------------------------- entry points


def pretrain(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    objective: str,
    preset: str,
    overrides: dict | None = None,
    train_cfg: dict | None = None,
    resume: bool = True,
    loss: dict | None = None,
    arch: str | None = None,
    strategy: str = "ddp",
) -> dict[str, Any]:
    """Pretrain a `objective` ('gpt' | 'mlm') model of architecture `arch` (None: the
    objective's default; models.ARCHS) and `preset` (models.presets_of, with
    `overrides`) on the corpus folder `corpus_dir`; write the model folder `out_dir`.
    `loss`: the model entry's {loss, loss_options} (training.objectives; None: ce).
    `strategy`: ddp | fsdp, how several processes split the model (training.distributed).
    The arguments are those of :class:`dnalm.training.run.PretrainRun`; see
    :func:`run_pretraining`."""
    spec = loss or {}
    run = PretrainRun(
        corpus_dir,
        out_dir,
        objective,
        preset,
        overrides or {},
        train_cfg or {},
        resume,
        loss=spec.get("loss") or "ce",
        loss_options=spec.get("loss_options") or {},
        arch=arch,
        strategy=strategy,
    )
    return run_pretraining(run)


def run_pretraining(run: PretrainRun) -> dict[str, Any]:
    """Train the pretraining `run` in this process and write its model folder.

    Resumes from `out_dir/checkpoints` when `run.resume` (and they exist); otherwise starts
    over. Under torchrun every process calls this; only rank 0 writes files. Returns
    run.json's content (parameters, steps, best step, test metrics)."""
    out_dir, objective, preset = run.out_dir, run.objective, run.preset
    tr = Trainer(run)
    if tr.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in (METRICS_JSON, METRICS_TSV, RUN_JSON):
            (out_dir / name).unlink(missing_ok=True)  # a stale result must not look current
        log.info(
            "model %s/%s: %s parameters (%s non-embedding)",
            tr.arch["arch"],
            preset,
            f"{tr.params['total']:,}",
            f"{tr.params['non_embedding']:,}",
        )
        print(
            f"parameters: {tr.params['total']:,} total, {tr.params['non_embedding']:,} "
            f"non-embedding",
            file=sys.stderr,
        )
    try:
        # the run's tracker (tracking.backend): the settings now, the curves as they come
        tr.loop.tracker = open_tracker(run.tracking, run.to_dict(), tr.rank)
        with tr.loop.tracker:
            tr.fit()
            tr.model = (
                tr.model if tr.replica is None else tr.replica
            )  # FSDP: the rest (test, export) runs unsharded
            best = ckpt.best_checkpoint(tr.ckpt_dir)
            if best is not None:
                ckpt.load_weights(best, tr.model, device=tr.device)
            record = {
                "objective": objective,
                "preset": preset,
                "architecture": tr.arch["arch"],
                "arch": tr.arch,
                "hf_config": tr.model.config.to_dict(),
                "params": tr.params,
                "train": tr.cfg,
                "world_size": tr.world,
                "strategy": tr.strategy if tr.world > 1 else None,
                "device": str(tr.device),
                "precision": tr.precision,
                "corpus": str(tr.corpus_dir),
                "tokenizer": tr.meta.get("tokenizer"),
                "tokenizer_hash": tr.meta.get("tokenizer_hash"),
                "vocab_size": tr.vocab_size,
                "block_size": tr.block_size,
                "steps": tr.step,
                "tokens_seen": tr.tokens_seen,
                "best_step": tr.best_step,
                "best_val_loss": tr.best_val,  # of the loss (objectives.py)
                **tr.loss.spec(),
                "stopped_early": tr.stopped_early,
                "train_seconds": tr.elapsed,
                "flops_per_token": training_flops_per_token(
                    tr.arch, tr.params["non_embedding"], tr.block_size
                ),
            }
            # The rest (test split, count baselines, export) is rank 0's alone and may take long
            # on a large corpus: leave the process group first, so that no rank waits for it at
            # a barrier (whose timeout would fail the finished run, and every retry with it).
            dd.leave_process_group(tr)
            if tr.is_main:
                if tr.cfg["test_eval"]:
                    record["metrics"] = evaluate_test(tr)
                    record["metrics"].update(test_objective(tr, record["metrics"]["model"]))
                    write_metrics(out_dir, record["metrics"])
                tr.loop.tracker.log_metrics(record.get("metrics", {}), tr.step)
                ckpt.export_model(tr.model, tr.tokenizer_dir, out_dir)
                with atomic_write(out_dir / RUN_JSON) as fh:
                    json.dump(record, fh, indent=1, default=str)
                    fh.write("\n")
            return record
    finally:
        dd.leave_process_group(tr, barrier=False)


if __name__ == "__main__":  # `python -m dnalm.training.pretrain`: the command line
    import runpy

    runpy.run_module("dnalm.training.pretrain_cli", run_name="__main__", alter_sys=True)
