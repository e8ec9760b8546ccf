"""The pretraining losses behind ``pretrain.models.*.loss``, declared once.

Each :class:`Loss` names its options (under ``loss_options``) with their defaults and the
tokenizer types it cannot be used with, and why. The losses themselves are computed in
:mod:`dnalm.training.objectives` (tests/test_layout.py checks every loss here has its branch
there); the config schema's ``loss`` enum and ``loss_options`` keys are checked against
:data:`LOSSES` by tests/test_kinds.py. :func:`loss_settings` is the one check of a model's
loss, at DAG build (common.smk, :func:`check_losses`) and in the pretraining job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dnalm.core.config import unknown_keys_message
from dnalm.core.errors import ConfigError

from . import Kind, Registry


@dataclass(frozen=True)
class Loss(Kind):
    """One pretraining loss: ``options`` (key -> default) and ``refuses`` (tokenizer types
    it cannot use) with ``refuses_why``. Every loss but ``ce`` is for causal models only."""

    options: Mapping[str, Any] = field(default_factory=dict)
    refuses: tuple[str, ...] = ()
    refuses_why: str = ""


LOSSES: Registry[Loss] = Registry("loss")

_WALK = (
    ("kmer", "kmer_overlapping", "codon", "bpe"),
    "the DNA walk needs one token per base (a nucleotide tokenizer)",
)

LOSSES.register(Loss("ce", "cross-entropy of the next (or masked) token; the default"))
LOSSES.register(
    Loss(
        "rc",
        "mean cross-entropy of both strands (+ consistency x their squared difference)",
        options={"consistency": 0.0},
        refuses=("codon", "bpe"),
        refuses_why="its tokens have no token-level reverse complement (a codon is read in the "
        "CDS's own frame and strand; a BPE token's reverse complement need not be in the "
        "vocabulary)",
    )
)
LOSSES.register(Loss("two_d", "the DNA-walk loss", refuses=_WALK[0], refuses_why=_WALK[1]))
LOSSES.register(
    Loss(
        "two_d_ce",
        "ce + two_d_weight x two_d",
        options={"two_d_weight": 1.0},
        refuses=_WALK[0],
        refuses_why=_WALK[1],
    )
)
LOSSES.register(
    Loss("headless", "teacher-less: inputs after the prefix become dummies", {"prefix": 0})
)


def loss_settings(
    name: str, spec: Mapping[str, Any], tokenizer_type: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(loss, its options with defaults) of the pretrain.models entry `name` (`spec`), after
    checking them: a known loss, a causal (gpt) model unless the loss is ce, known option keys
    with non-negative numbers (`prefix` an integer), and a tokenizer of `tokenizer_type` (None:
    not known here) the loss can use. Raises ConfigError naming the model and the key."""
    loss = spec.get("loss", "ce")
    if loss is None:
        loss = "ce"
    where = f"pretrain.models.{name}"
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ConfigError(
            f"{where}.loss: unknown loss {loss!r}; choose one of {', '.join(LOSSES.names())}"
        )
    if loss != "ce" and spec.get("objective") != "gpt":
        raise ConfigError(
            f"{where}.loss: {loss!r} is a loss of causal models, but the model's objective is "
            f"{spec.get('objective')!r}; masked (mlm) models train with ce only"
        )
    given = spec.get("loss_options") or {}
    if not isinstance(given, Mapping):
        raise ConfigError(f"{where}.loss_options: must be a mapping, got {given!r}")
    kind = LOSSES.get(loss)
    known = dict(kind.options)
    unknown = sorted((k for k in given if k not in known), key=str)
    if unknown:
        raise ConfigError(
            f"{where}.loss_options: {unknown_keys_message(unknown, list(known), f'{loss} loss')}"
            if known
            else f"{where}.loss_options: the {loss} loss takes no options, got {unknown}"
        )
    options = {**known, **given}
    for key, value in options.items():
        integer = key == "prefix"
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or value < 0:
            what = "an integer" if integer else "a number"
            raise ConfigError(f"{where}.loss_options.{key}: must be {what} >= 0, got {value!r}")
    if tokenizer_type in kind.refuses:
        raise ConfigError(
            f"{where}.loss: the {loss} loss cannot be used with the {tokenizer_type} tokenizer "
            f"{spec.get('tokenizer')!r}: {kind.refuses_why}"
        )
    return loss, options


def check_losses(config: Mapping[str, Any]) -> None:
    """loss_settings for every pretrain.models entry (the tokenizer type from `tokenizers`)."""
    tokenizers = config.get("tokenizers") if isinstance(config, Mapping) else None
    tokenizers = tokenizers if isinstance(tokenizers, Mapping) else {}
    pretrain = config.get("pretrain") if isinstance(config, Mapping) else None
    models = pretrain.get("models") if isinstance(pretrain, Mapping) else None
    for name, spec in (models if isinstance(models, Mapping) else {}).items():
        if not isinstance(spec, Mapping):
            continue
        tok = tokenizers.get(spec.get("tokenizer"))
        loss_settings(name, spec, tok.get("type") if isinstance(tok, Mapping) else None)
