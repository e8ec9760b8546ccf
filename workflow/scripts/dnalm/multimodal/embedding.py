"""The bi-modal embedding: text tokens from a table, DNA BPE tokens from their bases.

A DNA token is embedded from its letters (DeepEmbed-DNABERT's "BPE-to-base" embedder):

1. :class:`BpeToBase` maps each DNA token id to ``max_bpe_len`` base ids (A C G T N = 1..5,
   0 = padding) and a length. Fixed, it is an index lookup; ``trainable``, each slot holds
   learnable logits over the five bases, initialised so that the softmax puts ~all weight on
   the token's own base, and the base embeddings are mixed by those weights.
   :meth:`BpeToBase.token_bases` decodes the (arg-max) map back to each token's string.
2. a base embedding table (``base_dim``), then :class:`BaseEncoder`, a small pre-norm
   transformer over the bases of one token whose positions are relative: ALiBi (a linear
   distance penalty per head) or rotary (query/key rotation). Neither adds absolute
   positions, so the output of a base does not depend on where the token's bases sit in
   the padded slot (translation equivariance), but it does depend on their order. ALiBi's
   penalty is symmetric (it sees ``|i - j|``), so it cannot tell a token from its reversed
   reading (outputs mirror); rotary sees the signed offset and can.
3. pooling over the token's bases (``mean`` over real bases, ``first``, or ``last``) and a
   linear projection to the encoder's hidden size.

DNA special tokens (no bases) get rows of a small table. Embeddings are computed once per
distinct DNA id in a batch. Text ids (below the offset) index a plain embedding table.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dnalm.core.alphabet import BASES as ACGT
from dnalm.core.errors import ConfigError

#: the bases of a DNA token; base id = index + 1 (0 pads), i.e. core.alphabet code + 1
BASES = ACGT + "N"
POSITIONS = ("alibi", "rotary")
POOLINGS = ("mean", "first", "last")


def base_map(tokens: Sequence[str], max_bpe_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids [V, max_bpe_len] with A C G T N = 1..5 and 0 padding, lengths [V]) of the DNA
    token strings `tokens`; a token with a character outside ACGTN (the specials) gets
    length 0. A token longer than `max_bpe_len` is a ConfigError naming it."""
    ids = torch.zeros(len(tokens), max_bpe_len, dtype=torch.long)
    lengths = torch.zeros(len(tokens), dtype=torch.long)
    for i, tok in enumerate(tokens):
        if not tok or any(c not in BASES for c in tok):
            continue
        if len(tok) > max_bpe_len:
            raise ConfigError(
                f"DNA token {tok!r} (id {i}) has {len(tok)} bases, more than "
                f"dnatext.max_bpe_len = {max_bpe_len}; raise it or leave it unset"
            )
        ids[i, : len(tok)] = torch.tensor([BASES.index(c) + 1 for c in tok])
        lengths[i] = len(tok)
    return ids, lengths


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """The ALiBi head slopes 2^(-8 h / n_heads), h = 1..n_heads."""
    return torch.tensor([2 ** (-8 * (h + 1) / n_heads) for h in range(n_heads)])


def rotate(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding of `x` [..., L, d] (d even) at `positions` [L]."""
    d = x.shape[-1]
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d))
    ang = positions.to(torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return out.flatten(-2)


class BaseLayer(nn.Module):
    """One pre-norm transformer layer with relative positions (ALiBi or rotary)."""

    def __init__(self, dim: int, heads: int, positions: str) -> None:
        super().__init__()
        if dim % heads or (positions == "rotary" and (dim // heads) % 2):
            raise ConfigError(
                f"dnatext.base_dim {dim} must split into {heads} heads (of even size for rotary)"
            )
        self.heads, self.positions = heads, positions
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, length, 3, self.heads, -1).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # n, h, L, dh
        pos = torch.arange(length, device=x.device)
        bias = torch.zeros(n, self.heads, length, length, device=x.device, dtype=x.dtype)
        if self.positions == "rotary":
            q, k = rotate(q, pos), rotate(k, pos)
        else:
            dist = (pos[None, :] - pos[:, None]).abs().to(x.dtype)
            slopes = alibi_slopes(self.heads).to(device=x.device, dtype=x.dtype)
            bias = bias - slopes[None, :, None, None] * dist
        bias = bias.masked_fill(~keep[:, None, None, :], float("-inf"))
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        x = x + self.out(att.transpose(1, 2).reshape(n, length, dim))
        return x + self.ff(self.norm2(x))


class BaseEncoder(nn.Module):
    """The base-wise transformer: `layers` :class:`BaseLayer` and a final LayerNorm."""

    def __init__(self, dim: int, layers: int, heads: int, positions: str) -> None:
        super().__init__()
        if positions not in POSITIONS:
            raise ConfigError(
                f"dnatext.base_positions must be one of {POSITIONS}, got {positions!r}"
            )
        self.layers = nn.ModuleList(BaseLayer(dim, heads, positions) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """`x` [n, L, dim] base embeddings, `keep` [n, L] True for real bases."""
        for layer in self.layers:
            x = layer(x, keep)
        return self.norm(x)


class BpeToBase(nn.Module):
    """DNA token id -> base ids (module docstring, step 1)."""

    def __init__(self, tokens: Sequence[str], max_bpe_len: int, trainable: bool) -> None:
        super().__init__()
        ids, lengths = base_map(tokens, max_bpe_len)
        self.register_buffer("ids", ids)
        self.register_buffer("lengths", lengths)
        self.trainable = trainable
        if trainable:
            logits = F.one_hot(ids, len(BASES) + 1).float() * 8.0
            self.logits = nn.Parameter(logits)

    def token_bases(self) -> list[str]:
        """Each token's bases as the map holds them now (arg-max of a trainable map)."""
        ids = self.logits.argmax(-1) if self.trainable else self.ids
        return [
            "".join(BASES[b - 1] for b in row[:n].tolist() if b > 0)
            for row, n in zip(ids, self.lengths.tolist(), strict=True)
        ]

    def embed(self, token_ids: torch.Tensor, table: nn.Embedding) -> torch.Tensor:
        """Base embeddings [n, max_bpe_len, dim] of DNA tokens `token_ids` [n]."""
        if self.trainable:
            weights = torch.softmax(self.logits[token_ids], dim=-1)
            return weights @ table.weight
        return table(self.ids[token_ids])


class DnaTokenEmbedder(nn.Module):
    """BPE-to-base map, base embedding, base encoder, pooling, projection."""

    def __init__(
        self,
        tokens: Sequence[str],
        hidden: int,
        *,
        max_bpe_len: int,
        base_dim: int = 32,
        base_layers: int = 1,
        base_heads: int = 2,
        positions: str = "alibi",
        pooling: str = "mean",
        trainable_map: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"dnatext.pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.map = BpeToBase(tokens, max_bpe_len, trainable_map)
        self.base_embed = nn.Embedding(len(BASES) + 1, base_dim, padding_idx=0)
        self.encoder = BaseEncoder(base_dim, base_layers, base_heads, positions)
        self.proj = nn.Linear(base_dim, hidden)
        self.special = nn.Embedding(len(tokens), hidden)  # rows used for base-less tokens

    def base_states(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded bases [n, L, base_dim] and the real-base mask [n, L] of `token_ids`."""
        lengths = self.map.lengths[token_ids]
        keep = (
            torch.arange(self.map.ids.shape[1], device=lengths.device)[None, :] < lengths[:, None]
        )
        keep_att = keep | (lengths[:, None] == 0)  # base-less rows attend to padding (unused)
        return self.encoder(self.map.embed(token_ids, self.base_embed), keep_att), keep

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Embeddings [n, hidden] of DNA token ids `token_ids` [n] (unshifted)."""
        states, keep = self.base_states(token_ids)
        lengths = keep.sum(1)
        if self.pooling == "mean":
            pooled = (states * keep[..., None]).sum(1) / lengths.clamp(min=1)[:, None]
        elif self.pooling == "first":
            pooled = states[:, 0]
        else:
            pooled = states[torch.arange(len(token_ids)), (lengths - 1).clamp(min=0)]
        out = self.proj(pooled)
        return torch.where((lengths > 0)[:, None], out, self.special(token_ids))


class BiModalEmbedding(nn.Module):
    """Unified ids -> vectors: ids below `offset` from a text table, the others (minus the
    offset) from :class:`DnaTokenEmbedder`. `offset` 0 and no text table: DNA only."""

    def __init__(self, text_vocab_size: int, dna: DnaTokenEmbedder, hidden: int) -> None:
        super().__init__()
        self.offset = text_vocab_size
        self.text = nn.Embedding(text_vocab_size, hidden) if text_vocab_size else None
        self.dna = dna

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        flat = input_ids.reshape(-1)
        is_dna = flat >= self.offset
        out = None
        if self.text is not None:
            out = self.text(flat.clamp(max=self.offset - 1))
        uniq, inverse = torch.unique(flat[is_dna] - self.offset, return_inverse=True)
        if out is None:
            out = torch.zeros(flat.numel(), self.dna.proj.out_features, device=flat.device)
        if uniq.numel():
            out = out.clone()
            out[is_dna] = self.dna(uniq)[inverse].to(out.dtype)
        return out.view(*input_ids.shape, -1)


def dim_check(hidden: int, heads: int) -> None:
    """The encoder's hidden size must split into its heads."""
    if hidden % heads:
        raise ConfigError(f"dnatext hidden_size {hidden} is not divisible by {heads} heads")


__all__ = [
    "BASES",
    "POOLINGS",
    "POSITIONS",
    "BaseEncoder",
    "BiModalEmbedding",
    "BpeToBase",
    "DnaTokenEmbedder",
    "alibi_slopes",
    "base_map",
]
