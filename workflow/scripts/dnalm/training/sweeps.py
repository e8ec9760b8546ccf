"""Scaling sweeps: the `sweeps` config block expanded into ordinary pretraining runs.

A sweep is a grid: model sizes (``presets`` and/or ``architectures``, each an override of
a preset's n_layer/n_head/d_model/...) x token budgets (``budgets``, tokens seen in
training, or ``tokens_per_param``, tokens per non-embedding parameter: genomics-lm's
``epochs: auto``) x optional ``seeds``. Every grid point becomes a pretrain.models entry
named ``sweep_{sweep}_{size}_{budget}[_s{seed}]`` whose ``train.max_steps`` is

    max_steps = ceil(tokens / (micro_batch_size * grad_accum * block_size * max(gpus, 1) * nodes))

(the tokens of one optimizer step over all processes). The workflow expands sweeps when it
reads the config (workflow/rules/common.smk), so the pretraining, figure and report stages
treat sweep models like any other model; the checks here (unknown preset, a budget of less
than one optimizer step, names that clash) raise ConfigError naming the config key before
any job runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dnalm.core.config import ID_RE
from dnalm.core.errors import ConfigError
from dnalm.kinds.archs import ARCH_KEYS, OBJECTIVES, arch_names, check_ssm_packing, preset_names
from dnalm.training.run import PretrainTrainConfig

#: short labels of the size keys in a model name (tiny-L1-D32: preset tiny, 1 layer, width 32)
SIZE_LABELS = {"n_layer": "L", "n_head": "H", "d_model": "D", "d_ff": "F", "context": "C"}
FIT_FORMS = ("loglog", "offset")


@dataclass
class SweepPoint:
    """One run of a sweep: the pretrain.models entry `spec` under the name `model`."""

    model: str
    sweep: str
    size: str
    budget: str
    tokens: int
    max_steps: int
    seed: int | None
    spec: dict[str, Any] = field(default_factory=dict)


def budget_label(tokens: int) -> str:
    """50000 -> '50k', 2000000 -> '2M', 1500 -> '1500' (exact: no rounding in a name)."""
    for div, suffix in ((10**9, "G"), (10**6, "M"), (10**3, "k")):
        if tokens >= div and tokens % div == 0:
            return f"{tokens // div}{suffix}"
    return str(tokens)


def size_label(preset: str, overrides: Mapping[str, Any]) -> str:
    """The size part of a model name: the preset, then each override (L2, D64, ...)."""
    parts = [preset]
    order = list(SIZE_LABELS)
    for key in sorted(overrides, key=lambda k: (order.index(k) if k in order else len(order), k)):
        value = overrides[key]
        parts.append(f"{SIZE_LABELS[key]}{value}" if key in SIZE_LABELS else f"{key}{value}")
    return "-".join(str(p) for p in parts)


def non_embedding_params(
    objective: str, preset: str, overrides: Mapping[str, Any], arch: str | None = None
) -> int:
    """Non-embedding parameters of a model (dnalm.modeling.models.count_parameters), built
    on the meta device (no memory, no initialisation; the vocabulary does not matter)."""
    # lazy: sweeps is read at DAG build (expand_sweeps); torch only to count parameters
    import torch

    # lazy: sweeps is read at DAG build (expand_sweeps); torch only to count parameters
    from dnalm.modeling.models import build_model, count_parameters, resolve_arch

    spec = resolve_arch(objective, preset, dict(overrides), arch)
    with torch.device("meta"):
        model = build_model(objective, spec, 8, {"pad_id": 0})
    return count_parameters(model)["non_embedding"]


def _sizes(where: str, sweep: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(size label, preset, overrides) of every model size of a sweep."""
    objective, family = sweep["objective"], sweep.get("arch")
    names = arch_names(objective) if objective in OBJECTIVES else ()
    if family is not None and family not in names:
        raise ConfigError(
            f"{where}.arch: {family!r} is not an {objective} architecture; choose one of "
            f"{', '.join(names)}"
        )
    known = preset_names(objective, family) if objective in OBJECTIVES else ()
    sizes = []
    for preset in sweep.get("presets") or []:
        if preset not in known:
            raise ConfigError(
                f"{where}.presets: unknown {family or objective} preset {preset!r}; choose one of "
                f"{', '.join(known)}"
            )
        sizes.append((preset, preset, {}))
    for i, arch in enumerate(sweep.get("architectures") or []):
        arch = dict(arch or {})
        preset = arch.pop("preset", "tiny")
        label = arch.pop("label", None)
        if preset not in known:
            raise ConfigError(
                f"{where}.architectures[{i}].preset: unknown {family or objective} preset "
                f"{preset!r}; "
                f"choose one of {', '.join(known)}"
            )
        unknown = sorted(k for k in arch if k not in ARCH_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}.architectures[{i}]: {unknown} are not architecture keys "
                f"(valid: {', '.join(ARCH_KEYS)}, preset, label)"
            )
        sizes.append((str(label) if label else size_label(preset, arch), preset, arch))
    if not sizes:
        raise ConfigError(f"{where}: give `presets` and/or `architectures` (no model sizes)")
    return sizes


def expand_sweep(
    name: str,
    sweep: Mapping[str, Any],
    shared_train: Mapping[str, Any] | None,
    block_size: int,
    gpus: int = 1,
    param_counter=non_embedding_params,
) -> list[SweepPoint]:
    """The runs of sweep `name` (config ``sweeps.{name}``), in grid order."""
    where = f"sweeps.{name}"
    budgets, tpp = sweep.get("budgets"), sweep.get("tokens_per_param")
    if bool(budgets) == bool(tpp):
        raise ConfigError(f"{where}: give exactly one of `budgets` (tokens) and `tokens_per_param`")
    own_train = dict(sweep.get("train") or {})
    if "max_steps" in own_train:
        raise ConfigError(
            f"{where}.train.max_steps: a sweep derives max_steps from its budgets; remove it"
        )
    cfg = PretrainTrainConfig.from_dict({**(shared_train or {}), **own_train}, where)
    step_tokens = cfg.micro_batch_size * cfg.grad_accum * int(block_size) * max(int(gpus), 1)
    seeds = list(sweep.get("seeds") or [])
    points = []
    for size, preset, overrides in _sizes(where, sweep):
        if budgets:
            grid = [(f"{where}.budgets[{i}]", int(b), budget_label(int(b))) for i, b in
                    enumerate(budgets)]  # fmt: skip
        else:
            extra = {"arch": sweep["arch"]} if sweep.get("arch") else {}
            n = param_counter(sweep["objective"], preset, overrides, **extra)
            grid = [(f"{where}.tokens_per_param[{i}]", math.ceil(r * n), f"tpp{r:g}") for i, r in
                    enumerate(tpp)]  # fmt: skip
        if not ID_RE.match(f"sweep_{name}_{size}"):
            raise ConfigError(
                f"{where}: the size label {size!r} cannot be part of a file name (letters, "
                "digits, '_', '.', '-' only); set architectures[].label"
            )
        for key, tokens, blabel in grid:
            if tokens < step_tokens:
                raise ConfigError(
                    f"{key}: {tokens:,} tokens for size {size} is less than one optimizer "
                    f"step ({step_tokens:,} tokens = micro_batch_size {cfg.micro_batch_size} "
                    f"x grad_accum {cfg.grad_accum} x corpus.block_size {block_size} x "
                    f"{max(int(gpus), 1)} GPU(s)): 0 training steps; raise the budget"
                )
            steps = math.ceil(tokens / step_tokens)
            for seed in seeds or [None]:
                model = f"sweep_{name}_{size}_{blabel}" + ("" if seed is None else f"_s{seed}")
                train = {**own_train, "max_steps": steps}
                if seed is not None:
                    train["seed"] = int(seed)
                spec = {
                    "objective": sweep["objective"],
                    "tokenizer": sweep["tokenizer"],
                    "corpus": sweep.get("corpus") or "cds",
                    "preset": preset,
                    **({"arch": sweep["arch"]} if sweep.get("arch") else {}),
                    "overrides": dict(overrides),
                    "train": train,
                }
                points.append(SweepPoint(model, name, size, blabel, tokens, steps, seed, spec))
    return points


def expand_sweeps(config: Mapping[str, Any], existing: Mapping[str, Any]) -> dict[str, list]:
    """Every sweep of `config` (``sweeps``) as {sweep name: [SweepPoint]}; ConfigError for a
    name that is used twice (within the sweeps or by an entry of `existing`, the
    pretrain.models entries) or a tokenizer or corpus that is not defined."""
    pretrain = config.get("pretrain") or {}
    tokenizers = set(config.get("tokenizers") or {})
    corpora = set(config.get("corpora") or {})
    block = int((config.get("corpus") or {}).get("block_size") or 0)
    out: dict[str, list] = {}
    seen: dict[str, str] = {m: f"pretrain.models.{m}" for m in existing}
    for name, sweep in (config.get("sweeps") or {}).items():
        where = f"sweeps.{name}"
        if sweep.get("tokenizer") not in tokenizers:
            raise ConfigError(
                f"{where}.tokenizer: {sweep.get('tokenizer')!r} is not defined under "
                f"`tokenizers` (defined: {', '.join(sorted(tokenizers))})"
            )
        corpus = sweep.get("corpus") or "cds"
        if corpora and corpus not in corpora:
            raise ConfigError(
                f"{where}.corpus: {corpus!r} is not defined under `corpora` (defined: "
                f"{', '.join(sorted(corpora))})"
            )
        check_ssm_packing(where, sweep.get("arch"), corpus, config)
        points = expand_sweep(
            name,
            sweep,
            pretrain.get("train"),
            block,
            (pretrain.get("gpus", 1) or 1) * (pretrain.get("nodes", 1) or 1),
        )
        for p in points:
            if p.model in seen:
                raise ConfigError(
                    f"{where}: the run name {p.model!r} is used twice (also by "
                    f"{seen[p.model]}); give distinct budgets, sizes (architectures[].label) "
                    "or seeds, or rename the model"
                )
            seen[p.model] = where
        out[name] = points
    return out
