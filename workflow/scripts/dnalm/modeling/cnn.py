"""The one-hot CNN of DNA-LLM (per-base regression) and its classifier variant.

Bases are one-hot encoded (A, C, G, T; N and padding = all zeros), a Conv1d(4 -> 128,
kernel 11, same padding) + GELU extracts motif features, and the same head a pretrained
backbone gets sits on top. Parameter count of the per-base model: first conv 4*128*11 + 128
= 5,760; head LayerNorm 2*128 = 256, conv 128*128*11 + 128 = 180,352, linear 128 + 1 = 129;
total **186,497**."""

from __future__ import annotations

import torch
from torch import nn

from dnalm.core.alphabet import BASES
from dnalm.modeling.heads import PerBaseRegressionHead, SequenceClassificationHead


class OneHotCNN(nn.Module):
    """Per-base regression on one-hot DNA: (B, L, 4) -> (B, L).

    Conv1d(4 -> channels, kernel_size, same padding) + GELU, then
    :class:`~dnalm.modeling.heads.PerBaseRegressionHead` on those features. With the defaults this
    is
    the DNA-LLM baseline, 186,497 parameters."""

    def __init__(self, channels: int = 128, kernel_size: int = 11, dropout: float = 0.2) -> None:
        super().__init__()
        self.conv = nn.Conv1d(len(BASES), channels, kernel_size, padding=kernel_size // 2)
        self.act = nn.GELU()
        self.head = PerBaseRegressionHead(channels, channels, kernel_size, dropout)

    def features(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, 4, L) -> (B, L, C)
        if mask is not None:
            h = h * mask.unsqueeze(-1).to(h.dtype)  # (B, L, C)
        return h

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, mask), mask)  # (B, L, C) -> (B, L)


class OneHotCNNClassifier(nn.Module):
    """Sequence classification on one-hot DNA: (B, L, 4), mask (B, L) -> logits (B, n_out).

    The same first convolution as :class:`OneHotCNN`, then a pooled
    :class:`~dnalm.modeling.heads.SequenceClassificationHead`. Default pooling "max" (the strongest
    match of each motif filter anywhere in the sequence, as in DeepBind-style models);
    "mean" averages over real bases. n_out = 1 gives a sequence-regression model."""

    def __init__(
        self,
        n_out: int,
        channels: int = 128,
        kernel_size: int = 11,
        dropout: float = 0.2,
        pooling: str = "max",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(len(BASES), channels, kernel_size, padding=kernel_size // 2)
        self.act = nn.GELU()
        self.head = SequenceClassificationHead(channels, n_out, pooling, dropout)
        self.n_out = n_out

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.act(self.conv(x.transpose(1, 2))).transpose(1, 2)  # (B, L, C)
        return self.head(h, mask)  # (B, n_out)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; shared tensors counted once."""
    seen: dict[int, nn.Parameter] = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return trainable, total
