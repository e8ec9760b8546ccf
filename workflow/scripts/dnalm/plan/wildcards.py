"""Wildcard constraints of the workflow (the `wildcard_constraints:` block of common.smk).

Snakemake copies a global constraint into every output pattern that uses the wildcard and
re-reads that pattern (regex substitution over the whole string) for each job it builds, and
it matches every candidate file against it. A constraint that lists the names (``a|b|c``)
therefore costs O(names) per job: harmless for a handful of tokenizers or models, but
quadratic in the number of samples (a 10,000-sample sheet made the dry run ~5x slower than
Snakemake's own cost). Samples get a constraint of fixed length instead: the sample-ID
pattern of the sheet, minus the IDs the sheet reserves for the workflow's own files. It lets
through the same sheet IDs and keeps those files (results/cds/qc_summary.tsv, ...) from
matching a per-sample rule; an ID that is not in the sheet is refused by the plan's lookup
(Plan.sample) with a clear message instead of by the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: the extensions of the workflow's own files whose stem is a reserved sample ID
#: (results/cds/qc_summary.tsv, results/cds/qc.png, results/logs/cds/qc.log, ...)
RESERVED_FILE_SUFFIXES = (".tsv", ".fa.gz", ".png", ".log", ".json")


def alternatives(names: Iterable[str]) -> str:
    """A wildcard pattern matching exactly these names (or nothing). For short lists only
    (tokenizers, models, runs): its length grows with the number of names."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!x)x"


def sample_constraint(id_pattern: str, reserved: Iterable[str]) -> str:
    """The `sample` wildcard constraint: a sample ID of the sheet's `id_pattern` (its JSON
    schema pattern, with or without ^...$) that is not one of the `reserved` IDs followed by
    nothing but a file extension of the workflow's own files."""
    body = id_pattern.removeprefix("^").removesuffix("$")
    names = "|".join(re.escape(r) for r in sorted(reserved))
    suffixes = "|".join(re.escape(s) for s in RESERVED_FILE_SUFFIXES)
    if not names:
        return body
    return f"(?!(?:{names})(?:{suffixes})?$){body}"
