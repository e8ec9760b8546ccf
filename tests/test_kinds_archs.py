"""The registries of kinds (dnalm.kinds) and the config schema agree. The schema lists no
architecture names and no override keys (common.smk checks them against dnalm.kinds.archs
before the schema, with the model named), so an architecture is its descriptor and its
builder only; the enums it does keep (objectives, the default architectures' presets, losses
and their options) are the registries', so a kind added to its registry and forgotten in the
schema (or the reverse) fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dnalm.core.errors import ConfigError
from dnalm.kinds.archs import (
    ARCH_KEYS,
    ARCHS,
    OBJECTIVES,
    arch_names,
    check_presets,
    default_arch,
)
from dnalm.kinds.losses import LOSSES

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
MODEL = SCHEMA["properties"]["pretrain"]["properties"]["models"]["additionalProperties"]


def test_schema_enums_are_the_registries():
    props = MODEL["properties"]
    assert props["objective"]["enum"] == list(OBJECTIVES)
    # no second copy of the architectures or their keys
    assert "enum" not in props["arch"]
    assert "propertyNames" not in props["overrides"]
    sweep = SCHEMA["properties"]["sweeps"]["additionalProperties"]["properties"]
    assert "enum" not in sweep["arch"]
    presets = {
        (rule["if"]["properties"]["objective"]["const"], rule["if"]["properties"]["arch"]["const"]):
        rule["then"]["properties"]["preset"]["enum"]
        for rule in MODEL["allOf"]
    }  # fmt: skip
    assert presets == {(o, default_arch(o)): list(ARCHS.get(default_arch(o)).presets)
                       for o in OBJECTIVES}  # fmt: skip
    assert props["loss"]["enum"] == list(LOSSES.names())
    options = {k for loss in LOSSES for k in loss.options}
    assert set(props["loss_options"]["properties"]) == options


def test_every_objective_has_one_default_architecture_and_consistent_descriptors():
    for objective in OBJECTIVES:
        defaults = [a.name for a in ARCHS if a.objective == objective and a.default]
        assert defaults == [arch_names(objective)[0]]
    for arch in ARCHS:
        assert arch.objective in OBJECTIVES
        assert arch.model_type, arch.name
        assert arch.block_path, arch.name
        assert arch.lora_targets, arch.name
        assert "tiny" in arch.presets, arch.name
        assert set(arch.refuses) <= set(ARCH_KEYS), arch.name
        assert not set(arch.extra_keys) & set(arch.refuses), arch.name
        assert arch.d_ff_rule in ("4x", "swiglu")
        assert arch.no_packing is None or arch.state_space


def test_unknown_arch_and_override_key_stop_the_dag_build_naming_the_model():
    models = {"m": {"objective": "mlm", "arch": "esn", "tokenizer": "t", "preset": "tiny"}}
    with pytest.raises(ConfigError, match=r"pretrain\.models\.m\.arch: 'esn' is not an mlm"):
        check_presets({"pretrain": {"models": models}})
    models["m"] = {**models["m"], "arch": "esm", "overrides": {"position_embedding": "rotary"}}
    with pytest.raises(ConfigError, match=r"did you mean 'position_embedding_type'"):
        check_presets({"pretrain": {"models": models}})
    models["m"]["overrides"] = {"position_embedding_type": "rotary"}
    check_presets({"pretrain": {"models": models}})


def test_the_registries_import_without_torch():
    """common.smk reads them at DAG build: no torch, transformers or numpy."""
    import subprocess
    import sys

    code = (
        "import sys, dnalm.kinds.archs, dnalm.kinds.losses; "
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
