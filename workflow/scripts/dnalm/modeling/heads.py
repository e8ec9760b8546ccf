"""Task heads: small ``nn.Module``s of ours that sit on a backbone's hidden states (a
pretrained transformer's last layer, or the one-hot CNN's first convolution).

- :class:`PerBaseRegressionHead`: one score per position (per-base regression such as the
  TF-binding task). Same layer stack as the DNA-LLM project's regression head:
  LayerNorm(E) -> Conv1d(E->128, kernel 11, same padding) -> GELU -> Dropout -> Linear(128->1).
- :func:`tokens_to_bases`: for tokenizers whose tokens span several bases (k-mers, codons,
  BPE), spreads token states back onto bases so that a per-base head sees one vector per
  base; :func:`base_to_token_from_offsets` builds its index from tokenizer offsets.
- :class:`SequenceClassificationHead`: a pooled representation (mean over real tokens, the
  first token as CLS, the last real token, or max) -> Dropout -> Linear to class logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

POOLINGS = ("mean", "cls", "last", "max")


class MaskedStandardize(nn.Module):
    """Parameter-free per-feature standardisation of per-position states (B, T, E) over the
    real positions (BatchNorm over batch and length without affine, pads excluded): batch
    statistics in training, running statistics in eval (set by the first training batch,
    then an exponential moving average)."""

    def __init__(self, embed_dim: int, momentum: float = 0.1, eps: float = 1e-6) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(embed_dim))
        self.register_buffer("running_var", torch.ones(embed_dim))
        self.register_buffer("tracked", torch.zeros((), dtype=torch.long))

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = h.float()
        if self.training:
            w = torch.ones(h.shape[:2], device=h.device) if mask is None else mask.float()
            n = w.sum().clamp(min=2.0)
            mean = (h * w.unsqueeze(-1)).sum((0, 1)) / n  # (E,)
            var = (((h - mean) ** 2) * w.unsqueeze(-1)).sum((0, 1)) / (n - 1)  # (E,)
            with torch.no_grad():  # the first batch sets them: feature variances may be tiny
                rate = 1.0 if int(self.tracked) == 0 else self.momentum
                self.running_mean.lerp_(mean.detach(), rate)
                self.running_var.lerp_(var.detach(), rate)
                self.tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        return (h - mean) / torch.sqrt(var + self.eps)


HEAD_NORMS = ("layernorm", "standardize")


class PerBaseRegressionHead(nn.Module):
    """Per-position regression on hidden states: (B, T, E) -> (B, T).

    LayerNorm over the features (DNA-LLM's head; ``norm="standardize"`` instead standardises
    each feature over positions, :class:`MaskedStandardize`), a 'same'-padded convolution
    along the sequence (so each score sees `kernel_size` neighbouring positions: 11 covers a
    ~10-bp motif), GELU, dropout, and a linear map to one score. With ``mask`` (B, T)
    (1 = real position), the normalised states of padded positions are zeroed before the
    convolution, so padding contributes exactly what the convolution's own zero padding at
    the ends does.

    Why ``standardize``: a pretrained language model's states can be strongly anisotropic
    (a frozen tiny GPT's last layer had a participation ratio of ~2 directions against ~15
    for the same architecture with random weights; benchmarks/diagnose_frozen_features.py).
    LayerNorm rescales each position as a whole, so the low-variance directions that carry
    the base information stay tiny for the convolution; per-feature standardisation, like the
    StandardScaler of a linear probe, puts every direction on one scale.
    """

    def __init__(
        self,
        embed_dim: int,
        hidden_dim: int = 128,
        kernel_size: int = 11,
        dropout: float = 0.2,
        norm: str = "layernorm",
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd for 'same' padding, got {kernel_size}")
        if norm not in HEAD_NORMS:
            raise ValueError(f"norm must be one of {HEAD_NORMS}, got {norm!r}")
        self.masked_norm = norm == "standardize"
        self.norm = MaskedStandardize(embed_dim) if self.masked_norm else nn.LayerNorm(embed_dim)
        self.conv = nn.Conv1d(embed_dim, hidden_dim, kernel_size, padding=kernel_size // 2)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, 1)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(hidden, mask) if self.masked_norm else self.norm(hidden)  # (B, T, E)
        if mask is not None:
            h = h * mask.unsqueeze(-1).to(h.dtype)  # (B, T, E), pads -> 0
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)  # (B, E, T) -> (B, H, T) -> (B, T, H)
        h = self.dropout(self.act(h))  # (B, T, H)
        return self.out(h).squeeze(-1)  # (B, T, 1) -> (B, T)


def tokens_to_bases(hidden: torch.Tensor, base_to_token: torch.Tensor) -> torch.Tensor:
    """Per-base states from per-token states: (B, T, E), (B, L) -> (B, L, E).

    ``base_to_token[b, i]`` is the index (into the T token positions of sequence b) of the
    token whose state base i takes; several bases may point at one token (a 6-mer token's
    state is repeated for its six bases). An index of -1 marks a base no token covers (a
    tail the tokenizer dropped, or padding beyond the sequence): it gets a zero vector.
    Gradients flow back to every token state used. Use :func:`base_to_token_from_offsets`
    to build the index from a tokenizer's offsets.
    """
    if hidden.dim() != 3 or base_to_token.dim() != 2:
        raise ValueError(
            f"expected hidden (B, T, E) and base_to_token (B, L), got {tuple(hidden.shape)} "
            f"and {tuple(base_to_token.shape)}"
        )
    if hidden.shape[0] != base_to_token.shape[0]:
        raise ValueError(f"batch sizes differ: {hidden.shape[0]} vs {base_to_token.shape[0]}")
    n_tok = hidden.shape[1]
    idx = base_to_token.long()
    if idx.numel() and (int(idx.max()) >= n_tok or int(idx.min()) < -1):
        raise ValueError(f"base_to_token indices must lie in [-1, {n_tok - 1}]")
    covered = idx >= 0  # (B, L)
    gather_idx = idx.clamp(min=0).unsqueeze(-1).expand(-1, -1, hidden.shape[-1])  # (B, L, E)
    out = torch.gather(hidden, 1, gather_idx)  # (B, L, E)
    return out * covered.unsqueeze(-1).to(out.dtype)


def base_to_token_from_offsets(
    offsets: Sequence[tuple[int, int]] | np.ndarray, length: int
) -> np.ndarray:
    """Index array (length,) for :func:`tokens_to_bases` from character offsets.

    offsets: (start, end) base span of each token position, as returned by a fast HF
    tokenizer with ``return_offsets_mapping=True``; special and pad tokens have empty spans
    (start == end) and cover nothing. Each base takes the *first* token covering it. For
    non-overlapping tokenizers (nucleotide, k-mer, codon, BPE) exactly one token covers a base.
    For overlapping k-mers base i (i >= k-1) thus maps to the k-mer ending at i, the first
    token a causal model has seen base i in. Bases no token covers get -1.
    """
    out = np.full(length, -1, dtype=np.int64)
    for t, (start, end) in enumerate(np.asarray(offsets, dtype=np.int64).reshape(-1, 2)):
        if end <= start:
            continue
        if start < 0 or end > length:
            raise ValueError(f"token {t} spans [{start}, {end}) outside a sequence of {length}")
        span = out[start:end]
        span[span < 0] = t
    return out


def pool(
    hidden: torch.Tensor, mask: torch.Tensor | None = None, mode: str = "mean"
) -> torch.Tensor:
    """Pool token states into one vector per sequence: (B, T, E), (B, T) -> (B, E).

    mode: "mean" over real tokens (mask == 1; pads ignored), "cls" = position 0 (BERT-style
    models put a CLS token there), "last" = the last real token (the natural summary of a
    causal model), "max" = feature-wise max over real tokens. Without a mask every position
    is real. A sequence with no real token pools to zeros (mean) instead of NaN.
    """
    if mode not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")
    if mode == "cls":
        return hidden[:, 0]  # (B, E)
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
    m = mask.to(torch.bool)  # (B, T)
    if mode == "mean":
        w = m.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)  # (B, E)
    if mode == "max":
        neg = torch.finfo(hidden.dtype).min
        return hidden.masked_fill(~m.unsqueeze(-1), neg).max(dim=1).values  # (B, E)
    # last real token: index of the last True per row (rows may be left- or right-padded)
    pos = torch.arange(hidden.shape[1], device=hidden.device).expand_as(m)  # (B, T)
    last = torch.where(m, pos, torch.zeros_like(pos)).max(dim=1).values  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, E)


class SequenceClassificationHead(nn.Module):
    """Sequence classification on pooled states: (B, T, E), mask (B, T) -> logits (B, C).

    pooling: see :func:`pool` ("mean" ignores pad tokens through the attention mask; "cls"
    takes position 0). Then dropout and one linear layer, so the head adds only
    E * C + C parameters and a probe of the backbone's representation stays a linear one.
    ``standardize`` puts a parameter-free per-feature standardisation (BatchNorm without
    affine) before the dropout: the pooled states of a small or briefly trained language
    model can differ between sequences by a tiny fraction of their common magnitude
    (measured on the CI GPT: across-sequence std 0.0035 against a mean magnitude of 1.02),
    which a linear layer trained for a few hundred steps cannot pick up, just as a
    logistic-regression probe needs its StandardScaler.
    n_classes = 1 gives one output per sequence (sequence regression).
    """

    def __init__(
        self,
        embed_dim: int,
        n_classes: int,
        pooling: str = "mean",
        dropout: float = 0.1,
        standardize: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if n_classes < 1:
            raise ValueError(f"need at least 1 output, got {n_classes}")
        self.pooling = pooling
        # Per-feature standardisation across sequences (batch statistics in training,
        # running statistics in eval; no learned scale), the head's StandardScaler. A tiny
        # eps: the across-sequence variance can itself be ~1e-5 (see the class docstring).
        self.norm = nn.BatchNorm1d(embed_dim, eps=1e-8, affine=False) if standardize else None
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(embed_dim, n_classes)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = pool(hidden, mask, self.pooling)  # (B, E)
        if self.norm is not None:
            if self.training and pooled.shape[0] > 1:
                pooled = self.norm(pooled.float())  # (B, E)
            else:  # eval, or a batch of one (no batch statistics): running statistics
                pooled = nn.functional.batch_norm(
                    pooled.float(), self.norm.running_mean, self.norm.running_var,
                    training=False, eps=self.norm.eps,
                )  # fmt: skip
        return self.out(self.dropout(pooled))  # (B, C)
