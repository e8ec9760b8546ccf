"""``modernbert``: ``ModernBertForMaskedLM``: rotary positions, GeGLU MLP, no biases, local
(sliding window of ``local_attention`` tokens) attention in every layer but every
``global_attn_every_n_layers``-th, which is global.

Packed windows: ModernBERT takes a mapping ``{"full_attention": mask, "sliding_attention":
mask}`` instead of one 4-D mask: a single 4-D mask would be used unchanged for its local
layers as well, dropping the sliding window, so we add the window to the second mask
ourselves (:func:`modernbert_masks`)."""

from __future__ import annotations

from typing import Any

import torch
from transformers import ModernBertConfig, ModernBertForMaskedLM, PretrainedConfig

from dnalm.core.errors import ConfigError
from dnalm.modeling.models import packed_attention_mask

MODEL_CLASS = ModernBertForMaskedLM


def check(arch: dict[str, Any], name: str) -> None:
    if arch["attn_implementation"] == "flex_attention":
        # its sliding-window layers take a second mask; on CPU the pair crashes the process
        raise ConfigError(
            "model override attn_implementation='flex_attention' does not apply to modernbert "
            "(its local and global layers take two dense masks); use sdpa or eager"
        )


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    bias = bool(arch["bias"])
    every = int(arch["global_attn_every_n_layers"])
    return ModernBertConfig(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        num_attention_heads=arch["n_head"],
        intermediate_size=arch["d_ff"],
        hidden_activation=arch["activation"],
        max_position_embeddings=arch["context"],
        attention_dropout=arch["attention_dropout"],
        embedding_dropout=arch["dropout"],
        mlp_dropout=arch["dropout"],
        attention_bias=bias,
        mlp_bias=bias,
        norm_bias=bias,
        local_attention=int(arch["local_attention"]),
        layer_types=[
            "full_attention" if i % every == 0 else "sliding_attention"
            for i in range(arch["n_layer"])
        ],
        cls_token_id=special_ids.get("cls_id", special_ids.get("bos_id")),
        sep_token_id=special_ids.get("sep_id", special_ids.get("eos_id")),
        **common,
    )


def forward_kwargs(
    model, positions: torch.Tensor, attn_implementation: str, dtype: torch.dtype
) -> dict[str, Any]:
    return {
        "position_ids": positions,
        "attention_mask": modernbert_masks(positions, model.config, attn_implementation, dtype),
    }


def modernbert_masks(
    positions: torch.Tensor, config, attn_implementation: str, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """ModernBERT's per-layer-type masks of a packed batch: block-diagonal for its global
    layers, block-diagonal and within ``local_attention // 2`` tokens either side (the
    window transformers' own sliding mask uses) for its local layers."""
    full = packed_attention_mask(positions, False, "sdpa", dtype)  # (B, 1, T, T) bool
    t = positions.shape[1]
    idx = torch.arange(t, device=positions.device)
    near = (idx[:, None] - idx[None, :]).abs() <= int(config.local_attention) // 2  # (T, T)
    local = full & near
    if attn_implementation == "eager":
        zero = torch.zeros((), dtype=dtype, device=positions.device)
        low = torch.finfo(dtype).min
        full, local = torch.where(full, zero, low), torch.where(local, zero, low)
    return {"full_attention": full, "sliding_attention": local}
