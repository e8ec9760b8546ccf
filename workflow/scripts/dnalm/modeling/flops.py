"""Training FLOPs per token of an architecture, torch-free (the scaling sweep's summary job
reads it without loading torch)."""

from __future__ import annotations

from typing import Any

from dnalm.kinds.archs import ARCHS

#: state-space architectures (no attention, no position table)
SSM_ARCHS = frozenset(a.name for a in ARCHS if a.state_space)


def training_flops_per_token(arch: dict[str, Any], n_params_non_embedding: int, seq: int) -> float:
    """Approximate training FLOPs per token: 6 N (forward + backward of the weights) plus the
    attention score/value products, 12 * n_layer * seq * d_model (PaLM appendix B form).

    mamba (and mamba2) have no attention; the selective scan costs about
    9 * d_inner * state_size FLOPs per token and layer forward (the Mamba paper's 9 B L D N,
    section 3.3), x 3 for training, on top of 6 N for the projections and the convolution
    (d_inner = expand * d_model). An approximation: mamba2's chunked scan differs in detail."""
    if arch.get("arch") in SSM_ARCHS:
        d_inner = int(arch["expand"]) * int(arch["d_model"])
        scan = 27.0 * arch["n_layer"] * d_inner * int(arch["state_size"])
        return 6.0 * n_params_non_embedding + scan
    return 6.0 * n_params_non_embedding + 12.0 * arch["n_layer"] * seq * arch["d_model"]
