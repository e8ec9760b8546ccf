"""dnalm.plan: the validated config and sample sheet as typed records, without Snakemake."""

from __future__ import annotations

import re

import pytest

from dnalm.core.errors import ConfigError
from dnalm.genome.samples import load_schema, reserved_sample_ids
from dnalm.plan.records import SampleTable
from dnalm.plan.wildcards import alternatives, sample_constraint

SCHEMA = load_schema()
SAMPLE_RE = sample_constraint(
    SCHEMA["properties"]["sample"]["pattern"], reserved_sample_ids(SCHEMA)
)


def matches(pattern: str, path: str) -> dict | None:
    """The wildcards of `path` against `pattern` ({name} = the constraint), as Snakemake."""
    regex = re.escape(pattern).replace(r"\{sample\}", f"(?P<sample>{SAMPLE_RE})")
    m = re.match(regex + "$", path)
    return m.groupdict() if m else None


@pytest.mark.parametrize(
    ("path", "sample"),
    [
        ("results/cds/ecoli.tsv", "ecoli"),
        ("results/cds/qc_summary2.tsv", "qc_summary2"),
        ("results/cds/qc.final.tsv", "qc.final"),
        ("results/cds/E_coli-K12.v2.fa.gz", "E_coli-K12.v2"),
        ("results/cds/qc_summary.tsv", None),  # rule cds_qc's file, not a sample's
        ("results/cds/a/b.tsv", None),
        ("results/cds/.hidden.tsv", None),
    ],
)
def test_sample_constraint_keeps_the_workflow_files_out(path, sample):
    got = matches("results/cds/{sample}.tsv", path) or matches("results/cds/{sample}.fa.gz", path)
    assert (got or {}).get("sample") == sample


def test_sample_constraint_does_not_grow_with_the_samples():
    """A list of sample names would be copied into every output pattern (O(samples) per
    job); the constraint is the fixed-length ID pattern."""
    assert len(SAMPLE_RE) < 200


def test_alternatives_match_exactly_the_names():
    pattern = alternatives(["a.b", "c"])
    assert re.fullmatch(pattern, "a.b")
    assert re.fullmatch(pattern, "c")
    assert not re.fullmatch(pattern, "axb")
    assert not re.fullmatch(alternatives([]), "")


def test_unknown_sample_is_named_with_the_sheet():
    table = SampleTable({"ecoli": 1}, "the sample sheet s.tsv")
    assert table["ecoli"] == 1
    with pytest.raises(ConfigError, match=r"'nosuch' is not in the sample sheet s.tsv.*ecoli"):
        table["nosuch"]
