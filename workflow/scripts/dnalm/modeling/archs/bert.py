"""``bert``: ``BertForMaskedLM`` with one token type, the default masked architecture. BERT's
default position ids are ``0..T-1`` exactly like ours."""

from __future__ import annotations

from typing import Any

from transformers import BertConfig, BertForMaskedLM, PretrainedConfig

from dnalm.core.errors import ConfigError

MODEL_CLASS = BertForMaskedLM

_BIAS = "mlm models (BERT) always have biases; remove `bias: false`"


def check(arch: dict[str, Any], name: str) -> None:
    if not arch["bias"]:
        raise ConfigError(_BIAS)


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    if not bool(arch["bias"]):
        raise ConfigError(_BIAS)
    return BertConfig(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        num_attention_heads=arch["n_head"],
        intermediate_size=arch["d_ff"],
        max_position_embeddings=arch["context"],
        hidden_dropout_prob=arch["dropout"],
        attention_probs_dropout_prob=arch["attention_dropout"],
        hidden_act=arch["activation"],
        type_vocab_size=1,
        layer_norm_eps=1e-12,
        **common,
    )
