"""``esm``: ``EsmForMaskedLM``, the class Nucleotide Transformer (v1) checkpoints load with
natively (``model_type`` esm, no remote code).

ESM's traps, and what we do about them:

* Absolute positions start at ``pad_token_id + 1``: called without position ids, ESM numbers
  the tokens ``pad + 1, pad + 2, ...`` (pad tokens get ``pad``, the position table's padding
  row, which stays zero and gets no gradient). We keep that convention rather than fight it:
  our position ids (0 at every sequence start) are shifted by ``pad + 1`` before the model
  sees them (:func:`forward_kwargs`), and the table has ``context + pad + 1`` rows
  (NT-v1-500m: 1000 usable positions, pad 1, 1002 rows). A saved model called by other code
  without position ids therefore sees the positions it was trained with, and fine-tuning and
  embedding (which pass no position ids) do too. :func:`model_context` reports ``context``.
  With ``position_embedding_type: rotary`` there is no table; positions are rotated as given
  (0 at each sequence start, as ESM's own default ``0..T-1``).
* The embedding layer multiplies its output by ``attention_mask.unsqueeze(-1)``: meant for a
  2-D padding mask, it breaks on our 4-D block-diagonal mask of a packed batch. A forward
  pre-hook on the embeddings (installed by :func:`forward_kwargs`) hands them no mask when the
  mask is not 2-D; the encoder still gets the 4-D mask, which transformers passes through
  unchanged. The only effect is that pad tokens' embeddings are not zeroed, and pad tokens
  form segments of their own that no other token attends to.
* ``token_dropout`` (ESM-2 and NT-v1 set it) zeroes [MASK] embeddings and rescales the rest by
  the observed mask ratio against a hard-coded 0.15 x 0.8: off here (our masking rate is a
  setting, and BERT-style 80/10/10 masking does its job).
* ``emb_layer_norm_before`` is False, as in NT-v1 (the encoder's final LayerNorm,
  ``emb_layer_norm_after``, is always there).
* Special tokens come from our tokenizer: ``pad_token_id`` (required: it is the padding row of
  both tables) and ``mask_token_id``.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import EsmConfig, EsmForMaskedLM, PretrainedConfig

from dnalm.core.errors import ConfigError
from dnalm.modeling.models import packed_attention_mask

MODEL_CLASS = EsmForMaskedLM

POSITION_TYPES = ("absolute", "rotary")


def check(arch: dict[str, Any], name: str) -> None:
    if arch["position_embedding_type"] not in POSITION_TYPES:
        raise ConfigError(
            f"model {name}: position_embedding_type must be one of {', '.join(POSITION_TYPES)}, "
            f"got {arch['position_embedding_type']!r}"
        )


def _offset(config) -> int:
    """How far ESM's absolute positions are shifted from ours (pad + 1; 0 for rotary)."""
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return 0
    pad = getattr(config, "pad_token_id", None)
    return 0 if pad is None else int(pad) + 1


def build_config(
    arch: dict[str, Any], common: dict[str, Any], special_ids: dict[str, int | None]
) -> PretrainedConfig:
    if common.get("pad_token_id") is None:
        raise ConfigError("arch esm needs a tokenizer with a padding token ([PAD])")
    positions = arch["position_embedding_type"]
    pad = int(common["pad_token_id"])
    context = int(arch["context"])
    return EsmConfig(
        hidden_size=arch["d_model"],
        num_hidden_layers=arch["n_layer"],
        num_attention_heads=arch["n_head"],
        intermediate_size=arch["d_ff"],
        hidden_dropout_prob=arch["dropout"],
        attention_probs_dropout_prob=arch["attention_dropout"],
        max_position_embeddings=context + pad + 1 if positions == "absolute" else context,
        position_embedding_type=positions,
        layer_norm_eps=1e-12,
        emb_layer_norm_before=False,
        token_dropout=False,
        mask_token_id=special_ids.get("mask_id"),
        **common,
    )


def model_context(config) -> int:
    """Usable positions: the table's rows less ESM's offset (pad + 1) for absolute positions."""
    return int(config.max_position_embeddings) - _offset(config)


def _embeddings_without_4d_mask(module, args, kwargs):
    mask = kwargs.get("attention_mask")
    if mask is not None and not (isinstance(mask, torch.Tensor) and mask.dim() == 2):
        return args, {**kwargs, "attention_mask": None}
    return None


def forward_kwargs(
    model, positions: torch.Tensor, attn_implementation: str, dtype: torch.dtype
) -> dict[str, Any]:
    """Our positions shifted to ESM's and the packed 4-D mask (see the module docstring)."""
    embeddings = model.base_model.embeddings
    if not getattr(embeddings, "_dnalm_mask_hook", False):
        embeddings.register_forward_pre_hook(_embeddings_without_4d_mask, with_kwargs=True)
        embeddings._dnalm_mask_hook = True
    return {
        "position_ids": positions + _offset(model.config),
        "attention_mask": packed_attention_mask(positions, False, attn_implementation, dtype),
    }
