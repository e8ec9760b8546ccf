"""``opt``: ``OPTForCausalLM``, the default causal architecture.

GPT-2 would be the obvious choice, but its ``Conv1D`` layers always carry biases, while the
seed configuration has none. OPT is a pre-LayerNorm GPT-style decoder with learned absolute
positions, tied input/output embeddings and ``enable_bias=False`` for every linear layer. Two
deviations from a nanoGPT ``bias=False`` model, both tiny and checked in
tests/test_modeling_models.py: the LayerNorms keep their bias vectors (``enable_bias`` only
affects linear layers; that is 9 x 384 = 3,456 parameters for the seed preset) and OPT's
position table has two extra, never used rows (OPT adds an offset of 2 to every position id;
768 parameters). The activation is set to GELU (OPT's default is ReLU).
"""

from __future__ import annotations

from typing import Any

from transformers import OPTConfig, OPTForCausalLM, PretrainedConfig

MODEL_CLASS = OPTForCausalLM


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    return OPTConfig(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        num_attention_heads=arch["n_head"],
        ffn_dim=arch["d_ff"],
        max_position_embeddings=arch["context"],
        dropout=arch["dropout"],
        attention_dropout=arch["attention_dropout"],
        activation_dropout=0.0,
        activation_function=arch["activation"],
        enable_bias=bool(arch["bias"]),
        do_layer_norm_before=True,
        word_embed_proj_dim=arch["d_model"],
        **common,
    )
