"""Seed replicates: one config entry with ``seeds: [s0, s1, ...]`` becomes one run per seed.

Pretraining models (``pretrain.models.X.seeds``), fine-tuning runs (``finetune.runs.X.seeds``)
and the one-hot CNN (``baselines.onehot_cnn.seeds``) take a list of seeds. The first seed's
replicate keeps the entry's own name (and so every path an entry without seeds has); every
further seed s is a sibling entry named ``X_seed{s}``. A replicate is the entry with its
training ``seed`` set to s. A fine-tuning replicate with seed s fine-tunes the pretraining
replicate with the same seed when its model has one, else the model itself (then only the
fine-tuning seed varies). Names ending in ``_seed<digits>`` are reserved for replicates.

The comparison tables fold the replicates of one entry back into one row
(:func:`replicate_base`): mean and standard deviation over seeds, per-seed values kept.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from dnalm.core.errors import ConfigError

SUFFIX_RE = re.compile(r"^(?P<base>.+)_seed(?P<seed>[0-9]+)$")


def replicate_name(base: str, seeds: list[int] | None, seed: int) -> str:
    """The entry name of `base`'s replicate with `seed` (the first seed keeps `base`)."""
    if not seeds or seed == seeds[0]:
        return base
    return f"{base}_seed{seed}"


def replicate_base(name: str) -> str:
    """The config entry a run folder name belongs to (`X_seed3` -> `X`)."""
    match = SUFFIX_RE.match(name)
    return match["base"] if match else name


def check_seeds(seeds: Any, where: str) -> list[int] | None:
    """The seed list of an entry (None without one); ConfigError naming `where` if bad."""
    if seeds is None:
        return None
    ok = (
        isinstance(seeds, list)
        and seeds
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    )
    if not ok:
        raise ConfigError(f"{where}.seeds: want a non-empty list of integers >= 0, not {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}.seeds: {seeds} repeats a seed")
    return list(seeds)


def _replicates(spec: dict[str, Any], where: str):
    """(seed or None, seeds, copy of spec without `seeds` and with train.seed set)."""
    seeds = check_seeds(spec.get("seeds"), where)
    base = {k: copy.deepcopy(v) for k, v in spec.items() if k != "seeds"}
    if not seeds:
        yield None, None, base
        return
    for seed in seeds:
        rep = copy.deepcopy(base)
        rep["train"] = {**(rep.get("train") or {}), "seed": seed}
        yield seed, seeds, rep


def expand_models(models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """pretrain.models with every seeded entry replaced by its replicates."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in models.items():
        for seed, seeds, rep in _replicates(spec, f"pretrain.models.{name}"):
            out[name if seed is None else replicate_name(name, seeds, seed)] = rep
    return out


def expand_runs(
    runs: dict[str, dict[str, Any]], models: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """finetune.runs with every seeded entry replaced by its replicates; `models` is the
    un-expanded pretrain.models (to find the pretraining replicate of the same seed)."""
    out: dict[str, dict[str, Any]] = {}
    for name, spec in runs.items():
        for seed, seeds, rep in _replicates(spec, f"finetune.runs.{name}"):
            if seed is None:
                out[name] = rep
                continue
            model_seeds = (models.get(rep["model"]) or {}).get("seeds") or []
            if seed in model_seeds:
                rep["model"] = replicate_name(rep["model"], model_seeds, seed)
            out[replicate_name(name, seeds, seed)] = rep
    return out


def cnn_replicates(cnn: dict[str, Any], name: str = "onehot_cnn") -> dict[str, int | None]:
    """Result folder name -> seed (None: the configured training seed) of the CNN."""
    seeds = check_seeds(cnn.get("seeds"), f"baselines.{name}")
    if not seeds:
        return {name: None}
    return {replicate_name(name, seeds, s): s for s in seeds}
