"""Model presets and construction for the two pretraining objectives and their architectures.

Every architecture is a Hugging Face ``transformers`` class, so every trained folder loads with
the Auto classes offline and without ``trust_remote_code``. ``arch`` (a per-model config key
beside ``objective``) picks the class; the default is the first of each objective:

* ``gpt`` (causal LM):

  - ``opt`` (default) is ``OPTForCausalLM``. GPT-2 would be the obvious choice, but its
    ``Conv1D`` layers always carry biases, while the seed configuration has none. OPT is a
    pre-LayerNorm GPT-style decoder with learned absolute positions, tied input/output
    embeddings and ``enable_bias=False`` for every linear layer. Two deviations from a
    nanoGPT ``bias=False`` model, both tiny and checked in tests/test_modeling_models.py:
    the LayerNorms keep their bias vectors (``enable_bias`` only affects linear layers; that
    is 9 x 384 = 3,456 parameters for the seed preset) and OPT's position table has two
    extra, never used rows (OPT adds an offset of 2 to every position id; 768 parameters).
    The activation is set to GELU (OPT's default is ReLU).
  - ``gpt_neox`` is ``GPTNeoXForCausalLM`` (Pythia): rotary positions on a quarter of each
    head, attention and MLP in parallel, biases, untied output embeddings.
  - ``llama`` is ``LlamaForCausalLM``: rotary positions, SwiGLU MLP, RMSNorm, no biases.
  - ``mamba`` is ``MambaForCausalLM`` (selective state space, no attention, no position
    table). Without the ``mamba-ssm`` CUDA kernels transformers runs its reference PyTorch
    path, which is what a CPU uses.
  - ``mamba2`` is ``Mamba2ForCausalLM`` (state-space duality, multi-head SSM: ``n_head``
    heads of width ``expand * d_model / n_head``, one group). Its reference path runs on
    CPU with our shapes (any window length; checked in tests/test_modeling_archs.py).

* ``mlm`` (masked LM):

  - ``bert`` (default) is ``BertForMaskedLM`` with one token type. BERT's default position
    ids are ``0..T-1`` exactly like ours (ESM, the Nucleotide Transformer architecture,
    starts absolute positions at ``pad_id + 1``, a trap for anyone calling the saved model
    without position ids).
  - ``modernbert`` is ``ModernBertForMaskedLM``: rotary positions, GeGLU MLP, no biases,
    local (sliding window of ``local_attention`` tokens) attention in every layer but every
    ``global_attn_every_n_layers``-th, which is global.

Packed windows: a window holds several CDS whose position ids restart at 0. No architecture
turns position ids into a block-diagonal mask by itself in transformers 5.23 (OPT, GPT-NeoX
and LLaMA do not pass ``position_ids`` to ``create_causal_mask``, so the packed-sequence
detection of ``masking_utils`` never runs; ``create_bidirectional_mask`` ignores position ids
altogether). We therefore always build the 4-D mask ourselves (:func:`packed_attention_mask`)
and pass the position ids too (the rotary models rotate by them, so each CDS starts at
position 0); transformers passes a 4-D mask through unchanged. ModernBERT takes a mapping
``{"full_attention": mask, "sliding_attention": mask}`` instead: a single 4-D mask would be
used unchanged for its local layers as well, dropping the sliding window, so we add the window
to the second mask ourselves. A state-space model cannot be kept to a segment: the reference
path has no way to reset the state at a position (it accepts no position ids, and its
``attention_mask`` only zeroes padded inputs), so the state of one CDS would flow into the
next. ``mamba`` and ``mamba2`` therefore refuse packed windows: pretraining checks the
corpus's ``packing`` (:func:`check_packed_support`), the workflow refuses the combination at
dry-run time, and :func:`forward_logits` refuses a batch with a second sequence in a row. Use
``corpus.packing: padded`` (one sequence, or chunk of one, per padded window).

Presets use a small architecture-neutral vocabulary of keys (``n_layer``, ``n_head``,
``d_model``, ``d_ff``, ``context``, ``dropout``, ``attention_dropout``, ``bias``,
``tie_embeddings``, ``activation``, ``attn_implementation``) plus a few keys of one
architecture (mamba: ``state_size``, ``conv_kernel``, ``expand``; modernbert:
``local_attention``, ``global_attn_every_n_layers``); the workflow config names a preset and
may override any key its architecture uses. A key an architecture has no use for (``n_head``,
``d_ff`` or ``attn_implementation`` of mamba, ``dropout`` of llama ...) is refused when given
as an override, naming the key and the reason (:data:`UNUSED_KEYS`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    Mamba2Config,
    Mamba2ForCausalLM,
    MambaConfig,
    MambaForCausalLM,
    ModernBertConfig,
    ModernBertForMaskedLM,
    OPTConfig,
    OPTForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)

from dnalm.core.errors import ConfigError
from dnalm.modeling.attention import check_flex_forward, flex_block_mask

OBJECTIVES = ("gpt", "mlm")

#: Architectures per objective; the first is the default.
ARCHS: dict[str, tuple[str, ...]] = {
    "gpt": ("opt", "gpt_neox", "llama", "mamba", "mamba2"),
    "mlm": ("bert", "modernbert"),
}
DEFAULT_ARCH = {objective: archs[0] for objective, archs in ARCHS.items()}
#: transformers model_type of every architecture (equal to its name here)
MODEL_TYPES = {arch: arch for archs in ARCHS.values() for arch in archs}
#: model types with a masked-LM objective (the rest are causal)
MASKED_MODEL_TYPES = frozenset(
    {"bert", "modernbert", "roberta", "esm", "distilbert", "dnalm_dnatext"}
)
#: architectures without a position-restarting per-segment forward (refuse packed windows)
NO_PACKING = frozenset({"mamba", "mamba2"})

#: Architecture presets of the default architectures, per objective (kept as they were).
#: ``context`` is the size of the position table.
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

_TINY = {"n_layer": 2, "n_head": 2, "d_model": 64, "context": 512}
#: Presets of the other architectures. ``tiny`` everywhere: 2 layers, width 64 (trains in
#: seconds on a CPU).
ARCH_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # Pythia shapes (EleutherAI/pythia-{14m,31m,70m,160m} config.json on the Hugging Face hub:
    # num_hidden_layers, hidden_size, num_attention_heads, intermediate_size = 4 x hidden,
    # rotary_pct 0.25, parallel residual, untied embeddings, max_position_embeddings 2048),
    # the sizes the nucleotide-model-experiments compare.
    "gpt_neox": {
        "tiny": dict(_TINY),
        "14m": {"n_layer": 6, "n_head": 4, "d_model": 128, "context": 2048},
        "31m": {"n_layer": 6, "n_head": 8, "d_model": 256, "context": 2048},
        "70m": {"n_layer": 6, "n_head": 8, "d_model": 512, "context": 2048},
        "160m": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 2048},
    },
    "llama": {
        "tiny": dict(_TINY),
        "small": {"n_layer": 6, "n_head": 8, "d_model": 512, "context": 1024},
        "base": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 2048},
    },
    # state-spaces/mamba-130m: 24 layers, width 768, state 16, expand 2, conv 4. `context`
    # is no table size here (mamba has none) but the longest window the model is meant for.
    "mamba": {
        "tiny": {"n_layer": 2, "d_model": 64, "context": 512, "state_size": 16},
        "small": {"n_layer": 8, "d_model": 256, "context": 1024, "state_size": 16},
        "130m": {"n_layer": 24, "d_model": 768, "context": 2048, "state_size": 16},
    },
    # state-spaces/mamba2-130m: 24 layers, width 768, state 128, head width 64 (24 heads).
    "mamba2": {
        "tiny": {"n_layer": 2, "n_head": 8, "d_model": 64, "context": 512, "state_size": 16},
        "small": {"n_layer": 8, "n_head": 8, "d_model": 256, "context": 1024, "state_size": 64},
        "130m": {"n_layer": 24, "n_head": 24, "d_model": 768, "context": 2048, "state_size": 128},
    },
    # answerdotai/ModernBERT-base: 22 layers, 768 wide, 12 heads, GeGLU 1152, local window
    # 128, a global layer every 3rd, context 8192.
    "modernbert": {
        "tiny": {**_TINY, "d_ff": 96},
        "base": {"n_layer": 22, "n_head": 12, "d_model": 768, "d_ff": 1152, "context": 8192},
    },
}

#: Defaults applied under every preset.
ARCH_DEFAULTS: dict[str, Any] = {
    "d_ff": None,  # None: 4 * d_model (llama: 8/3 * d_model, rounded up to a multiple of 16)
    "dropout": 0.0,
    "attention_dropout": None,  # None: same as dropout
    "bias": None,  # None: the architecture's own (opt: False, the seed has none; bert: True)
    "tie_embeddings": True,
    "activation": "gelu",
    "attn_implementation": "sdpa",
}
#: Keys of one architecture, with their defaults.
ARCH_EXTRA_KEYS: dict[str, dict[str, Any]] = {
    "mamba": {"state_size": 16, "conv_kernel": 4, "expand": 2},
    "mamba2": {"state_size": 64, "conv_kernel": 4, "expand": 2},
    "modernbert": {"local_attention": 128, "global_attn_every_n_layers": 3},
}
#: Defaults of an architecture that differ from ARCH_DEFAULTS.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "opt": {"bias": False},
    "bert": {"bias": True},
    "gpt_neox": {"bias": True, "tie_embeddings": False},
    "llama": {"bias": False, "activation": "silu"},
    "mamba": {"bias": False, "activation": "silu", "n_head": None, "d_ff": None},
    "mamba2": {"bias": False, "activation": "silu", "d_ff": None},
    "modernbert": {"bias": False},
}
#: Neutral keys an architecture has no use for: refused as overrides, with the reason.
UNUSED_KEYS: dict[str, dict[str, str]] = {
    "llama": {"dropout": "LLaMA has no residual dropout (attention_dropout only)"},
    "mamba": {
        "n_head": "mamba has no attention heads",
        "d_ff": "mamba has no MLP (its inner width is expand x d_model)",
        "attention_dropout": "mamba has no attention",
        "dropout": "mamba has no dropout",
        "attn_implementation": "mamba has no attention",
    },
    "mamba2": {
        "d_ff": "mamba2 has no MLP (its inner width is expand x d_model)",
        "attention_dropout": "mamba2 has no attention",
        "dropout": "mamba2 has no dropout",
        "attn_implementation": "mamba2 has no attention",
    },
}
#: state-space architectures (no attention, no position table)
SSM_ARCHS = frozenset({"mamba", "mamba2"})

ARCH_KEYS = frozenset(
    {"n_layer", "n_head", "d_model", "context", *ARCH_DEFAULTS}
    | {k for extra in ARCH_EXTRA_KEYS.values() for k in extra}
)


def arch_of(objective: str, arch: str | None = None) -> str:
    """`arch` checked against `objective` (None: the objective's default)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; choose one of {list(OBJECTIVES)}")
    if arch is None:
        return DEFAULT_ARCH[objective]
    if arch not in ARCHS[objective]:
        other = [o for o in OBJECTIVES if arch in ARCHS[o]]
        hint = f" ({arch} is an {other[0]} architecture)" if other else ""
        raise ConfigError(
            f"unknown {objective} arch {arch!r}{hint}; choose one of {list(ARCHS[objective])}"
        )
    return arch


def presets_of(objective: str, arch: str | None = None) -> dict[str, dict[str, Any]]:
    """The presets of `arch` (None: the objective's default architecture)."""
    arch = arch_of(objective, arch)
    return PRESETS[objective] if arch == DEFAULT_ARCH[objective] else ARCH_PRESETS[arch]


def resolve_arch(
    objective: str, preset: str, overrides: dict | None = None, arch: str | None = None
) -> dict[str, Any]:
    """The full architecture dict for `preset` of `objective` (and `arch`, None: the default)
    with `overrides` applied; its ``arch`` entry names the architecture.

    Raises ConfigError for an unknown objective, arch, preset or key, a key the architecture
    does not use, or inconsistent sizes."""
    arch = arch_of(objective, arch)
    presets = presets_of(objective, arch)
    name = f"{objective}/{preset}" if arch == DEFAULT_ARCH[objective] else f"{arch}/{preset}"
    if preset not in presets:
        raise ConfigError(
            f"unknown {name.split('/')[0]} preset {preset!r}; choose one of {sorted(presets)} "
            "(or pick one and override its keys)"
        )
    extra = ARCH_EXTRA_KEYS.get(arch, {})
    out = {
        **ARCH_DEFAULTS,
        **extra,
        **FAMILY_DEFAULTS[arch],
        **copy.deepcopy(presets[preset]),
    }
    unused = UNUSED_KEYS.get(arch, {})
    for key, value in (overrides or {}).items():
        if key not in ARCH_KEYS:
            raise ConfigError(
                f"unknown model override {key!r} for preset {name}; valid keys: {sorted(ARCH_KEYS)}"
            )
        if key in unused:
            raise ConfigError(f"model override {key!r} does not apply to {arch}: {unused[key]}")
        others = {a for a, keys in ARCH_EXTRA_KEYS.items() if key in keys}
        if others and arch not in others:
            raise ConfigError(
                f"model override {key!r} only applies to {', '.join(sorted(others))}, not {arch}"
            )
        out[key] = value
    if arch == "modernbert" and out["attn_implementation"] == "flex_attention":
        # its sliding-window layers take a second mask; on CPU the pair crashes the process
        raise ConfigError(
            "model override attn_implementation='flex_attention' does not apply to modernbert "
            "(its local and global layers take two dense masks); use sdpa or eager"
        )
    if arch in SSM_ARCHS:
        if arch == "mamba":
            out["n_head"] = None
        out["d_ff"] = None
        out["dropout"] = out["attention_dropout"] = 0.0
    else:
        if out["d_ff"] is None:
            d = out["d_model"]
            out["d_ff"] = 16 * math.ceil(8 * d / 3 / 16) if arch == "llama" else 4 * d
        if out["attention_dropout"] is None:
            out["attention_dropout"] = out["dropout"]
    keys = ["n_layer", "d_model", "context", *extra]
    keys += [] if arch == "mamba" else ["n_head"] if arch == "mamba2" else ["n_head", "d_ff"]
    for key in keys:
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise ConfigError(f"model {name}: {key} must be a positive integer")
    if arch == "mamba2" and (out["expand"] * out["d_model"]) % out["n_head"]:
        raise ConfigError(
            f"model {name}: expand x d_model={out['expand'] * out['d_model']} is not divisible "
            f"by n_head={out['n_head']}"
        )
    elif arch not in SSM_ARCHS and out["d_model"] % out["n_head"]:
        raise ConfigError(
            f"model {name}: d_model={out['d_model']} is not divisible by n_head={out['n_head']}"
        )
    if arch == "bert" and not out["bias"]:
        raise ConfigError("mlm models (BERT) always have biases; remove `bias: false`")
    out["arch"] = arch
    return out


def _arch_name(objective: str, arch: dict[str, Any]) -> str:
    return arch.get("arch") or DEFAULT_ARCH[objective]


def build_config(
    objective: str, arch: dict[str, Any], vocab_size: int, special_ids: dict[str, int | None]
) -> PretrainedConfig:
    """A transformers config for `arch` (see resolve_arch) and the corpus vocabulary."""
    name = arch_of(objective, _arch_name(objective, arch))
    pad = special_ids.get("pad_id")
    common = {
        "vocab_size": int(vocab_size),
        "pad_token_id": pad,
        "bos_token_id": special_ids.get("bos_id"),
        "eos_token_id": special_ids.get("eos_id"),
        "tie_word_embeddings": bool(arch["tie_embeddings"]),
    }
    bias = bool(arch["bias"])
    if name == "opt":
        config: PretrainedConfig = OPTConfig(
            hidden_size=arch["d_model"],
            num_hidden_layers=arch["n_layer"],
            num_attention_heads=arch["n_head"],
            ffn_dim=arch["d_ff"],
            max_position_embeddings=arch["context"],
            dropout=arch["dropout"],
            attention_dropout=arch["attention_dropout"],
            activation_dropout=0.0,
            activation_function=arch["activation"],
            enable_bias=bias,
            do_layer_norm_before=True,
            word_embed_proj_dim=arch["d_model"],
            **common,
        )
    elif name == "gpt_neox":
        if not bias:
            raise ConfigError("gpt_neox has biases in every dense layer; remove `bias: false`")
        config = GPTNeoXConfig(
            hidden_size=arch["d_model"],
            num_hidden_layers=arch["n_layer"],
            num_attention_heads=arch["n_head"],
            intermediate_size=arch["d_ff"],
            hidden_act=arch["activation"],
            max_position_embeddings=arch["context"],
            hidden_dropout=arch["dropout"],
            attention_dropout=arch["attention_dropout"],
            use_parallel_residual=True,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "partial_rotary_factor": 0.25,
            },
            attention_bias=True,
            **common,
        )
    elif name == "llama":
        config = LlamaConfig(
            hidden_size=arch["d_model"],
            num_hidden_layers=arch["n_layer"],
            num_attention_heads=arch["n_head"],
            intermediate_size=arch["d_ff"],
            hidden_act=arch["activation"],
            max_position_embeddings=arch["context"],
            attention_dropout=arch["attention_dropout"],
            attention_bias=bias,
            mlp_bias=bias,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            **common,
        )
    elif name == "mamba":
        config = MambaConfig(
            hidden_size=arch["d_model"],
            num_hidden_layers=arch["n_layer"],
            state_size=arch["state_size"],
            conv_kernel=arch["conv_kernel"],
            expand=arch["expand"],
            hidden_act=arch["activation"],
            use_bias=bias,
            **common,
        )
        # no position table: the context the model was built for, for model_context
        config.dnalm_context = int(arch["context"])
    elif name == "mamba2":
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
            use_bias=bias,
            **common,
        )
        config.dnalm_context = int(arch["context"])
    elif name == "modernbert":
        every = int(arch["global_attn_every_n_layers"])
        config = ModernBertConfig(
            hidden_size=arch["d_model"],
            num_hidden_layers=arch["n_layer"],
            num_attention_heads=arch["n_head"],
            intermediate_size=arch["d_ff"],
            hidden_activation=arch["activation"],
            max_position_embeddings=arch["context"],
            attention_dropout=arch["attention_dropout"],
            embedding_dropout=arch["dropout"],
            mlp_dropout=arch["dropout"],
            attention_bias=bias,
            mlp_bias=bias,
            norm_bias=bias,
            local_attention=int(arch["local_attention"]),
            layer_types=[
                "full_attention" if i % every == 0 else "sliding_attention"
                for i in range(arch["n_layer"])
            ],
            cls_token_id=special_ids.get("cls_id", special_ids.get("bos_id")),
            sep_token_id=special_ids.get("sep_id", special_ids.get("eos_id")),
            **common,
        )
    else:
        if not bias:
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
    if name not in SSM_ARCHS:
        config._attn_implementation = arch["attn_implementation"]
    return config


_CLASSES = {
    "opt": OPTForCausalLM,
    "gpt_neox": GPTNeoXForCausalLM,
    "llama": LlamaForCausalLM,
    "mamba": MambaForCausalLM,
    "mamba2": Mamba2ForCausalLM,
    "bert": BertForMaskedLM,
    "modernbert": ModernBertForMaskedLM,
}


def build_model(
    objective: str, arch: dict[str, Any], vocab_size: int, special_ids: dict[str, int | None]
) -> PreTrainedModel:
    """A freshly initialised model (initialisation uses the global torch RNG)."""
    config = build_config(objective, arch, vocab_size, special_ids)
    model = _CLASSES[_arch_name(objective, arch)](config)
    if arch["tie_embeddings"]:
        model.tie_weights()
    return model


def check_packed_support(arch: str, packing: str | None, where: str) -> None:
    """ConfigError when `arch` cannot keep the sequences of a `packing` corpus apart."""
    if arch in NO_PACKING and packing == "packed":
        raise ConfigError(
            f"{where}: arch {arch} cannot train on packed windows (corpus packing: packed): "
            "a state-space model carries its state from one packed sequence into the next "
            "(transformers' state-space models cannot reset it at a sequence start), so the "
            "sequences would not be kept apart; build the corpus with `corpus.packing: padded`"
        )


def model_context(model_or_config) -> int:
    """Number of usable positions: the position table's size, or for a model without one
    (mamba) the context it was built for (``dnalm_context`` in its config; a mamba folder
    made elsewhere has none and gets 2048, the length the published models were trained on)."""
    config = getattr(model_or_config, "config", model_or_config)
    size = getattr(config, "max_position_embeddings", None)
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
    (:func:`check_single_segment`)."""
    model_type = model.config.model_type
    causal = model_type not in MASKED_MODEL_TYPES
    kwargs: dict[str, Any] = {"input_ids": tokens}
    if model_type in ("mamba", "mamba2"):
        check_single_segment(positions, model_type)
    else:
        impl = model.config._attn_implementation or "sdpa"
        dtype = next(model.parameters()).dtype
        if torch.is_autocast_enabled(tokens.device.type):
            dtype = torch.get_autocast_dtype(tokens.device.type)
        if impl == "flex_attention":
            check_flex_forward(model, tokens.device, module)
        kwargs["position_ids"] = positions
        if model_type == "modernbert":
            kwargs["attention_mask"] = modernbert_masks(positions, model.config, impl, dtype)
        else:
            kwargs["attention_mask"] = packed_attention_mask(positions, causal, impl, dtype)
    if causal:
        kwargs["use_cache"] = False
    # `is not None`, not truthiness: a torch.compile wrapper forwards len() to the model,
    # which raises TypeError
    return (module if module is not None else model)(**kwargs).logits


def modernbert_masks(
    positions: torch.Tensor, config, attn_implementation: str, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    """ModernBERT's per-layer-type masks of a packed batch: block-diagonal for its global
    layers, block-diagonal and within ``local_attention // 2`` tokens either side (the
    window transformers' own sliding mask uses) for its local layers."""
    full = packed_attention_mask(positions, False, "sdpa", dtype)  # (B, 1, T, T) bool
    t = positions.shape[1]
    idx = torch.arange(t, device=positions.device)
    near = (idx[:, None] - idx[None, :]).abs() <= int(config.local_attention) // 2  # (T, T)
    local = full & near
    if attn_implementation == "eager":
        zero = torch.zeros((), dtype=dtype, device=positions.device)
        low = torch.finfo(dtype).min
        full, local = torch.where(full, zero, low), torch.where(local, zero, low)
    return {"full_attention": full, "sliding_attention": local}


def objective_of(model_or_config) -> str:
    """'gpt' or 'mlm' for a model or config (masked for BERT-like model types, else causal)."""
    config = getattr(model_or_config, "config", model_or_config)
    return "mlm" if config.model_type in MASKED_MODEL_TYPES else "gpt"


def arch_of_model(model_or_config) -> str:
    """The transformers model type of a model or config (our arch name for ours)."""
    return str(getattr(model_or_config, "config", model_or_config).model_type)


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


def expected_loss_uniform(vocab_size: int) -> float:
    """Loss (nats/token) of a uniform guess over the vocabulary: a sanity bound at step 0."""
    return math.log(vocab_size)
