"""The typed records of a plan (dnalm.plan.load builds them; the rules read them)."""

from __future__ import annotations

from typing import Any

from dnalm.core.errors import ConfigError


class SampleTable(dict):
    """The samples of the sheet by ID. Looking up an ID that the sheet lacks names the sheet:
    the `sample` wildcard constraint is the ID pattern, not the list of samples
    (dnalm.plan.wildcards), so a target such as results/cds/unknown.tsv reaches the rules'
    lookups and stops here instead of in a KeyError."""

    def __init__(self, samples: Any = (), sheet: str = "the sample sheet") -> None:
        super().__init__(samples)
        self.sheet = sheet

    def __missing__(self, sample: str):
        raise ConfigError(
            f"sample {sample!r} is not in {self.sheet}; ask for the files of a sample the "
            f"sheet lists ({', '.join(sorted(self)[:5])}{', ...' if len(self) > 5 else ''})"
        )
