"""The registry of kinds: what each kind of thing the workflow knows is, declared once.

A *kind* is one value of a config key that selects code: an architecture (``arch``), a
tokenizer type, a pretraining loss, a sample-sheet format, a built-in task kind. Each is
described here by a torch-free, frozen descriptor (its name, presets, the keys it accepts and
why it refuses others, nucleotides per token, reverse-complement support, LoRA targets, ...);
the code that builds it lives in its own file beside the stage that uses it. The config
schema's enums, the plan's checks and the builders all read these descriptors, so adding a
kind means adding a descriptor and a builder, nothing else.

This package imports nothing heavier than :mod:`dnalm.core` (it runs at DAG build).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from dnalm.core.errors import ConfigError


@dataclass(frozen=True)
class Kind:
    """Base of every descriptor: a unique ``name`` and a one-line ``summary`` for docs."""

    name: str
    summary: str


K = TypeVar("K", bound=Kind)


class Registry(Generic[K]):
    """Descriptors of one family of kinds, in declaration order (the first is the default
    where a family has one)."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._kinds: dict[str, K] = {}

    def register(self, kind: K) -> K:
        if kind.name in self._kinds:
            raise ValueError(f"{self.family} {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind
        return kind

    def get(self, name: str, where: str = "") -> K:
        """The descriptor called `name`, or a ConfigError naming `where` and the known names."""
        try:
            return self._kinds[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self._kinds), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            at = f"{where}: " if where else ""
            raise ConfigError(
                f"{at}unknown {self.family} {name!r}{hint}; known: {', '.join(self._kinds)}"
            ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def __iter__(self) -> Iterator[K]:
        return iter(self._kinds.values())

    def __len__(self) -> int:
        return len(self._kinds)
