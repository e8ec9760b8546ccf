"""``llama``: ``LlamaForCausalLM``: rotary positions, SwiGLU MLP, RMSNorm, no biases."""

from __future__ import annotations

from typing import Any

from transformers import LlamaConfig, LlamaForCausalLM, PretrainedConfig

MODEL_CLASS = LlamaForCausalLM


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    bias = bool(arch["bias"])
    return LlamaConfig(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        num_attention_heads=arch["n_head"],
        intermediate_size=arch["d_ff"],
        hidden_act=arch["activation"],
        max_position_embeddings=arch["context"],
        attention_dropout=arch["attention_dropout"],
        attention_bias=bias,
        mlp_bias=bias,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        **common,
    )
