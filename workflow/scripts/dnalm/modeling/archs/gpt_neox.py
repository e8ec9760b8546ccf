"""``gpt_neox``: ``GPTNeoXForCausalLM`` (Pythia): rotary positions on a quarter of each head,
attention and MLP in parallel, biases, untied output embeddings."""

from __future__ import annotations

from typing import Any

from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PretrainedConfig

from dnalm.core.errors import ConfigError

MODEL_CLASS = GPTNeoXForCausalLM


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    if not bool(arch["bias"]):
        raise ConfigError("gpt_neox has biases in every dense layer; remove `bias: false`")
    return GPTNeoXConfig(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        num_attention_heads=arch["n_head"],
        intermediate_size=arch["d_ff"],
        hidden_act=arch["activation"],
        max_position_embeddings=arch["context"],
        hidden_dropout=arch["dropout"],
        attention_dropout=arch["attention_dropout"],
        use_parallel_residual=True,
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.25,
        },
        attention_bias=True,
        **common,
    )
