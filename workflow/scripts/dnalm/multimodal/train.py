"""A small MLM loop for the DNA+text model and the two DNA-only variants.

Masking respects modality: a *unit* is a whole text word (a WordPiece start piece with its
``##`` continuations) or one whole DNA token; special tokens and the ``<dna>`` tags are never
units. Each unit is chosen with probability ``mask_prob`` (at least one per sentence); a
chosen unit's tokens become ``[MASK]`` (80 %), a random token of the same modality (10 %)
or stay (10 %), and are scored. The loss is reported per modality.

The steps run on the one training loop (:class:`dnalm.training.loop.TrainingLoop`:
backward, gradient clipping at norm 1, AdamW built by the loop with
:func:`dnalm.training.core.param_groups` (the one weight-decay rule) and a linear warm-up);
:func:`dnalm.training.core.write_curves` writes ``curves.csv``, and
:func:`dnalm.training.core.divergence_error` reports a loss that is not finite. It runs on
the device that :func:`dnalm.core.device.select_device` picks for ``dnatext.device`` (the CPU
by default; CUDA or MPS when set), in fp32: the model, its optimizer state and every batch
live there, and the model stays there after training. It is meant for small runs
(``dnatext.train.steps``), not long pretraining.

Every step is a curves row, but its values stay on the device until they are read together,
every :data:`READ_EVERY` steps and at the end (one host synchronisation each): a loss that
is not finite stops the run there, naming the first step whose loss it was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dnalm.core.device import select_device
from dnalm.training.core import divergence_error, write_curves
from dnalm.training.loop import AdamWSettings, TrainingLoop

CURVE_COLUMNS = ("step", "loss", "loss_text", "loss_dna", "lr", "seconds")
#: steps whose curve rows are read from the device together (one host synchronisation)
READ_EVERY = 25


@dataclass
class Vocab:
    """What masking needs to know about a vocabulary of `size` ids: ids below `offset` are
    text (offset 0: DNA only), `special` marks ids never masked, `continuation` marks
    WordPiece continuation pieces, `mask_id` replaces masked tokens."""

    size: int
    offset: int
    special: np.ndarray
    continuation: np.ndarray
    mask_id: int
    pad_id: int

    @classmethod
    def of_dnatext(cls, tok) -> Vocab:
        special = np.zeros(tok.vocab_size, bool)
        special[tok.special_ids] = True
        special[[tok.offset + i for i in tok.dna_special_ids()]] = True
        return cls(
            tok.vocab_size, tok.offset, special, tok.is_continuation, tok.mask_id, tok.pad_id
        )

    @classmethod
    def of_dna(cls, dna) -> Vocab:
        special = np.zeros(dna.vocab_size, bool)
        special[[v for v in dna.special_ids.values() if v is not None]] = True
        return cls(
            dna.vocab_size, 0, special, np.zeros(dna.vocab_size, bool), dna.mask_id, dna.pad_id
        )


def units(ids: np.ndarray, vocab: Vocab, modality: str = "both") -> np.ndarray:
    """Unit number of every position of one row (-1: not maskable). `modality` 'text' or
    'dna' keeps only that modality's units."""
    special = vocab.special[ids]
    dna = ids >= vocab.offset
    start = ~special & (dna | ~vocab.continuation[ids])
    unit = np.cumsum(start) - 1
    ok = ~special
    if modality == "text":
        ok &= ~dna
    elif modality == "dna":
        ok &= dna
    return np.where(ok, unit, -1)


def mask_row(
    ids: np.ndarray,
    vocab: Vocab,
    rng: np.random.Generator,
    prob: float,
    modality: str = "both",
    replace: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of one row: whole units masked (module docstring); labels -100 where
    not scored. `replace` False: every chosen token becomes [MASK] (evaluation)."""
    unit = units(ids, vocab, modality)
    labels = np.full_like(ids, -100)
    inputs = ids.copy()
    n_units = int(unit.max()) + 1 if (unit >= 0).any() else 0
    if n_units == 0:
        return inputs, labels
    present = np.unique(unit[unit >= 0])
    chosen = present[rng.random(present.size) < prob]
    if chosen.size == 0:
        chosen = present[rng.integers(present.size)][None]
    hit = np.isin(unit, chosen)
    labels[hit] = ids[hit]
    how = rng.random(ids.size) if replace else np.zeros(ids.size)
    inputs[hit & (how < 0.8)] = vocab.mask_id
    rand = hit & (how >= 0.8) & (how < 0.9)
    if rand.any():
        dna = ids[rand] >= vocab.offset
        lo = np.where(dna, vocab.offset, 0)
        hi = np.where(dna, vocab.size, max(vocab.offset, 1))
        inputs[rand] = rng.integers(lo, hi)
    return inputs, labels


def collate(
    rows: Sequence[np.ndarray], pad_id: int, max_len: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(right-padded int64 matrix of `rows`, each cut to `max_len` keeping its last id (None:
    no cut), and its attention mask)."""
    longest = max(len(r) for r in rows)
    n = longest if max_len is None else min(max_len, longest)
    out = np.full((len(rows), n), pad_id, np.int64)
    attention = np.zeros_like(out)
    for i, r in enumerate(rows):
        r = np.concatenate([r[: n - 1], r[-1:]]) if len(r) > n else r
        out[i, : len(r)] = r
        attention[i, : len(r)] = 1
    return out, attention


def masked_batch(
    rows: Sequence[np.ndarray],
    vocab: Vocab,
    rng: np.random.Generator,
    prob: float,
    max_len: int,
    modality: str = "both",
    replace: bool = True,
) -> dict[str, torch.Tensor]:
    """A training/evaluation batch: input_ids, attention_mask, labels (modality from ids)."""
    ids, attention = collate(rows, vocab.pad_id, max_len)
    inputs, labels = ids.copy(), np.full_like(ids, -100)
    for i, r in enumerate(rows):
        n = min(len(r), ids.shape[1])
        inputs[i, :n], labels[i, :n] = mask_row(ids[i, :n], vocab, rng, prob, modality, replace)
    return {
        "input_ids": torch.from_numpy(inputs),
        "attention_mask": torch.from_numpy(attention),
        "labels": torch.from_numpy(labels),
    }


def host_attention_mask(model, attention: torch.Tensor) -> torch.Tensor | None:
    """The attention mask to hand `model` for the host (CPU) 2D mask `attention` (B, T),
    decided on the host: None when nothing is padded, and on sdpa attention the (B, 1, T, T)
    boolean mask that transformers would build from it. Given the 2D mask, transformers
    checks on the device whether any position is padded: a host synchronisation a forward."""
    mask = attention.numpy()
    if mask.all():
        return None
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return attention
    return attention.bool()[:, None, None, :].expand(-1, 1, mask.shape[1], -1)


def token_losses(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-position cross-entropy in nats, scored mask) of `batch` (labels -100 unscored)."""
    labels = batch["labels"]
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits.float()
    ce = torch.nn.functional.cross_entropy(
        logits.view(-1, logits.shape[-1]), labels.clamp(min=0).view(-1), reduction="none"
    ).view(labels.shape)
    return ce, labels != -100


def train_mlm(
    model: torch.nn.Module,
    rows: Sequence[np.ndarray],
    vocab: Vocab,
    cfg: dict[str, Any],
    curves: str | Path | None = None,
    device: str | torch.device | None = None,
) -> list[dict[str, Any]]:
    """Train `model` on id `rows` for ``cfg['steps']`` steps of ``cfg['batch_size']`` rows
    (``lr``, ``weight_decay``, ``mask_prob``, ``max_len``, ``seed``, linear warm-up over
    the first tenth) on `device` (a name for :func:`select_device`, e.g. "auto" or "cuda:1";
    None - the CPU). Returns the curve rows (also written to `curves`)."""
    device = select_device("cpu" if device is None else device)
    seed, steps = int(cfg.get("seed", 0)), int(cfg["steps"])
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.to(device).train()
    lr, weight_decay = float(cfg.get("lr", 1e-3)), float(cfg.get("weight_decay", 0.01))
    warm = max(1, steps // 10)
    scored_ce: list[torch.Tensor] = []  # this step's per-position losses and scored mask

    def loss_of(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ce, scored = token_losses(model, batch)
        scored_ce[:] = [ce.detach(), scored]
        return (ce * scored).sum() / scored.sum().clamp(min=1)

    def read(pending: list[tuple[dict[str, Any], torch.Tensor]]) -> None:
        """Fill the rows of `pending` from their device values (one host sync)."""
        values = torch.stack([v for _, v in pending]).tolist()
        for (row, _), (loss, text, has_text, dna, has_dna) in zip(pending, values, strict=True):
            if not math.isfinite(loss):
                where = f"at step {row['step']}"
                raise divergence_error(
                    "the dnatext MLM loss", loss, where, "lower dnatext.train.lr", None, ""
                )
            row.update(loss=loss, loss_text=text if has_text else None)
            row["loss_dna"] = dna if has_dna else None
        pending.clear()

    loop = TrainingLoop(
        model,
        loss_of,
        AdamWSettings(lr=lr, weight_decay=weight_decay),
        schedule=lambda s: min(1.0, (s + 1) / warm),  # linear warm-up, then constant
        device=device,
        grad_clip=1.0,
    )
    history, t0 = [], time.perf_counter()
    pending: list[tuple[dict[str, Any], torch.Tensor]] = []
    for step in range(1, steps + 1):
        pick = rng.integers(0, len(rows), int(cfg.get("batch_size", 16)))
        batch = masked_batch(
            [rows[i] for i in pick],
            vocab,
            rng,
            float(cfg.get("mask_prob", 0.15)),
            int(cfg.get("max_len", 256)),
        )
        batch["attention_mask"] = host_attention_mask(model, batch["attention_mask"])
        batch = {k: None if v is None else v.to(device) for k, v in batch.items()}
        loss = loop.train_step([batch])
        row: dict[str, Any] = {"step": step, "lr": loop.lr}
        ce, scored = scored_ce
        dna = batch["labels"] >= vocab.offset
        # per modality: the mean loss of its scored tokens (NaN, shown as empty, when none)
        parts = [loss]
        for sel in (scored & ~dna, scored & dna):
            parts += [(ce * sel).sum() / sel.sum(), sel.any()]
        pending.append((row, torch.stack([p.to(torch.float64) for p in parts])))
        row["seconds"] = round(time.perf_counter() - t0, 3)
        history.append(row)
        if step % READ_EVERY == 0 or step == steps:
            read(pending)
    if curves is not None:
        write_curves(curves, history, CURVE_COLUMNS)
    model.eval()
    return history
