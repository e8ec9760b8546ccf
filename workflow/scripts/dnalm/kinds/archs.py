"""The architectures behind a pretrained model's ``arch`` key, declared once.

Each :class:`Architecture` says what the workflow needs to know about an architecture without
importing torch: its objective (``gpt`` causal or ``mlm`` masked), whether it is that
objective's default, its transformers ``model_type``, its presets (in the architecture-neutral
vocabulary of :data:`ARCH_DEFAULTS` plus its own :attr:`Architecture.extra_keys`), the neutral
keys it refuses and why, whether it can keep packed sequences apart, the modules LoRA adapts
and where its list of blocks is. The code that turns a resolved preset into a transformers
model is one file per architecture, ``dnalm/modeling/archs/<name>.py`` (same name as the
descriptor); tests/test_layout.py checks that the two sides agree. Adding an architecture
means adding its descriptor here and its builder file there.

The config schema's ``arch`` enum and overrides enum, the DAG-build checks
(:func:`check_presets`, run from common.smk) and the model builder
(:mod:`dnalm.modeling.models`) all read :data:`ARCHS`; tests/test_kinds.py checks the
schema against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dnalm.core.config import corpus_packing, unknown_keys_message
from dnalm.core.errors import ConfigError

from . import Kind, Registry

OBJECTIVES = ("gpt", "mlm")

#: Defaults of the architecture-neutral keys, applied under every preset.
ARCH_DEFAULTS: dict[str, Any] = {
    "d_ff": None,  # None: 4 * d_model (llama: 8/3 * d_model, rounded up to a multiple of 16)
    "dropout": 0.0,
    "attention_dropout": None,  # None: same as dropout
    "bias": None,  # None: the architecture's own (opt: False, the seed has none; bert: True)
    "tie_embeddings": True,
    "activation": "gelu",
    "attn_implementation": "sdpa",
}

#: model types with a masked-LM objective that are not architectures of ours but load as
#: external models (probe.external); the archs' own masked types are added below
EXTERNAL_MASKED_MODEL_TYPES = ("roberta", "distilbert", "dnalm_dnatext")


@dataclass(frozen=True)
class Architecture(Kind):
    """One architecture: what resolving a preset, checking a config and fine-tuning need.

    ``presets`` hold the neutral keys (``n_layer``, ``n_head``, ``d_model``, ``context``
    always; ``d_ff``, ``dropout`` ... where the preset differs from the defaults) and the
    architecture's own keys; ``context`` is the number of usable positions. ``defaults``
    override :data:`ARCH_DEFAULTS` for this architecture; ``extra_keys`` are keys only this
    architecture (and others declaring them) accepts, with defaults; ``refuses`` maps a
    neutral key it has no use for to the reason given when it is overridden.
    ``block_path`` is the dotted path of the list of blocks under the model body
    (``model.base_model``); ``lora_targets`` the module names LoRA adapts there, never one
    of ``fused_raw_weights``: the modules whose weights a fused CUDA kernel (mamba-ssm's,
    when installed) reads directly in training, without calling the module, so that an
    adapter on one would never train there (tests/test_kinds_archs.py holds this list to
    the installed transformers' mixer source)."""

    objective: str = "gpt"
    model_type: str = ""
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    extra_keys: Mapping[str, Any] = field(default_factory=dict)
    refuses: Mapping[str, str] = field(default_factory=dict)
    #: no attention, no position table, a state carried along the sequence
    state_space: bool = False
    #: None: packed windows are kept apart; else why the architecture refuses them
    no_packing: str | None = None
    #: d_ff when not given: "4x" (4 * d_model) or "swiglu" (8/3 * d_model, multiple of 16)
    d_ff_rule: str = "4x"
    lora_targets: tuple[str, ...] = ()
    fused_raw_weights: tuple[str, ...] = ()
    block_path: str = ""


ARCHS: Registry[Architecture] = Registry("architecture")

_TINY = {"n_layer": 2, "n_head": 2, "d_model": 64, "context": 512}
_SSM_PACKING = (
    "a state-space model carries its state from one packed sequence into the next "
    "(transformers' state-space models cannot reset it at a sequence start)"
)

# --------------------------------------------------------------------------- gpt (causal)

ARCHS.register(
    Architecture(
        name="opt",
        summary="OPTForCausalLM: pre-LN GPT-style decoder, learned positions, no linear biases",
        objective="gpt",
        model_type="opt",
        default=True,
        presets={
            # Trains in minutes on 2 CPU cores.
            "tiny": {"n_layer": 2, "n_head": 2, "d_model": 64, "context": 512, "dropout": 0.0},
            # The DNA-LLM seed configuration: 4 layers, 4 heads, width 384, context 300, no
            # biases, dropout 0.2, tied embeddings, learned positions (~7.2 M parameters).
            "seed": {"n_layer": 4, "n_head": 4, "d_model": 384, "context": 300, "dropout": 0.2},
            "small": {"n_layer": 6, "n_head": 8, "d_model": 512, "context": 1024, "dropout": 0.1},
            # 12 x 768 (GPT-2 small shape, ~85 M parameters): the MFU benchmark preset.
            "base": {
                "n_layer": 12,
                "n_head": 12,
                "d_model": 768,
                "context": 1024,
                "dropout": 0.1,
            },
        },
        defaults={"bias": False},
        lora_targets=("q_proj", "v_proj"),
        block_path="decoder.layers",
    )
)
ARCHS.register(
    Architecture(
        name="gpt_neox",
        summary="GPTNeoXForCausalLM (Pythia): partial rotary, parallel attention and MLP",
        objective="gpt",
        model_type="gpt_neox",
        # Pythia shapes (EleutherAI/pythia-{14m,31m,70m,160m} config.json on the Hugging Face
        # hub: num_hidden_layers, hidden_size, num_attention_heads, intermediate_size = 4 x
        # hidden, rotary_pct 0.25, parallel residual, untied embeddings,
        # max_position_embeddings 2048), the sizes the nucleotide-model-experiments compare.
        presets={
            "tiny": dict(_TINY),
            "14m": {"n_layer": 6, "n_head": 4, "d_model": 128, "context": 2048},
            "31m": {"n_layer": 6, "n_head": 8, "d_model": 256, "context": 2048},
            "70m": {"n_layer": 6, "n_head": 8, "d_model": 512, "context": 2048},
            "160m": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 2048},
        },
        defaults={"bias": True, "tie_embeddings": False},
        # q, k and v are one fused projection
        lora_targets=("query_key_value",),
        block_path="layers",
    )
)
ARCHS.register(
    Architecture(
        name="llama",
        summary="LlamaForCausalLM: rotary positions, SwiGLU MLP, RMSNorm, no biases",
        objective="gpt",
        model_type="llama",
        presets={
            "tiny": dict(_TINY),
            "small": {"n_layer": 6, "n_head": 8, "d_model": 512, "context": 1024},
            "base": {"n_layer": 12, "n_head": 12, "d_model": 768, "context": 2048},
        },
        defaults={"bias": False, "activation": "silu"},
        refuses={"dropout": "LLaMA has no residual dropout (attention_dropout only)"},
        d_ff_rule="swiglu",
        lora_targets=("q_proj", "v_proj"),
        block_path="layers",
    )
)
ARCHS.register(
    Architecture(
        name="mamba",
        summary="MambaForCausalLM: selective state space, no attention, no position table",
        objective="gpt",
        model_type="mamba",
        # state-spaces/mamba-130m: 24 layers, width 768, state 16, expand 2, conv 4. `context`
        # is no table size here (mamba has none) but the longest window the model is meant for.
        presets={
            "tiny": {"n_layer": 2, "d_model": 64, "context": 512, "state_size": 16},
            "small": {"n_layer": 8, "d_model": 256, "context": 1024, "state_size": 16},
            "130m": {"n_layer": 24, "d_model": 768, "context": 2048, "state_size": 16},
        },
        defaults={"bias": False, "activation": "silu", "n_head": None, "d_ff": None},
        extra_keys={"state_size": 16, "conv_kernel": 4, "expand": 2},
        refuses={
            "n_head": "mamba has no attention heads",
            "d_ff": "mamba has no MLP (its inner width is expand x d_model)",
            "attention_dropout": "mamba has no attention",
            "dropout": "mamba has no dropout",
            "attn_implementation": "mamba has no attention",
        },
        state_space=True,
        no_packing=_SSM_PACKING,
        # no attention: the mixer's input projection. The fused training kernel
        # (mamba_ssm's mamba_inner_fn) calls in_proj but reads the weights of the others.
        lora_targets=("in_proj",),
        fused_raw_weights=("conv1d", "x_proj", "dt_proj", "out_proj"),
        block_path="layers",
    )
)
ARCHS.register(
    Architecture(
        name="mamba2",
        summary="Mamba2ForCausalLM: state-space duality, multi-head SSM, one group",
        objective="gpt",
        model_type="mamba2",
        # state-spaces/mamba2-130m: 24 layers, width 768, state 128, head width 64 (24 heads).
        presets={
            "tiny": {"n_layer": 2, "n_head": 8, "d_model": 64, "context": 512, "state_size": 16},
            "small": {
                "n_layer": 8,
                "n_head": 8,
                "d_model": 256,
                "context": 1024,
                "state_size": 64,
            },
            "130m": {
                "n_layer": 24,
                "n_head": 24,
                "d_model": 768,
                "context": 2048,
                "state_size": 128,
            },
        },
        defaults={"bias": False, "activation": "silu", "d_ff": None},
        extra_keys={"state_size": 64, "conv_kernel": 4, "expand": 2},
        refuses={
            "d_ff": "mamba2 has no MLP (its inner width is expand x d_model)",
            "attention_dropout": "mamba2 has no attention",
            "dropout": "mamba2 has no dropout",
            "attn_implementation": "mamba2 has no attention",
        },
        state_space=True,
        no_packing=_SSM_PACKING,
        # as mamba (mamba_split_conv1d_scan_combined reads the conv, norm and out_proj weights)
        lora_targets=("in_proj",),
        fused_raw_weights=("conv1d", "norm", "out_proj"),
        block_path="layers",
    )
)

# --------------------------------------------------------------------------- mlm (masked)

ARCHS.register(
    Architecture(
        name="bert",
        summary="BertForMaskedLM with one token type: learned positions 0..T-1",
        objective="mlm",
        model_type="bert",
        default=True,
        presets={
            "tiny": {"n_layer": 2, "n_head": 2, "d_model": 64, "context": 512, "dropout": 0.0},
            "small": {"n_layer": 4, "n_head": 4, "d_model": 256, "context": 512, "dropout": 0.1},
            "base": {
                "n_layer": 12,
                "n_head": 12,
                "d_model": 768,
                "context": 1024,
                "dropout": 0.1,
            },
        },
        defaults={"bias": True},
        lora_targets=("query", "value"),
        block_path="encoder.layer",
    )
)
ARCHS.register(
    Architecture(
        name="modernbert",
        summary="ModernBertForMaskedLM: rotary, GeGLU, local attention but every n-th layer",
        objective="mlm",
        model_type="modernbert",
        # answerdotai/ModernBERT-base: 22 layers, 768 wide, 12 heads, GeGLU 1152, local window
        # 128, a global layer every 3rd, context 8192.
        presets={
            "tiny": {**_TINY, "d_ff": 96},
            "base": {"n_layer": 22, "n_head": 12, "d_model": 768, "d_ff": 1152, "context": 8192},
        },
        defaults={"bias": False},
        extra_keys={"local_attention": 128, "global_attn_every_n_layers": 3},
        # q, k and v are one fused projection
        lora_targets=("Wqkv",),
        block_path="layers",
    )
)
ARCHS.register(
    Architecture(
        name="esm",
        summary="EsmForMaskedLM, the Nucleotide Transformer (v1) architecture",
        objective="mlm",
        model_type="esm",
        presets={
            "tiny": dict(_TINY),
            # The shape of InstaDeepAI/nucleotide-transformer-500m-human-ref (its config.json:
            # EsmForMaskedLM, num_hidden_layers 24, num_attention_heads 20, hidden_size 1280,
            # intermediate_size 5120, max_position_embeddings 1002 with pad_token_id 1, i.e.
            # 1000 usable positions after ESM's pad_id + 1 offset, tie_word_embeddings false,
            # position_embedding_type absolute, dropout 0, emb_layer_norm_before false). NT-v1
            # trains with token_dropout true; ours is always false (see modeling/archs/esm.py).
            "nt_v1_500m": {
                "n_layer": 24,
                "n_head": 20,
                "d_model": 1280,
                "d_ff": 5120,
                "context": 1000,
                "tie_embeddings": False,
            },
        },
        defaults={"bias": True},
        extra_keys={"position_embedding_type": "absolute"},
        refuses={
            "bias": "ESM has biases in every dense layer (not configurable)",
            "activation": "ESM's MLP activation is fixed (GELU)",
        },
        lora_targets=("query", "value"),
        block_path="encoder.layer",
    )
)

#: every key a model's `overrides` may set: the neutral ones and every architecture's own
ARCH_KEYS: tuple[str, ...] = tuple(
    dict.fromkeys(
        ["n_layer", "n_head", "d_model", "context", *ARCH_DEFAULTS]
        + [k for a in ARCHS for k in a.extra_keys]
    )
)

MASKED_MODEL_TYPES = frozenset(
    {a.model_type for a in ARCHS if a.objective == "mlm"} | set(EXTERNAL_MASKED_MODEL_TYPES)
)


# --------------------------------------------------------------------------- reads


def arch_names(objective: str) -> tuple[str, ...]:
    """The architectures of `objective`, its default first."""
    archs = [a for a in ARCHS if a.objective == objective]
    return tuple(a.name for a in sorted(archs, key=lambda a: not a.default))


def default_arch(objective: str) -> str:
    return arch_names(objective)[0]


def by_model_type(model_type: str) -> Architecture | None:
    """The architecture whose transformers model_type is `model_type` (None: not ours)."""
    return next((a for a in ARCHS if a.model_type == model_type), None)


def no_packing_archs() -> tuple[str, ...]:
    return tuple(a.name for a in ARCHS if a.no_packing)


def arch_of(objective: str, arch: str | None = None) -> str:
    """`arch` checked against `objective` (None: the objective's default)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"unknown objective {objective!r}; choose one of {list(OBJECTIVES)}")
    if arch is None:
        return default_arch(objective)
    names = arch_names(objective)
    if arch not in names:
        other = [o for o in OBJECTIVES if arch in arch_names(o)]
        hint = f" ({arch} is an {other[0]} architecture)" if other else ""
        raise ConfigError(f"unknown {objective} arch {arch!r}{hint}; choose one of {list(names)}")
    return arch


def presets_of(objective: str, arch: str | None = None) -> Mapping[str, Mapping[str, Any]]:
    """The presets of `arch` (None: the objective's default architecture)."""
    return ARCHS.get(arch_of(objective, arch)).presets


def preset_names(objective: str, arch: str | None = None) -> tuple[str, ...]:
    """The preset names of `arch` of `objective` (None: the objective's default arch)."""
    return tuple(presets_of(objective, arch))


# --------------------------------------------------------------------------- DAG-build checks


def check_ssm_packing(
    where: str, arch: str | None, corpus: str | None, config: Mapping[str, Any]
) -> None:
    """An `arch` that cannot keep packed sequences apart (a state-space model) is not trained
    on packed windows of `corpus` (None: cds): ConfigError naming `where` (the model or sweep
    key), the arch and the corpus, and the setting that fixes it."""
    if arch not in ARCHS or not ARCHS.get(arch).no_packing:
        return
    if corpus_packing(config, corpus) != "packed":
        return
    corpus = corpus or "cds"
    raise ConfigError(
        f"{where}: arch {arch} cannot train on packed windows (corpus {corpus!r} is packed): "
        "a state-space model carries its state from one packed sequence into the next; set "
        f"corpora.{corpus}.packing: padded (or corpus.packing: padded)"
    )


def _dicts(parent: Any, key: str) -> Any:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def check_context(where: str, spec: Mapping[str, Any], block_size: int) -> None:
    """The corpus blocks (`block_size` tokens) of a pretrain.models entry `spec` fit its
    position table (the preset's ``context``, or the ``context`` override): ConfigError
    naming `where`, the preset and both fixes. Entries the preset check refuses are left
    to it."""
    objective, preset = spec.get("objective"), spec.get("preset")
    if objective not in OBJECTIVES:
        return
    arch = spec.get("arch")
    names = arch_names(objective)
    if arch is not None and arch not in names:
        return
    presets = ARCHS.get(arch or names[0]).presets
    if preset not in presets:
        return
    overrides = spec.get("overrides") if isinstance(spec.get("overrides"), Mapping) else {}
    context = overrides.get("context", presets[preset].get("context"))
    if not isinstance(context, int) or isinstance(context, bool) or block_size <= context:
        return
    label = f"{arch}/{preset}" if arch else f"{objective}/{preset}"
    what = "the override context" if "context" in overrides else f"preset {label}'s context"
    raise ConfigError(
        f"{where}: corpus.block_size {block_size} (the tokens per window of its corpus "
        f"{spec.get('corpus', 'cds')!r}) is longer than {what} ({context} positions); set "
        f"corpus.block_size <= {context}, or the model's overrides.context >= {block_size} "
        "(or a preset with a longer context)"
    )


def check_presets(config: Mapping[str, Any]) -> None:
    """Every pretrain.models entry names an arch of its objective and a preset of its arch,
    overrides only architecture keys, and an arch that cannot keep packed sequences apart is
    not trained on packed windows (ConfigError naming the model, the arch or preset and those
    there are, or the key)."""
    for name, spec in _dicts(_dicts(config, "pretrain"), "models").items():
        if not isinstance(spec, Mapping):
            continue
        overrides = spec.get("overrides")
        if isinstance(overrides, Mapping):
            unknown = sorted((k for k in overrides if k not in ARCH_KEYS), key=str)
            if unknown:
                raise ConfigError(
                    f"pretrain.models.{name}.overrides: "
                    + unknown_keys_message(unknown, list(ARCH_KEYS), "architecture")
                )
        objective, preset = spec.get("objective"), spec.get("preset")
        if objective not in OBJECTIVES:
            continue  # the schema names a bad or missing objective
        arch = spec.get("arch")
        if arch is not None and arch not in arch_names(objective):
            other = [o for o in OBJECTIVES if arch in arch_names(o)]
            hint = f" ({arch!r} is an {other[0]} architecture)" if other else ""
            raise ConfigError(
                f"pretrain.models.{name}.arch: {arch!r} is not an {objective} architecture"
                f"{hint}; choose one of {', '.join(arch_names(objective))}"
            )
        check_ssm_packing(f"pretrain.models.{name}", arch, spec.get("corpus"), config)
        if preset is None:
            continue  # the schema names a missing preset
        known = preset_names(objective, arch)
        if preset not in known:
            label = objective if arch is None else arch
            raise ConfigError(
                f"pretrain.models.{name}: unknown {label} preset {preset!r}; choose one "
                f"of {', '.join(known)} (sizes in between: a preset and "
                "its keys under `overrides`)"
            )
