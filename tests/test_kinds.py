"""The registries of kinds (dnalm.kinds) and the config schema agree: the schema's enums of
architectures, override keys, default-architecture presets and losses are the registry's,
so a kind added to its registry and forgotten in the schema (or the reverse) fails here."""

from __future__ import annotations

from pathlib import Path

import yaml

from dnalm.kinds.archs import ARCH_KEYS, ARCHS, OBJECTIVES, arch_names, default_arch
from dnalm.kinds.losses import LOSSES

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
MODEL = SCHEMA["properties"]["pretrain"]["properties"]["models"]["additionalProperties"]


def test_schema_enums_are_the_registries():
    props = MODEL["properties"]
    assert props["objective"]["enum"] == list(OBJECTIVES)
    assert props["arch"]["enum"] == list(ARCHS.names())
    assert props["overrides"]["propertyNames"]["enum"] == list(ARCH_KEYS)
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
