"""Packed-window attention without a dense T x T mask: FlexAttention block masks.

A packed window holds several sequences whose position ids restart at 0
(:func:`dnalm.modeling.models.segment_ids`). The default path builds a dense boolean (sdpa)
or additive (eager) ``(B, 1, T, T)`` mask (:func:`dnalm.modeling.models.packed_attention_mask`).
On CUDA, pretraining on a packed corpus uses flex attention by default where the
architecture can train with it (:func:`dnalm.modeling.models.default_attention`; a model
entry's own ``attn_implementation`` wins), with the block mask compiled; CPU keeps sdpa.
With the architecture key ``attn_implementation: flex_attention`` the same rule — a token
attends to the tokens of its own segment (and, for causal models, not to later ones) — is a
``torch.nn.attention.flex_attention.BlockMask`` built by ``create_block_mask`` from the
segment ids; its sparse block structure lets the fused kernel skip whole blocks of other
segments. Transformers 5.23 takes it unchanged as ``attention_mask`` for OPT and BERT: the
mask helpers of ``masking_utils`` return any 4-D mask (a BlockMask has a 4-D ``shape``) as
it is, and ``integrations/flex_attention.py`` passes a BlockMask to ``flex_attention`` as
``block_mask``. Any architecture whose transformers class supports flex attention
(``_supports_flex_attn``) works the same way.

What torch 2.13 allows (measured on CPU, tests/test_modeling_attention.py):

* CPU forward works, both eager ``flex_attention`` (unfused: it materialises the scores,
  with a warning) and compiled (transformers always wraps it in ``torch.compile``; the
  first call compiles for a few seconds). Logits equal the dense-mask paths to float
  tolerance.
* CPU backward does not exist (``NotImplementedError: FlexAttention does not support
  backward on CPU``): training with flex attention on CPU is refused by
  :func:`check_flex_training` with the fix (``sdpa``).
* Attention dropout: transformers' flex path refuses ``dropout > 0`` while training; also
  refused up front.
* ``torch.compile`` of the whole model (``pretrain.train.compile``) with flex: the block
  mask is built outside the compiled module and passed in as an input; transformers then
  calls ``flex_attention`` inside the traced graph (no nested compile). On CPU this fails
  in torch 2.13 even for inference (inductor's CPU flex template raises ``LoweringException:
  ValueError: not enough values to unpack`` while lowering the model's graph, although
  ``torch.compile(flex_attention)`` alone works), so :func:`check_flex_forward` refuses a
  compiled module on CPU with that explanation. On CUDA it is the path PyTorch documents
  for flex attention; it could not be run here (no GPU).
* The choice is not written to a model folder's ``config.json``: a folder pretrained with
  flex attention loads with transformers' default (sdpa), so fine-tuning, embedding and
  ``dnalm score`` of it on CPU are unaffected.
* The refusals come at the first forward pass that would hit them (the first training step
  of a run, before any update), with the fix in the message.
"""

from __future__ import annotations

import functools
from typing import Any

import torch

from dnalm.core.errors import ConfigError

#: values of the architecture key ``attn_implementation``
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flex_attention")


def check_attn_implementation(name: str, where: str = "attn_implementation") -> str:
    """`name` when it is one of ATTN_IMPLEMENTATIONS, else a ConfigError naming `where`."""
    if name not in ATTN_IMPLEMENTATIONS:
        raise ConfigError(f"{where}: unknown {name!r}; choose one of {list(ATTN_IMPLEMENTATIONS)}")
    return name


def flex_available() -> bool:
    """Whether this torch has ``torch.nn.attention.flex_attention``."""
    try:
        # lazy: probes whether this torch build has flex attention
        import torch.nn.attention.flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def flex_block_mask(segments: torch.Tensor, causal: bool) -> Any:
    """A FlexAttention BlockMask keeping every packed segment to itself. # (B, T) -> BlockMask

    `segments`: segment ids (B, T) (:func:`dnalm.modeling.models.segment_ids`). The mask is
    the same rule as the dense packed mask: same segment and, if `causal`, key <= query."""
    if not flex_available():
        raise ConfigError(
            f"attn_implementation flex_attention needs torch.nn.attention.flex_attention, "
            f"which torch {torch.__version__} lacks; use sdpa"
        )
    # lazy: flex attention loads only when a block mask is built
    from torch.nn.attention.flex_attention import create_block_mask

    seg = segments

    def same_segment(b, h, q_idx, kv_idx):
        return seg[b, q_idx] == seg[b, kv_idx]

    def causal_same_segment(b, h, q_idx, kv_idx):
        return (seg[b, q_idx] == seg[b, kv_idx]) & (kv_idx <= q_idx)

    b, t = seg.shape
    # compiled on CUDA (the mask's blocks computed by a fused kernel, not a (B, T, T) tensor
    # in eager steps); eager on CPU, where inductor's flex lowering fails (module docstring)
    make = _compiled_create_block_mask() if seg.device.type == "cuda" else create_block_mask
    return make(causal_same_segment if causal else same_segment, b, None, t, t, device=seg.device)


@functools.cache
def _compiled_create_block_mask() -> Any:
    """``torch.compile(create_block_mask)``, made once per process."""
    # lazy: flex attention loads only when a block mask is built
    from torch.nn.attention.flex_attention import create_block_mask

    return torch.compile(create_block_mask)


def check_flex_training(
    attn_implementation: str, device: torch.device | str, attention_dropout: float
) -> None:
    """Refuse flex attention where it cannot train (module docstring): on CPU (no backward in
    torch 2.13) and with attention dropout. A no-op for the other implementations."""
    if attn_implementation != "flex_attention":
        return
    if torch.device(device).type == "cpu":
        raise ConfigError(
            "attn_implementation flex_attention cannot train on CPU: torch "
            f"{torch.__version__} has no FlexAttention backward on CPU (forward, i.e. "
            "evaluation and inference, works); use attn_implementation: sdpa to train on CPU"
        )
    if attention_dropout and float(attention_dropout) > 0:
        raise ConfigError(
            f"attn_implementation flex_attention does not support attention dropout "
            f"(attention_dropout={attention_dropout}); set attention_dropout: 0 or use sdpa"
        )


def check_flex_forward(
    model: torch.nn.Module, device: torch.device, module: torch.nn.Module | None = None
) -> None:
    """Before a flex forward pass of `model` (called through `module`, a DDP or
    torch.compile wrapper, when given): refuse a compiled module on CPU, and a pass that
    would need a backward where none exists (gradients enabled and trainable weights, see
    :func:`check_flex_training`)."""
    compiled = module is not None and isinstance(module, torch._dynamo.eval_frame.OptimizedModule)
    if compiled and torch.device(device).type == "cpu":
        raise ConfigError(
            "attn_implementation flex_attention with torch.compile (pretrain.train.compile) "
            f"fails on CPU in torch {torch.__version__} (inductor cannot lower flex attention "
            "inside a compiled model on CPU); turn compile off or use sdpa"
        )
    if not torch.is_grad_enabled():
        return
    if not any(p.requires_grad for p in model.parameters()):
        return
    dropout = float(getattr(model.config, "attention_dropout", 0.0) or 0.0)
    dropout = max(dropout, float(getattr(model.config, "attention_probs_dropout_prob", 0.0) or 0))
    check_flex_training("flex_attention", device, dropout if model.training else 0.0)
