"""Pretraining data: the token-window corpus (see the corpus contract in the design docs),
a data order that is a pure function of (seed, epoch), and masked-LM masking that is a pure
function of (seed, epoch, window), so that a resumed run sees exactly the batches and masks
an uninterrupted run would have seen, whatever the number of processes."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer

from dnalm.core.artifacts import DNALM_TOKENIZER_JSON, META_JSON, TOKENIZER_JSON
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import file_digest
from dnalm.tokenization.shards import (
    KINDS,
    ShardedArray,
    damaged_shard,
    open_split,
    shard_record,
)

SPLITS = ("train", "validation", "test")
SPECIAL_KEYS = ("pad_id", "unk_id", "bos_id", "eos_id", "sep_id", "mask_id")
IGNORE_INDEX = -100


def load_meta(corpus_dir: str | Path) -> dict[str, Any]:
    """Read and check `meta.json` of a corpus folder."""
    path = Path(corpus_dir) / META_JSON
    if not path.is_file():
        raise InputFormatError(
            f"{path}: corpus metadata not found; build the corpus first (dnalm corpus / the "
            "`corpus` rule) and pass its folder"
        )
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputFormatError(f"{path}: not valid JSON ({err})") from err
    for key in ("vocab_size", "block_size"):
        if not isinstance(meta.get(key), int) or meta[key] < 1:
            raise InputFormatError(f"{path}: `{key}` must be a positive integer")
    for key in SPECIAL_KEYS:
        meta.setdefault(key, None)
    return meta


def special_ids(meta: dict[str, Any]) -> dict[str, int | None]:
    return {key: meta.get(key) for key in SPECIAL_KEYS}


def special_id_list(meta: dict[str, Any]) -> list[int]:
    """Ids of every special token named in the corpus metadata."""
    return sorted({v for k in SPECIAL_KEYS if (v := meta.get(k)) is not None})


def nt_per_token(meta: dict[str, Any], split: str) -> float:
    """Mean nucleotides per non-special token of `split` (falls back to the train split)."""
    for name in (split, "train"):
        value = (meta.get(name) or {}).get("nt_per_token")
        if value:
            return float(value)
    return 1.0


def _legacy(corpus_dir: Path, split: str) -> bool:
    """A format-1 corpus: one `{split}.tokens.npy` / `{split}.positions.npy` pair."""
    return (corpus_dir / f"{split}.tokens.npy").is_file()


def load_split(corpus_dir: str | Path, split: str) -> tuple[Any, Any]:
    """Memory-map the token and position windows of `split`. # (N, T) each

    A sharded corpus (format 2) gives two ShardedArray (one memory map per shard, see
    dnalm.tokenization.shards); a format-1 folder (`{split}.tokens.npy`) two memmaps.
    Raises InputFormatError for a missing file, a shape mismatch or an empty split."""
    corpus_dir = Path(corpus_dir)
    if _legacy(corpus_dir, split):
        tok_path = corpus_dir / f"{split}.tokens.npy"
        pos_path = corpus_dir / f"{split}.positions.npy"
        if not pos_path.is_file():
            raise InputFormatError(f"{pos_path}: missing; rebuild the corpus folder {corpus_dir}")
        tokens = np.load(tok_path, mmap_mode="r")
        positions = np.load(pos_path, mmap_mode="r")
    else:
        meta = load_meta(corpus_dir)
        info = meta.get(split)
        tok_path = pos_path = corpus_dir / split
        if isinstance(info, dict) and info.get("n_windows") == 0:
            tokens = positions = np.zeros((0, int(meta["block_size"])), np.uint16)
        else:
            tokens = open_split(corpus_dir, split, meta, "tokens")
            positions = open_split(corpus_dir, split, meta, "positions")
            if [p.shape for p in tokens.parts] != [p.shape for p in positions.parts]:
                raise InputFormatError(
                    f"{tok_path}: token and position shards differ in shape; rebuild the corpus"
                )
    if tokens.ndim != 2 or tokens.shape != positions.shape:
        raise InputFormatError(
            f"{tok_path}: shape {tokens.shape} does not match {pos_path.name} "
            f"{positions.shape}; both must be (n_windows, block_size)"
        )
    if tokens.shape[0] == 0:
        hint = (
            "add sequences to that split (more CDS or other split fractions) or use a "
            "smaller block_size"
        )
        raise InputFormatError(f"{tok_path}: the {split} split is empty (0 windows); {hint}")
    return tokens, positions


def load_lowercase(corpus_dir: str | Path, split: str) -> ShardedArray | None:
    """The per-token lower-case flags of `split` # (N, T) uint8, or None when the split has
    no soft-masked input (or the corpus predates the flags)."""
    corpus_dir = Path(corpus_dir)
    if _legacy(corpus_dir, split):
        return None
    meta = load_meta(corpus_dir)
    if not (meta.get(split) or {}).get("has_lowercase"):
        return None
    return open_split(corpus_dir, split, meta, "lowercase")


def _blocks(tokens, positions, path):
    """(tokens path, positions path, tokens, positions) per shard (one block for arrays)."""
    if isinstance(tokens, ShardedArray):
        for (p, t), (q, u) in zip(tokens.iter_shards(), positions.iter_shards(), strict=True):
            yield p, q, t, u
    else:
        yield path, path, tokens, positions


def check_split(tokens, positions, vocab_size: int, context: int, path):
    """Reject token ids outside the vocabulary and positions outside the position table
    (shard by shard for a sharded split; the error names the shard file)."""
    for where, where_pos, tok, pos in _blocks(tokens, positions, path):
        if not tok.size:
            continue
        tmax = int(tok.max())
        if tmax >= vocab_size:
            raise InputFormatError(
                f"{where}: token id {tmax} >= vocab_size {vocab_size}; the corpus and its "
                "tokenizer disagree, rebuild the corpus"
            )
        pmax = int(pos.max())
        if pmax >= context:
            raise ConfigError(
                f"{where_pos}: position id {pmax} does not fit the model's position table of "
                f"{context}; raise the model `context` or lower the corpus block_size"
            )


def split_path(corpus_dir: str | Path, split: str) -> Path:
    """What names a split in messages: its `.tokens.npy` (format 1) or its shard folder."""
    corpus_dir = Path(corpus_dir)
    return corpus_dir / f"{split}.tokens.npy" if _legacy(corpus_dir, split) else corpus_dir / split


def target_weights(flags, weight: float) -> np.ndarray:
    """Loss weight of each token as a target: `weight` where its lower-case flag is set,
    else 1. # (B, T) uint8 -> (B, T) float32"""
    return np.where(np.asarray(flags) != 0, np.float32(weight), np.float32(1.0))


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the `n` training windows in `epoch`: a pure function of (seed, epoch)."""
    return np.random.default_rng([int(seed), 0x5EED, int(epoch)]).permutation(n)


class BatchSchedule:
    """Which windows each optimizer step uses. Step `s` (0-based) of an epoch of
    `steps_per_epoch` steps takes the next `global_batch` windows of that epoch's
    permutation (the remainder of an epoch is dropped). The global batch is laid out as
    (grad_accum, world_size, micro_batch): process `rank` runs micro-batch `m` on
    `[m, rank]`, so 1 process x 2 accumulation steps sees the same windows per step as
    2 processes x 1 step."""

    def __init__(self, n_windows: int, micro_batch: int, grad_accum: int, world_size: int, seed):
        self.n = n_windows
        self.micro, self.accum, self.world = micro_batch, grad_accum, world_size
        self.global_batch = micro_batch * grad_accum * world_size
        self.seed = seed
        self.steps_per_epoch = n_windows // self.global_batch
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"the train split has {n_windows} windows, fewer than one global batch of "
                f"{self.global_batch} (micro_batch_size x grad_accum x processes); lower the "
                "batch size or add data"
            )
        self._cache: tuple[int, np.ndarray] | None = None

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def windows(self, step: int) -> np.ndarray:
        """Window indices of `step`. # (grad_accum, world_size, micro_batch)"""
        epoch, k = divmod(step, self.steps_per_epoch)
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, epoch_permutation(self.seed, epoch, self.n))
        gb = self.global_batch
        idx = self._cache[1][k * gb : (k + 1) * gb]
        return idx.reshape(self.accum, self.world, self.micro)


def causal_labels(tokens: torch.Tensor, positions: torch.Tensor, pad_id: int | None):
    """Targets for next-token prediction inside each packed sequence. # (B,T) -> (B,T)

    labels[:, t] is the token that logits[:, t - 1] must predict (the HF convention, shifted
    by the loss): IGNORE_INDEX where token t starts a new sequence (nothing before it in the
    same CDS) or is padding."""
    labels = tokens.clone()
    starts = torch.ones_like(tokens, dtype=torch.bool)
    starts[:, 1:] = positions[:, 1:] != positions[:, :-1] + 1
    labels[starts] = IGNORE_INDEX
    if pad_id is not None:
        labels[tokens == pad_id] = IGNORE_INDEX
    return labels


class StepBatches(list):
    """The micro-batches of one optimizer step (a list) with `counts`, what the batch source
    computed of them on the host (pretraining: the total target weight and the number of
    non-pad inputs), so the training thread need not."""

    def __init__(self, batches, counts) -> None:
        super().__init__(batches)
        self.counts = counts


class Masker:
    """BERT-style masking as a pure function of (seed, epoch, window index).

    Each maskable token (not special, not padding) is selected with probability
    `mask_prob`; with span k > 1, span starts are drawn with probability
    p_start = 1 - (1 - mask_prob)^(1/k) and each start masks the k tokens from it, so about
    `mask_prob` of tokens are selected. Selected tokens are replaced by [MASK] (80%), a
    random non-special token (10%) or kept (10%); labels hold the original id at selected
    positions and IGNORE_INDEX elsewhere."""

    def __init__(self, meta: dict[str, Any], seed: int, mask_prob: float = 0.15, span: int = 1):
        if meta.get("mask_id") is None:
            raise ConfigError(
                "the corpus tokenizer has no mask token (meta.json mask_id is null); masked-LM "
                "pretraining needs one: rebuild the tokenizer with a [MASK] special token"
            )
        if not 0.0 < mask_prob < 1.0:
            raise ConfigError(f"mask_prob must be in (0, 1), got {mask_prob}")
        self.mask_id = int(meta["mask_id"])
        self.vocab = int(meta["vocab_size"])
        self.special = np.array(special_id_list(meta), dtype=np.int64)
        self.normal = np.setdiff1d(np.arange(self.vocab), self.special)
        self.seed, self.prob, self.span = int(seed), float(mask_prob), max(1, int(span))
        self.p_start = 1.0 - (1.0 - self.prob) ** (1.0 / self.span)

    def __call__(self, tokens: np.ndarray, windows: np.ndarray, salt: int) -> tuple:
        """Mask a batch. tokens # (B, T) int; windows # (B,) window indices; `salt` is the
        epoch for training, a fixed value for evaluation. Returns (inputs, labels) int64."""
        tokens = np.asarray(tokens, dtype=np.int64)
        b, t = tokens.shape
        # Each window's own generator draws, in this order, T doubles for the selection
        # (span starts), T doubles for the action and T indices of random tokens; only
        # the draws are per window, the rest is done on the whole batch at once.
        draws = np.empty((b, 2, t))  # (B, 2, T): selection, action
        picks = np.empty((b, t), dtype=np.int64)  # (B, T)
        for i, window in enumerate(windows):
            rng = np.random.default_rng([self.seed, 0xA5C, int(salt), int(window)])
            rng.random(out=draws[i].reshape(-1))
            picks[i] = rng.integers(0, len(self.normal), t)
        if self.span == 1:
            sel = draws[:, 0] < self.prob
        else:
            # a token is selected if a span starts at it or at one of the span-1 before it
            starts = draws[:, 0] < self.p_start  # (B, T)
            sel = starts.copy()
            for k in range(1, min(self.span, t)):
                sel[:, k:] |= starts[:, :-k]
        sel &= ~np.isin(tokens, self.special)
        action = draws[:, 1]
        labels = np.where(sel, tokens, IGNORE_INDEX)
        inputs = tokens.copy()
        inputs[sel & (action < 0.8)] = self.mask_id
        to_rand = sel & (action >= 0.8) & (action < 0.9)
        inputs[to_rand] = self.normal[picks[to_rand]]
        return inputs, labels


def read_tokenizer_spec(tokenizer_dir: str | Path) -> dict[str, Any] | None:
    """The dnalm tokenizer spec (`{"type": ..., ...}`) saved beside a tokenizer, if any."""
    path = Path(tokenizer_dir) / DNALM_TOKENIZER_JSON
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    spec = data.get("spec", data)
    return spec if isinstance(spec, dict) and "type" in spec else None


def bits_per_nt(loss_sum_nats: float, n_nonspecial_targets: int, nt_per_tok: float) -> float:
    """Total loss converted to bits per nucleotide: the nats of every target (specials
    included) over the nucleotides the non-special targets stand for."""
    n_nt = n_nonspecial_targets * nt_per_tok
    return loss_sum_nats / math.log(2) / n_nt if n_nt else float("nan")


def check_tokenizer_vocab(tokenizer_dir: Path, meta_vocab: int) -> int:
    """Check that the tokenizer folder agrees with the corpus vocabulary size."""

    if not (tokenizer_dir / TOKENIZER_JSON).is_file():
        raise InputFormatError(
            f"{tokenizer_dir}/tokenizer.json: missing; the corpus folder must hold a copy of "
            "its tokenizer (rebuild the corpus)"
        )
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if len(tok) != meta_vocab:
        raise InputFormatError(
            f"{tokenizer_dir}: tokenizer has {len(tok)} tokens but the corpus meta.json says "
            f"vocab_size {meta_vocab}; the corpus was built with another tokenizer, rebuild it"
        )
    return meta_vocab


def corpus_fingerprint(corpus_dir: str | Path, meta: dict[str, Any]) -> dict[str, str]:
    """What identifies the data of a pretraining run: sha256 of meta.json's content
    (tokenizer, block size, packing, split statistics, shard lists) and of the train and
    validation token, position and (where present) lower-case arrays, shard by shard. A
    checkpoint resumes only a run with the same. Each shard's hash is compared with the one
    meta.json recorded when the corpus was built (InputFormatError naming the shard): this
    reads every file anyway, so the check costs nothing more."""
    corpus_dir = Path(corpus_dir)
    text = json.dumps(meta, sort_keys=True, default=str).encode()
    out = {"meta": hashlib.sha256(text).hexdigest()}
    for split in ("train", "validation"):
        h = hashlib.sha256()
        if _legacy(corpus_dir, split):
            files = [(corpus_dir / f"{split}.{kind}.npy", None) for kind in ("tokens", "positions")]
        else:
            info = meta.get(split) or {}
            kinds = KINDS if info.get("has_lowercase") else KINDS[:2]
            files = [
                (corpus_dir / split / f"{shard['name']}.{kind}.npy", shard_record(shard, kind))
                for shard in info.get("shards") or []
                for kind in kinds
            ]
        for path, record in files:
            digest = file_digest(path, "sha256")
            if record is not None and digest != record["sha256"]:
                raise damaged_shard(
                    path, corpus_dir, f"sha256 {digest[:12]}..., but meta.json records "
                    f"{record['sha256'][:12]}..."
                )  # fmt: skip
            h.update(digest.encode())
        out[split] = h.hexdigest()
    return out
