"""Model presets and construction for the two pretraining objectives.

Architectures (Hugging Face ``transformers``, so every trained folder loads with the Auto
classes offline and without ``trust_remote_code``):

* ``gpt`` (causal LM) is ``OPTForCausalLM``. GPT-2 would be the obvious choice, but its
  ``Conv1D`` layers always carry biases, while the seed configuration has none. OPT is a
  pre-LayerNorm GPT-style decoder with learned absolute positions, tied input/output
  embeddings and ``enable_bias=False`` for every linear layer. Two deviations from a
  nanoGPT ``bias=False`` model, both tiny and checked in tests/test_modeling_models.py:
  the LayerNorms keep their bias vectors (``enable_bias`` only affects linear layers; that
  is 9 x 384 = 3,456 parameters for the seed preset) and OPT's position table has two
  extra, never used rows (OPT adds an offset of 2 to every position id; 768 parameters).
  The activation is set to GELU (OPT's default is ReLU).
* ``mlm`` (masked LM) is ``BertForMaskedLM`` with one token type. BERT's default position
  ids are ``0..T-1`` exactly like ours (ESM, the Nucleotide Transformer architecture, starts
  absolute positions at ``pad_id + 1``, a trap for anyone calling the saved model without
  position ids).

Packed windows: a window holds several CDS whose position ids restart at 0. Neither
architecture turns position ids into a block-diagonal mask by itself in transformers 5.23:
OPT does not pass ``position_ids`` to ``create_causal_mask`` (so the packed-sequence
detection of ``masking_utils`` never runs), and ``create_bidirectional_mask`` ignores
position ids altogether. We therefore always build the 4-D mask ourselves
(:func:`packed_attention_mask`); transformers passes a 4-D mask through unchanged.

Presets use a small architecture-neutral vocabulary of keys (``n_layer``, ``n_head``,
``d_model``, ``d_ff``, ``context``, ``dropout``, ``attention_dropout``, ``bias``,
``tie_embeddings``, ``activation``, ``attn_implementation``); the workflow config names a
preset and may override any of these keys.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    OPTConfig,
    OPTForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)

from dnalm.core.errors import ConfigError

OBJECTIVES = ("gpt", "mlm")

#: Architecture presets per objective. ``context`` is the size of the position table.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "gpt": {
        # Trains in minutes on 2 CPU cores.
        "tiny": {"n_layer": 2, "n_head": 2, "d_model": 64, "context": 512, "dropout": 0.0},
        # The DNA-LLM seed configuration: 4 layers, 4 heads, width 384, context 300, no
        # biases, dropout 0.2, tied embeddings, learned positions (~7.2 M parameters).
        "seed": {"n_layer": 4, "n_head": 4, "d_model": 384, "context": 300, "dropout": 0.2},
        "small": {"n_layer": 6, "n_head": 8, "d_model": 512, "context": 1024, "dropout": 0.1},
        # 12 x 768 (GPT-2 small shape, ~85 M parameters): the MFU benchmark preset.
        "base": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 1024, "dropout": 0.1},
    },
    "mlm": {
        "tiny": {"n_layer": 2, "n_head": 2, "d_model": 64, "context": 512, "dropout": 0.0},
        "small": {"n_layer": 4, "n_head": 4, "d_model": 256, "context": 512, "dropout": 0.1},
        "base": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 1024, "dropout": 0.1},
    },
}

#: Defaults applied under every preset.
ARCH_DEFAULTS: dict[str, Any] = {
    "d_ff": None,  # None: 4 * d_model
    "dropout": 0.0,
    "attention_dropout": None,  # None: same as dropout
    "bias": None,  # None: False for gpt (seed has no biases), True for mlm (BERT)
    "tie_embeddings": True,
    "activation": "gelu",
    "attn_implementation": "sdpa",
}

ARCH_KEYS = frozenset({"n_layer", "n_head", "d_model", "context", *ARCH_DEFAULTS})


def resolve_arch(objective: str, preset: str, overrides: dict | None = None) -> dict[str, Any]:
    """The full architecture dict for `preset` of `objective` with `overrides` applied.

    Raises ConfigError for an unknown objective, preset or key, or inconsistent sizes."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; choose one of {list(OBJECTIVES)}")
    presets = PRESETS[objective]
    if preset not in presets:
        raise ConfigError(
            f"unknown {objective} preset {preset!r}; choose one of {sorted(presets)} "
            "(or pick one and override its keys)"
        )
    arch = {**ARCH_DEFAULTS, **copy.deepcopy(presets[preset])}
    for key, value in (overrides or {}).items():
        if key not in ARCH_KEYS:
            raise ConfigError(
                f"unknown model override {key!r} for preset {objective}/{preset}; "
                f"valid keys: {sorted(ARCH_KEYS)}"
            )
        arch[key] = value
    if arch["d_ff"] is None:
        arch["d_ff"] = 4 * arch["d_model"]
    if arch["attention_dropout"] is None:
        arch["attention_dropout"] = arch["dropout"]
    if arch["bias"] is None:
        arch["bias"] = objective == "mlm"
    if arch["d_model"] % arch["n_head"]:
        raise ConfigError(
            f"model {objective}/{preset}: d_model={arch['d_model']} is not divisible by "
            f"n_head={arch['n_head']}"
        )
    for key in ("n_layer", "n_head", "d_model", "context", "d_ff"):
        if not isinstance(arch[key], int) or arch[key] < 1:
            raise ConfigError(f"model {objective}/{preset}: {key} must be a positive integer")
    return arch


def build_config(
    objective: str, arch: dict[str, Any], vocab_size: int, special_ids: dict[str, int | None]
) -> PretrainedConfig:
    """A transformers config for `arch` (see resolve_arch) and the corpus vocabulary."""
    pad = special_ids.get("pad_id")
    common = {
        "vocab_size": int(vocab_size),
        "pad_token_id": pad,
        "bos_token_id": special_ids.get("bos_id"),
        "eos_token_id": special_ids.get("eos_id"),
        "tie_word_embeddings": bool(arch["tie_embeddings"]),
    }
    if objective == "gpt":
        config = OPTConfig(
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
    else:
        if not arch["bias"]:
            raise ConfigError("mlm models (BERT) always have biases; remove `bias: false`")
        config = BertConfig(
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
    config._attn_implementation = arch["attn_implementation"]
    return config


def build_model(
    objective: str, arch: dict[str, Any], vocab_size: int, special_ids: dict[str, int | None]
) -> PreTrainedModel:
    """A freshly initialised model (initialisation uses the global torch RNG)."""
    config = build_config(objective, arch, vocab_size, special_ids)
    cls = OPTForCausalLM if objective == "gpt" else BertForMaskedLM
    model = cls(config)
    if arch["tie_embeddings"]:
        model.tie_weights()
    return model


def model_context(model: PreTrainedModel) -> int:
    """Number of usable positions of the model's position table."""
    return int(model.config.max_position_embeddings)


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts: `total` (unique tensors, tied weights once), `embedding` (token and
    position tables) and `non_embedding`."""
    seen: set[int] = set()
    total = embedding = 0
    for module in model.modules():
        for param in module.parameters(recurse=False):
            if id(param) in seen:
                continue
            seen.add(id(param))
            total += param.numel()
            if isinstance(module, torch.nn.Embedding):
                embedding += param.numel()
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


def segment_ids(positions: torch.Tensor) -> torch.Tensor:
    """Index of the sequence each token belongs to inside a packed window. # (B, T) -> (B, T)

    A new sequence starts wherever the position id does not continue the previous one by
    exactly 1 (so a pad token, position 0, is a sequence of its own)."""
    first = positions[:, :1] - 1
    diff = torch.diff(positions, prepend=first, dim=-1)
    return (diff != 1).cumsum(-1)


def packed_attention_mask(
    positions: torch.Tensor, causal: bool, attn_implementation: str, dtype: torch.dtype
) -> torch.Tensor:
    """The 4-D attention mask that keeps every packed sequence to itself. # (B, T) -> (B,1,T,T)

    Boolean (True = may attend) for sdpa; additive float (0 or dtype min) for eager,
    which adds the mask to the attention scores; for flex_attention a FlexAttention
    BlockMask with the same rule and no dense (T, T) tensor (dnalm.modeling.attention)."""
    seg = segment_ids(positions)  # (B, T)
    if attn_implementation == "flex_attention":
        from dnalm.modeling.attention import flex_block_mask

        return flex_block_mask(seg, causal)
    allowed = seg[:, :, None] == seg[:, None, :]  # (B, T, T)
    if causal:
        t = positions.shape[1]
        allowed = allowed & torch.ones(t, t, dtype=torch.bool, device=positions.device).tril()
    allowed = allowed[:, None]  # (B, 1, T, T)
    if attn_implementation == "eager":
        zero = torch.zeros((), dtype=dtype, device=positions.device)
        return torch.where(allowed, zero, torch.finfo(dtype).min)
    return allowed


def forward_logits(
    model: PreTrainedModel, tokens: torch.Tensor, positions: torch.Tensor, module=None
) -> torch.Tensor:
    """Logits of a (possibly packed) batch with block-diagonal attention. # (B,T) -> (B,T,V)

    `module` is what to call (a DDP or torch.compile wrapper of `model`); default `model`."""
    causal = model.config.model_type != "bert"
    impl = model.config._attn_implementation or "sdpa"
    dtype = next(model.parameters()).dtype
    if torch.is_autocast_enabled(tokens.device.type):
        dtype = torch.get_autocast_dtype(tokens.device.type)
    if impl == "flex_attention":
        from dnalm.modeling.attention import check_flex_forward

        check_flex_forward(model, tokens.device, module)
    mask = packed_attention_mask(positions, causal, impl, dtype)
    kwargs: dict[str, Any] = {
        "input_ids": tokens,
        "position_ids": positions,
        "attention_mask": mask,
    }
    if causal:
        kwargs["use_cache"] = False
    # `is not None`, not truthiness: a torch.compile wrapper forwards len() to the model,
    # which raises TypeError
    return (module if module is not None else model)(**kwargs).logits


def objective_of(model_or_config) -> str:
    """'gpt' or 'mlm' for a model or config built here."""
    config = getattr(model_or_config, "config", model_or_config)
    return "mlm" if config.model_type == "bert" else "gpt"


def training_flops_per_token(arch: dict[str, Any], n_params_non_embedding: int, seq: int) -> float:
    """Approximate training FLOPs per token: 6 N (forward + backward of the weights) plus the
    attention score/value products, 12 * n_layer * seq * d_model (PaLM appendix B form)."""
    return 6.0 * n_params_non_embedding + 12.0 * arch["n_layer"] * seq * arch["d_model"]


def expected_loss_uniform(vocab_size: int) -> float:
    """Loss (nats/token) of a uniform guess over the vocabulary: a sanity bound at step 0."""
    return math.log(vocab_size)
