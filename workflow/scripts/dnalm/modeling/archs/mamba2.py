"""``mamba2``: ``Mamba2ForCausalLM`` (state-space duality, multi-head SSM: ``n_head`` heads of
width ``expand * d_model / n_head``, one group). Its reference path runs on CPU with our
shapes (any window length; checked in tests/test_modeling_archs.py)."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import Mamba2Config, Mamba2ForCausalLM, PretrainedConfig

from dnalm.core.errors import ConfigError
from dnalm.modeling.archs.mamba import missing_kernels

log = logging.getLogger(__name__)

MODEL_CLASS = Mamba2ForCausalLM


def check(arch: dict[str, Any], name: str) -> None:
    if (arch["expand"] * arch["d_model"]) % arch["n_head"]:
        raise ConfigError(
            f"model {name}: expand x d_model={arch['expand'] * arch['d_model']} is not "
            f"divisible by n_head={arch['n_head']}"
        )


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    config = Mamba2Config(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        num_heads=arch["n_head"],
        head_dim=arch["expand"] * arch["d_model"] // arch["n_head"],
        n_groups=1,
        state_size=arch["state_size"],
        conv_kernel=arch["conv_kernel"],
        expand=arch["expand"],
        hidden_act=arch["activation"],
        use_bias=bool(arch["bias"]),
        **common,
    )
    config.dnalm_context = int(arch["context"])
    return config


def check_cuda_path(config, device: torch.device, batch: int, tokens: int) -> str | None:
    """On CUDA without mamba-ssm/causal-conv1d: the warning (logged and returned) that
    transformers runs Mamba-2's chunked PyTorch path, slower than the kernels (its memory is
    that of attention-sized chunks, not Mamba's per-token scan, so it is not refused)."""
    missing = missing_kernels()
    if torch.device(device).type != "cuda" or not missing:
        return None
    message = (
        f"mamba2 on {device} without {' and '.join(missing)}: transformers takes its chunked "
        f"PyTorch path at {batch} x {tokens} tokens, several times slower than the kernels; "
        "install them with pip install -e '.[mamba]' --no-build-isolation"
    )
    log.warning("%s", message)
    return message
