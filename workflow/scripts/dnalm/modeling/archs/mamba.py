"""``mamba``: ``MambaForCausalLM`` (selective state space, no attention, no position table).
Without the ``mamba-ssm`` CUDA kernels transformers runs its reference PyTorch path, which is
what a CPU uses."""

from __future__ import annotations

from typing import Any

from transformers import MambaConfig, MambaForCausalLM, PretrainedConfig

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
