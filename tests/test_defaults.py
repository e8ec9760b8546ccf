"""Defaults live in one place: the config schema (workflow/schemas/config.schema.yaml), which
fills them in before any job (dnalm.plan.load). The other two places that state them must
agree with it: the training-settings dataclasses of dnalm.plan.sections (they add the same
defaults in the job, because the plan leaves the training settings as the config wrote
them) and the default columns of config/README.md's tables (and the sample sheet's table
against workflow/schemas/samples.schema.yaml)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from dnalm.plan.sections import training_settings

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
SAMPLES_SCHEMA = yaml.safe_load((REPO / "workflow/schemas/samples.schema.yaml").read_text())
README = (REPO / "config/README.md").read_text(encoding="utf-8")
MISSING = object()


def resolve(node: dict, schema: dict = SCHEMA) -> dict:
    """`node` with its local $ref (#/$defs/...) merged in."""
    while isinstance(node, dict) and "$ref" in node:
        target = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def subschema(path: list[str], schema: dict = SCHEMA) -> dict | None:
    """The schema of the config key at `path` (entries of named sections through
    additionalProperties); None where the schema has no such key."""
    node = schema
    for key in path:
        node = resolve(node, schema)
        if key not in (node.get("properties") or {}) and isinstance(
            node.get("additionalProperties"), dict
        ):  # a named section (tokenizers, corpora, ...): the key is one of an entry's
            node = resolve(node["additionalProperties"], schema)
        if key not in (node.get("properties") or {}):
            return None
        node = node["properties"][key]
    return resolve(node, schema)


def readme_defaults() -> list[tuple[str, str, str]]:
    """(config path, key, default cell) of every row of the README's key/default tables,
    under the `### \\`section\\`` heading above the table. A row naming several keys
    (`a`, `b`) with as many comma-separated defaults pairs them; keys after a dotted first
    key (`model.x`, `y`) share its prefix."""
    rows = []
    section, default_col = None, None
    for line in README.splitlines():
        heading = re.match(r"^###+ `([^`]+)`", line)
        if heading or line.startswith("## "):
            section, default_col = (heading.group(1) if heading else None), None
            continue
        if not line.startswith("|"):
            default_col = None if not line.strip() else default_col
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "key" and "default" in cells:
            default_col = cells.index("default")
            continue
        if default_col is None or section is None or set(line) <= set("|-: "):
            continue
        keys = re.findall(r"`([^`]+)`", cells[0])
        values = [cells[default_col]]
        if len(keys) > 1:
            parts = [p.strip() for p in cells[default_col].split(",")]
            values = parts if len(parts) == len(keys) else [MISSING] * len(keys)
        prefix = keys[0].rpartition(".")[0] if keys else ""
        for i, (key, value) in enumerate(zip(keys, values, strict=True)):
            if i and prefix and "." not in key:
                key = f"{prefix}.{key}"
            rows.append((section, key, value))
    return rows


def parse_cell(cell) -> object:
    """A default cell as a value (`x`, 0.5, true, [a, b], null), or MISSING for prose."""
    if cell is MISSING:
        return MISSING
    text = cell.strip().strip("`").strip()
    if not text or (" " in text.replace(", ", ",") and not text.startswith("[")):
        return MISSING
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return MISSING


#: README keys whose default is applied in code, not by the schema, and why
CODE_DEFAULTS = {
    # the keys of a tokenizer entry depend on its type; dnalm.tokenization applies them
    "tokenizers.k": "per tokenizer type",
    "tokenizers.keep_case": "per tokenizer type",
    "tokenizers.max_train_nt": "per tokenizer type",
    "tokenizers.model_max_length": "per tokenizer type",
    # dnalm.genome.corpora.corpus_spec: they depend on the corpus source
    "corpora.packing": "the shared corpus.packing",
    "corpora.window": "per source",
    "corpora.stride": "per source",
    "corpora.min_length": "per source",
    "corpora.features": "regions only",
}


def test_readme_tables_are_found():
    assert len(readme_defaults()) > 40


def _schema_rows() -> list[tuple[str, str, str]]:
    """The README rows whose default the schema applies (CODE_DEFAULTS left out)."""
    return [
        r
        for r in readme_defaults()
        if parse_cell(r[2]) is not MISSING and f"{r[0]}.{r[1]}" not in CODE_DEFAULTS
    ]


def test_code_defaults_are_documented_rows():
    """Every key exempted above is a README row with a default, so the list cannot go stale."""
    documented = {f"{s}.{k}" for s, k, c in readme_defaults() if parse_cell(c) is not MISSING}
    assert set(CODE_DEFAULTS) <= documented, set(CODE_DEFAULTS) - documented


@pytest.mark.parametrize(
    ("section", "key", "cell"),
    _schema_rows(),
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_readme_default_is_the_schemas(section, key, cell):
    path = [*section.split("."), *key.split(".")]
    node = subschema(path)
    assert node is not None, f"config/README.md documents {'.'.join(path)}, the schema lacks it"
    assert "default" in node, f"{'.'.join(path)}: the README gives a default, the schema none"
    assert parse_cell(cell) == node["default"], (
        f"{'.'.join(path)}: config/README.md says {cell}, the schema {node['default']!r}"
    )


def test_sample_sheet_defaults_are_the_schemas():
    rows = re.findall(r"^\| `([a-z_]+)`[^|]*\| (?:yes|no|for [^|]*) \| ([^|]*) \|", README, re.M)
    assert rows
    for column, cell in rows:
        prop = SAMPLES_SCHEMA["properties"][column]
        value = parse_cell(cell)
        if value is MISSING or cell.strip() == "empty":
            continue
        assert prop.get("default") == value, (column, cell, prop.get("default"))


def test_training_dataclasses_default_as_the_schema():
    """Where both give a default, the dataclass (applied in the job) and the schema (applied
    before it) agree, so a setting left out means the same in both places."""
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    bad = []
    for path, _parent, _key, cls in training_settings(config):
        node = subschema(path.split("."))
        props = (node or {}).get("properties") or {}
        for f in dataclasses.fields(cls):
            if f.name not in props or "default" not in props[f.name]:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                continue
            if default != props[f.name]["default"]:
                bad.append(
                    f"{path}.{f.name}: dataclass {default!r}, schema {props[f.name]['default']!r}"
                )
    assert not bad, bad
