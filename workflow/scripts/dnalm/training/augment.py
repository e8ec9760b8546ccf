"""Augmentations of integer-coded training batches: random shift by cropping, and random
reverse complement (per-base targets reversed with the sequence)."""

from __future__ import annotations

import torch

from dnalm.core.alphabet import reverse_complement_codes
from dnalm.core.errors import ConfigError


def shift_crop(
    batch: dict[str, torch.Tensor], max_shift: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Random-shift augmentation by cropping (see the module docstring): every (B, L, ...)
    entry named codes/y/mask is cropped to (B, L - 2*max_shift, ...) at an offset
    max_shift + s, s uniform in [-max_shift, max_shift] per example."""
    codes = batch["codes"]
    b, length = codes.shape
    width = length - 2 * max_shift
    if max_shift <= 0:
        return batch
    if width < 1:
        raise ConfigError(f"max_shift={max_shift} leaves nothing of {length}-bp sequences")
    shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator)
    idx = (max_shift + shifts).unsqueeze(1) + torch.arange(width)  # (B, W)
    out = dict(batch)
    for key in ("codes", "y", "mask"):
        if key in batch and batch[key].dim() >= 2 and batch[key].shape[1] == length:
            out[key] = torch.gather(batch[key], 1, idx)  # (B, W)
    return out


def random_reverse_complement(
    batch: dict[str, torch.Tensor], generator: torch.Generator, per_base: bool
) -> dict[str, torch.Tensor]:
    """Replace each sequence by its reverse complement with probability 1/2; per-base
    targets and masks are reversed with it, class labels stay."""
    flip = torch.rand(batch["codes"].shape[0], generator=generator) < 0.5  # (B,)
    if not flip.any():
        return batch
    out = dict(batch)
    out["codes"] = torch.where(
        flip[:, None], reverse_complement_codes(batch["codes"]), batch["codes"]
    )
    keys = ("y", "mask") if per_base else ("mask",)
    for key in keys:
        if key in batch:
            out[key] = torch.where(flip[:, None], batch[key].flip(1), batch[key])
    return out
