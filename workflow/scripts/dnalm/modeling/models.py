"""Model construction for the two pretraining objectives and their architectures.

Every architecture is a Hugging Face ``transformers`` class, so every trained folder loads with
the Auto classes offline and without ``trust_remote_code``. ``arch`` (a per-model config key
beside ``objective``) picks the class; the default is the objective's default architecture
(``opt`` for ``gpt``, ``bert`` for ``mlm``). What each architecture is (objective, presets,
keys, packing support, LoRA targets) is declared once in :mod:`dnalm.kinds.archs`; how it is
built is its own file, ``dnalm/modeling/archs/<name>.py`` (:mod:`dnalm.modeling.archs`).
This module resolves a preset with its overrides (:func:`resolve_arch`) and dispatches to the
builder (:func:`build_config`, :func:`build_model`, :func:`forward_logits`).

Packed windows: a window holds several CDS whose position ids restart at 0. No architecture
turns position ids into a block-diagonal mask by itself in transformers 5.23 (OPT, GPT-NeoX
and LLaMA do not pass ``position_ids`` to ``create_causal_mask``, so the packed-sequence
detection of ``masking_utils`` never runs; ``create_bidirectional_mask`` ignores position ids
altogether). We therefore always build the 4-D mask ourselves (:func:`packed_attention_mask`)
and pass the position ids too (the rotary models rotate by them, so each CDS starts at
position 0); transformers passes a 4-D mask through unchanged. An architecture whose model
takes the mask or the positions differently says so in its builder (``forward_kwargs``:
ModernBERT's pair of masks, ESM's shifted positions). A state-space model cannot be kept to a
segment: the reference path has no way to reset the state at a position (it accepts no
position ids, and its ``attention_mask`` only zeroes padded inputs), so the state of one CDS
would flow into the next. ``mamba`` and ``mamba2`` therefore refuse packed windows:
pretraining checks the corpus's ``packing`` (:func:`check_packed_support`), the workflow
refuses the combination at dry-run time, and :func:`forward_logits` refuses a batch with a
second sequence in a row. Use ``corpus.packing: padded`` (one sequence, or chunk of one, per
padded window).

Presets use a small architecture-neutral vocabulary of keys (``n_layer``, ``n_head``,
``d_model``, ``d_ff``, ``context``, ``dropout``, ``attention_dropout``, ``bias``,
``tie_embeddings``, ``activation``, ``attn_implementation``) plus a few keys of one
architecture (mamba: ``state_size``, ``conv_kernel``, ``expand``; modernbert:
``local_attention``, ``global_attn_every_n_layers``; esm: ``position_embedding_type``); the
workflow config names a preset and may override any key its architecture uses. A key an
architecture has no use for (``n_head``, ``d_ff`` or ``attn_implementation`` of mamba,
``dropout`` of llama ...) is refused when given as an override, naming the key and the reason
(:attr:`dnalm.kinds.archs.Architecture.refuses`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from transformers import PretrainedConfig, PreTrainedModel

from dnalm.core.errors import ConfigError
from dnalm.kinds.archs import (
    ARCH_DEFAULTS,
    ARCH_KEYS,
    ARCHS,
    MASKED_MODEL_TYPES,
    OBJECTIVES,
    arch_of,
    by_model_type,
    default_arch,
    presets_of,
)
from dnalm.modeling.archs import builder
from dnalm.modeling.attention import check_flex_forward, flex_available, flex_block_mask

__all__ = ["MASKED_MODEL_TYPES", "OBJECTIVES", "arch_of", "presets_of"]

#: the default architecture of each objective
DEFAULT_ARCH = {objective: default_arch(objective) for objective in OBJECTIVES}


def resolve_arch(
    objective: str, preset: str, overrides: dict | None = None, arch: str | None = None
) -> dict[str, Any]:
    """The full architecture dict for `preset` of `objective` (and `arch`, None: the default)
    with `overrides` applied; its ``arch`` entry names the architecture.

    Raises ConfigError for an unknown objective, arch, preset or key, a key the architecture
    does not use, or inconsistent sizes."""
    arch = arch_of(objective, arch)
    kind = ARCHS.get(arch)
    presets = kind.presets
    name = f"{objective}/{preset}" if kind.default else f"{arch}/{preset}"
    if preset not in presets:
        raise ConfigError(
            f"unknown {name.split('/')[0]} preset {preset!r}; choose one of {sorted(presets)} "
            "(or pick one and override its keys)"
        )
    extra = dict(kind.extra_keys)
    out = {
        **ARCH_DEFAULTS,
        **extra,
        **kind.defaults,
        **copy.deepcopy(dict(presets[preset])),
    }
    for key, value in (overrides or {}).items():
        if key not in ARCH_KEYS:
            raise ConfigError(
                f"unknown model override {key!r} for preset {name}; valid keys: {sorted(ARCH_KEYS)}"
            )
        if key in kind.refuses:
            raise ConfigError(
                f"model override {key!r} does not apply to {arch}: {kind.refuses[key]}"
            )
        others = {a.name for a in ARCHS if key in a.extra_keys}
        if others and arch not in others:
            raise ConfigError(
                f"model override {key!r} only applies to {', '.join(sorted(others))}, not {arch}"
            )
        out[key] = value
    sized = [k for k in ("n_head", "d_ff") if not (kind.state_space and k in kind.refuses)]
    if kind.state_space:
        for key in ("n_head", "d_ff"):
            if key not in sized:
                out[key] = None
        out["dropout"] = out["attention_dropout"] = 0.0
    else:
        if out["d_ff"] is None:
            d = out["d_model"]
            out["d_ff"] = 16 * math.ceil(8 * d / 3 / 16) if kind.d_ff_rule == "swiglu" else 4 * d
        if out["attention_dropout"] is None:
            out["attention_dropout"] = out["dropout"]
    sizes = [k for k, v in extra.items() if isinstance(v, int)]  # an arch's own size keys
    for key in ["n_layer", "d_model", "context", *sizes, *sized]:
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise ConfigError(f"model {name}: {key} must be a positive integer")
    if not kind.state_space and out["d_model"] % out["n_head"]:
        raise ConfigError(
            f"model {name}: d_model={out['d_model']} is not divisible by n_head={out['n_head']}"
        )
    check = getattr(builder(arch), "check", None)
    if check is not None:
        check(out, name)
    out["arch"] = arch
    return out


def _arch_name(objective: str, arch: dict[str, Any]) -> str:
    return arch.get("arch") or DEFAULT_ARCH[objective]


def build_config(
    objective: str, arch: dict[str, Any], vocab_size: int, special_ids: dict[str, int | None]
) -> PretrainedConfig:
    """A transformers config for `arch` (see resolve_arch) and the corpus vocabulary."""
    name = arch_of(objective, _arch_name(objective, arch))
    common = {
        "vocab_size": int(vocab_size),
        "pad_token_id": special_ids.get("pad_id"),
        "bos_token_id": special_ids.get("bos_id"),
        "eos_token_id": special_ids.get("eos_id"),
        "tie_word_embeddings": bool(arch["tie_embeddings"]),
    }
    config = builder(name).build_config(arch, common, special_ids)
    if not ARCHS.get(name).state_space:
        config._attn_implementation = arch["attn_implementation"]
    return config


def build_model(
    objective: str, arch: dict[str, Any], vocab_size: int, special_ids: dict[str, int | None]
) -> PreTrainedModel:
    """A freshly initialised model (initialisation uses the global torch RNG)."""
    config = build_config(objective, arch, vocab_size, special_ids)
    model = builder(_arch_name(objective, arch)).MODEL_CLASS(config)
    if arch["tie_embeddings"]:
        model.tie_weights()
    return model


def check_packed_support(arch: str, packing: str | None, where: str) -> None:
    """ConfigError when `arch` cannot keep the sequences of a `packing` corpus apart."""
    reason = ARCHS.get(arch).no_packing if arch in ARCHS else None
    if reason and packing == "packed":
        raise ConfigError(
            f"{where}: arch {arch} cannot train on packed windows (corpus packing: packed): "
            f"{reason}, so the sequences would not be kept apart; build the corpus with "
            "`corpus.packing: padded`"
        )


def default_attention(arch: dict[str, Any], device_type: str, packing: str | None) -> str:
    """The attention of a pretraining run whose model entry does not set
    ``attn_implementation``, on a `device_type` ('cuda', 'cpu', ...) and a corpus of
    `packing`: on CUDA, flex attention for packed windows (a compiled block mask built from
    the segment boundaries instead of a dense (B, 1, T, T) mask that keeps sdpa off its
    flash kernel) where the architecture can train with it (transformers' class supports
    it, its builder accepts it, no attention dropout: dnalm.modeling.attention); else the
    architecture's own (sdpa), as on CPU, where flex cannot train."""
    own = arch.get("attn_implementation", ARCH_DEFAULTS["attn_implementation"])
    kind = ARCHS.get(arch.get("arch", "")) if arch.get("arch") in ARCHS else None
    if device_type != "cuda" or packing != "packed" or kind is None or kind.no_packing:
        return own
    if "attn_implementation" in kind.refuses or not flex_available():
        return own
    module = builder(kind.name)
    if not getattr(module.MODEL_CLASS, "_supports_flex_attn", False):
        return own
    attn_dropout = arch.get("attention_dropout")
    if (arch.get("dropout") or 0.0) if attn_dropout is None else attn_dropout:
        return own  # transformers' flex path refuses attention dropout while training
    check = getattr(module, "check", None)
    if check is not None:
        try:
            check({**arch, "attn_implementation": "flex_attention"}, kind.name)
        except ConfigError:
            return own  # e.g. modernbert's two dense masks
    return "flex_attention"


def _builder_of(model_type: str):
    """The builder module of a model type of ours (None: a model type we do not build)."""
    kind = by_model_type(model_type)
    return None if kind is None else builder(kind.name)


def check_cuda_path(model, device: torch.device, batch: int, tokens: int) -> str | None:
    """An architecture's check of its GPU path before training (``check_cuda_path`` of its
    builder: Mamba without its CUDA kernels); the warning it logged, or None."""
    config = getattr(model, "config", model)
    own = getattr(_builder_of(str(getattr(config, "model_type", ""))), "check_cuda_path", None)
    return own(config, device, batch, tokens) if own else None


def model_context(model_or_config) -> int:
    """Number of usable positions: the position table's size (``max_position_embeddings``,
    or ``max_seq_len`` where a model's own code names it so, as HyenaDNA's config does), or
    for a model without one (mamba) the context it was built for (``dnalm_context`` in its
    config; a mamba folder made elsewhere has none and gets 2048, the length the published
    models were trained on)."""
    config = getattr(model_or_config, "config", model_or_config)
    own = getattr(_builder_of(str(getattr(config, "model_type", ""))), "model_context", None)
    if own is not None:
        return int(own(config))
    size = getattr(config, "max_position_embeddings", None)
    if size is None:
        size = getattr(config, "max_seq_len", None)
    if size is None:
        size = getattr(config, "dnalm_context", None) or 2048
    return int(size)


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


def check_single_segment(positions: torch.Tensor, model_type: str) -> None:
    """ValueError unless every row holds one sequence (then only padding, position 0): what
    a model that cannot reset its state at a sequence start (mamba) can be given."""
    seg = segment_ids(positions)  # (B, T)
    if ((seg != seg[:, :1]) & (positions != 0)).any():
        raise ValueError(
            f"{model_type} cannot run packed windows (several sequences in one window): its "
            "state would carry from one sequence into the next; use a padded corpus"
        )


def forward_logits(
    model: PreTrainedModel, tokens: torch.Tensor, positions: torch.Tensor, module=None
) -> torch.Tensor:
    """Logits of a (possibly packed) batch with block-diagonal attention. # (B,T) -> (B,T,V)

    `module` is what to call (a DDP or torch.compile wrapper of `model`); default `model`.
    A state-space model (mamba) takes no mask and no positions: a packed batch is refused
    (:func:`check_single_segment`). An architecture's builder may supply its own positions
    and mask (``forward_kwargs``: ModernBERT, ESM)."""
    model_type = model.config.model_type
    causal = model_type not in MASKED_MODEL_TYPES
    kwargs: dict[str, Any] = {"input_ids": tokens}
    kind = by_model_type(model_type)
    if kind is not None and kind.no_packing:
        check_single_segment(positions, model_type)
    else:
        impl = model.config._attn_implementation or "sdpa"
        dtype = next(model.parameters()).dtype
        if torch.is_autocast_enabled(tokens.device.type):
            dtype = torch.get_autocast_dtype(tokens.device.type)
        if impl == "flex_attention":
            check_flex_forward(model, tokens.device, module)
        own = getattr(_builder_of(model_type), "forward_kwargs", None)
        if own is not None:
            kwargs.update(own(model, positions, impl, dtype))
        else:
            kwargs["position_ids"] = positions
            kwargs["attention_mask"] = packed_attention_mask(positions, causal, impl, dtype)
    if causal:
        kwargs["use_cache"] = False
    # `is not None`, not truthiness: a torch.compile wrapper forwards len() to the model,
    # which raises TypeError
    return (module if module is not None else model)(**kwargs).logits


def objective_of(model_or_config) -> str:
    """'gpt' or 'mlm' for a model or config (masked for BERT-like model types, else causal)."""
    config = getattr(model_or_config, "config", model_or_config)
    return "mlm" if config.model_type in MASKED_MODEL_TYPES else "gpt"


def arch_of_model(model_or_config) -> str:
    """The transformers model type of a model or config (our arch name for ours)."""
    return str(getattr(model_or_config, "config", model_or_config).model_type)


def expected_loss_uniform(vocab_size: int) -> float:
    """Loss (nats/token) of a uniform guess over the vocabulary: a sanity bound at step 0."""
    return math.log(vocab_size)
