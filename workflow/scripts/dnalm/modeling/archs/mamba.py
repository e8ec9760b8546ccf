"""``mamba``: ``MambaForCausalLM`` (selective state space, no attention, no position table).
Without the ``mamba-ssm`` and ``causal-conv1d`` CUDA kernels transformers runs its reference
PyTorch path, which is what a CPU uses: a sequential scan, one step per token, that keeps
(batch, inner width, tokens, state) tensors of every layer for the backward pass. On CUDA
:func:`check_cuda_path` says so before training, with a memory estimate, and refuses a run
whose estimate exceeds the GPU (install the kernels: ``pip install -e '.[mamba]'``)."""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch
from transformers import MambaConfig, MambaForCausalLM, PretrainedConfig

from dnalm.core.errors import ConfigError

log = logging.getLogger(__name__)

#: The packages whose kernels transformers' Mamba uses when they are importable.
KERNEL_PACKAGES = ("mamba_ssm", "causal_conv1d")
#: fp32 tensors of shape (batch, inner width, tokens, state) that the sequential path keeps
#: per layer for the backward pass (discretised A, B x u, the scan states, and their
#: products): about 4.5 (about 170 GB for 24 layers x width 1536 x state 16 at batch 16 x
#: 1024 tokens).
FALLBACK_TENSORS_PER_LAYER = 4.5
#: Refuse when the estimate exceeds this share of the GPU's memory (else warn).
FALLBACK_REFUSE_SHARE = 0.8

MODEL_CLASS = MambaForCausalLM


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    config = MambaConfig(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        state_size=arch["state_size"],
        conv_kernel=arch["conv_kernel"],
        expand=arch["expand"],
        hidden_act=arch["activation"],
        use_bias=bool(arch["bias"]),
        **common,
    )
    # no position table: the context the model was built for, for model_context
    config.dnalm_context = int(arch["context"])
    return config


def missing_kernels() -> list[str]:
    """The kernel packages that are not importable here (transformers then takes the
    sequential PyTorch path)."""
    return [p for p in KERNEL_PACKAGES if importlib.util.find_spec(p) is None]


def fallback_memory_bytes(config, batch: int, tokens: int) -> int:
    """Activation memory of a training step on the sequential path (estimate)."""
    inner = int(config.intermediate_size)
    per_layer = FALLBACK_TENSORS_PER_LAYER * batch * inner * tokens * int(config.state_size) * 4
    return int(per_layer * int(config.num_hidden_layers))


def check_cuda_path(
    config, device: torch.device, batch: int, tokens: int, gpu_bytes: int | None = None
) -> str | None:
    """On CUDA without the kernels: the warning (logged and returned) with the memory
    estimate of a training step of `batch` x `tokens`, or a ConfigError when the estimate
    exceeds FALLBACK_REFUSE_SHARE of the GPU's memory (`gpu_bytes`; default: the device's).
    None on another device or with the kernels installed."""
    missing = missing_kernels()
    if torch.device(device).type != "cuda" or not missing:
        return None
    need = fallback_memory_bytes(config, batch, tokens)
    if gpu_bytes is None:
        gpu_bytes = int(torch.cuda.get_device_properties(device).total_memory)
    message = (
        f"mamba on {device} without {' and '.join(missing)}: transformers takes its sequential "
        f"PyTorch path (one scan step per token, far slower than the kernels), about "
        f"{need / 1e9:.0f} GB of activations per step at {batch} x {tokens} tokens "
        f"({config.num_hidden_layers} layers, inner width {config.intermediate_size}, state "
        f"{config.state_size}), GPU {gpu_bytes / 1e9:.0f} GB. Install the kernels "
        "(pip install -e '.[mamba]': mamba-ssm and causal-conv1d, built for this CUDA), or "
        "lower micro_batch_size or the corpus block_size"
    )
    if need > FALLBACK_REFUSE_SHARE * gpu_bytes:
        raise ConfigError(message)
    log.warning("%s", message)
    return message
