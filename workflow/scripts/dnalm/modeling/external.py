"""Loading an external model (``models.external``; dnalm.core.hub) for fine-tuning or
embedding: its snapshot, checked against the provenance record the fetch rule wrote, before
transformers reads any file of it.

:func:`prepare` resolves the entry to its snapshot offline (the Hugging Face cache, or the
local folder), checks that every recorded code and weight file still has its sha256
(:func:`dnalm.core.hub.verify_snapshot`: a changed file stops here, before any of the
repository's code is imported) and the folder's files (pickle-only weights, an ``auto_map``
without the opt-in). :func:`load_external` then loads it with the Auto class of the entry's
objective (``mlm``: AutoModelForMaskedLM, ``gpt``: AutoModelForCausalLM, ``encoder``:
AutoModel), safetensors only, ``trust_remote_code`` only where the entry sets it, and its
tokenizer (the folder's, or the entry's ``tokenizer`` folder) wrapped as :class:`HFTokenizer`,
the interface fine-tuning uses for dnalm's own tokenizers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from dnalm.core.artifacts import CONFIG_JSON, PROVENANCE_JSON
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.hub import (
    RECORD,
    ExternalModel,
    check_folder_files,
    external_model,
    provenance,
    read_provenance,
    snapshot_folder,
    verify_snapshot,
    write_provenance,
)
from dnalm.modeling.loader import LoadedFolder, register_model_types

#: the Auto class of each objective
AUTO_CLASSES = {"mlm": AutoModelForMaskedLM, "gpt": AutoModelForCausalLM, "encoder": AutoModel}

#: attention projections LoRA adapts, by the names transformers models give them (the first
#: group of which the loaded model has every name is used)
LORA_NAME_GROUPS = (
    ("query", "value"),  # BERT, ESM (NT-v1, NT-v2)
    ("q_proj", "v_proj"),  # OPT, Llama, Mistral
    ("Wqkv",),  # ModernBERT, DNABERT-2
    ("query_key_value",),  # GPT-NeoX
    ("c_attn",),  # GPT-2
    ("in_proj", "out_proj"),  # Mamba, Caduceus, HyenaDNA's mixers
)


def prepare(
    spec: Mapping[str, Any], record_path: str | os.PathLike
) -> tuple[ExternalModel, Path, dict[str, Any]]:
    """The entry, its snapshot folder and its provenance record, after every check that
    must come before transformers reads the folder (module docstring)."""
    model = external_model(str(spec["name"]), spec)
    record = read_provenance(record_path)
    folder = snapshot_folder(model)  # the cache only: the fetch rule downloaded it
    verify_snapshot(model, folder, record, str(record_path))
    check_model_type(model, folder, check_folder_files(model, folder))
    return model, folder, record


#: model types that a package of their own registers with the transformers Auto classes
#: when imported (the Hub folder has no code of its own, so neither the built-in classes nor
#: trust_remote_code can load it): model type -> the import that registers it
PACKAGE_MODEL_TYPES = {
    "GPN": "gpn.model",  # songlab-cal/gpn, gpn/model.py: AutoConfig.register("GPN", ...)
    "ConvNet": "gpn.model",  # the same file: AutoConfig.register("ConvNet", ...)
    "GPNRoFormer": "gpn.model",  # the same file: AutoConfig.register("GPNRoFormer", ...)
    "GPNStar": "gpn.star.model",  # gpn/star/model.py: AutoConfig.register("GPNStar", ...)
}


def check_model_type(model: ExternalModel, folder: Path, config: Mapping[str, Any]) -> None:
    """Before anything of a folder is loaded: an entry with remote code must load with an
    Auto class its ``auto_map`` names (NT-v2's names no AutoModel, so objective encoder
    would get transformers' own EsmModel); a folder without code of its own (no
    ``auto_map``) must have a model type transformers knows (or one of dnalm's own); one
    that a separate package registers when imported (GPN's ``import gpn.model``) is
    refused, naming the type and the package: the workflow imports no model package."""
    auto_map = config.get("auto_map")
    if auto_map and model.trust_remote_code:
        name = AUTO_CLASSES[model.objective].__name__
        if isinstance(auto_map, Mapping) and name not in auto_map:
            raise ConfigError(
                f"{model.key}.objective: {model.objective!r} loads with {name}, which the "
                f"auto_map of {folder / CONFIG_JSON} does not name (it names "
                f"{', '.join(sorted(auto_map))}), so transformers would build its own class "
                f"for model_type {config.get('model_type')!r} instead of the repository's "
                "code, with weights that do not fit it. Nothing was loaded. Set objective to "
                "one whose class the auto_map names (AutoModelForMaskedLM: mlm, "
                "AutoModelForCausalLM: gpt, AutoModel: encoder)"
            )
    if auto_map:
        return
    model_type = config.get("model_type")
    register_model_types(str(model_type))
    if isinstance(model_type, str) and model_type in CONFIG_MAPPING:
        return
    package = PACKAGE_MODEL_TYPES.get(str(model_type))
    why = (
        f"it is registered by the Python package {package.split('.')[0]!r} when "
        f"`import {package}` runs (its model card's usage), which the workflow does not do"
        if package
        else "it has no code of its own (no auto_map) either"
    )
    raise InputFormatError(
        f"{model.key}: {folder / CONFIG_JSON} has model_type {model_type!r}, which "
        f"transformers does not know; {why}. Nothing was loaded. Use a model whose type "
        "transformers knows or whose repository carries its code (auto_map, with "
        "trust_remote_code), or convert it to one"
    )


class HFTokenizer:
    """A transformers tokenizer with the methods fine-tuning calls on dnalm's tokenizers:
    ``encode`` (ids as a NumPy array), ``base_to_token_index``, ``pad_id``, ``bos_id`` (the
    leading special token the tokenizer adds, e.g. NT's ``<cls>``) and ``eos_id``."""

    def __init__(self, hf) -> None:
        self.hf = hf
        self.pad_id = hf.pad_token_id
        self.eos_id = hf.eos_token_id
        probe = hf("A", add_special_tokens=True)["input_ids"]
        special = set(hf.all_special_ids)
        self.bos_id = probe[0] if probe and probe[0] in special else None
        self.vocab_size = len(hf)

    def encode(self, seq: str, add_special_tokens: bool = True) -> np.ndarray:
        ids = self.hf(seq, add_special_tokens=add_special_tokens)["input_ids"]
        return np.asarray(ids, dtype=np.int64)

    def base_to_token_index(self, seq: str) -> np.ndarray:
        """For each base, the index of the token that covers it among the tokens without
        specials (-1: none), from the tokens' texts (``##`` and ``▁`` marks dropped)."""
        ids = self.hf(seq, add_special_tokens=False)["input_ids"]
        out = np.full(len(seq), -1, np.int64)
        pos = 0
        for i, tok in enumerate(self.hf.convert_ids_to_tokens(ids)):
            if tok == self.hf.unk_token:
                n = 1
            else:
                n = len(str(tok).replace("##", "").replace("\u2581", "").replace(" ", ""))
            out[pos : pos + n] = i
            pos += n
        return out


def load_tokenizer_of(model: ExternalModel, folder: Path) -> HFTokenizer:
    src = Path(model.tokenizer).expanduser() if model.tokenizer else folder
    try:
        hf = AutoTokenizer.from_pretrained(
            str(src), trust_remote_code=model.trust_remote_code, local_files_only=True
        )
    except (OSError, ValueError) as err:
        raise InputFormatError(
            f"{model.key}: cannot load the tokenizer of {src} ({err}); set the entry's "
            "tokenizer to a tokenizer folder"
        ) from err
    if hf.pad_token_id is None:
        if hf.eos_token is None:
            raise InputFormatError(f"{model.key}: the tokenizer of {src} has no pad or eos token")
        hf.pad_token = hf.eos_token
    hf.padding_side = "right"
    return HFTokenizer(hf)


def load_external(
    spec: Mapping[str, Any],
    record_path: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    tokenizer: bool = True,
) -> LoadedFolder:
    """An external entry's model (the Auto class of its objective) and tokenizer, after
    :func:`prepare`. `device`: None leaves it where transformers loads it (fine-tuning
    moves it); else it is moved there in eval mode."""
    model, folder, record = prepare(spec, record_path)
    trust = model.trust_remote_code
    try:
        config = AutoConfig.from_pretrained(
            str(folder), trust_remote_code=trust, local_files_only=True
        )
        net, info = AUTO_CLASSES[model.objective].from_pretrained(
            str(folder),
            trust_remote_code=trust,
            use_safetensors=True,
            local_files_only=True,
            output_loading_info=True,
        )
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{model.key}: cannot load {folder} as objective {model.objective!r} ({err}); "
            "check the entry's objective against the model's config.json architectures"
        ) from err
    prefix = getattr(net, "base_model_prefix", "") or ""
    missing = [
        k
        for k in info.get("missing_keys", [])
        if net.base_model is net or k.startswith(prefix + ".")
    ]
    if missing:
        raise InputFormatError(
            f"{model.key}: {len(missing)} backbone weight(s) of {folder} are missing (e.g. "
            f"{sorted(missing)[:3]}) and would be random; check the entry's objective "
            f"({model.objective}) against config.json's architectures {config.architectures}"
        )
    if device is not None:
        net = net.to(torch.device(device)).eval()
    loaded = LoadedFolder(folder, net, config, model.objective, run={"external": record})
    if tokenizer:
        loaded.tokenizer = load_tokenizer_of(model, folder)
    return loaded


def external_from_config(
    name: str, config_file: str | os.PathLike, scratch: str | os.PathLike
) -> dict[str, Any]:
    """``{"entry", "record"}`` of the entry ``models.external.<name>`` of the workflow config
    `config_file` (``dnalm score|generate|next|vep --external NAME --config FILE``): the
    entry checked as the plan checks it, and the provenance record the workflow's fetch rule
    wrote (:data:`RECORD`, from the current directory, the run's). Without that record a
    model without code of its own is recorded now, from its folder or the Hugging Face
    cache, into `scratch`; one with remote code is refused, as its code is only run against
    the hashes recorded when it was fetched."""
    import yaml  # lazy: only the command line reads a config file here

    try:
        config = yaml.safe_load(Path(config_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--config {config_file}: cannot read it ({err})") from err
    entries = (config.get("models") or {}).get("external") or {}
    if name not in entries:
        raise ConfigError(
            f"--external {name}: {config_file} has no models.external.{name} (entries: "
            f"{', '.join(sorted(entries)) or 'none'}); name one of them"
        )
    model = external_model(name, entries[name])
    record = Path(RECORD.format(ename=name))
    if not record.is_file():
        if model.trust_remote_code:
            raise ConfigError(
                f"{model.key}: runs its own code, which is only loaded against the hashes "
                f"recorded when it was fetched, and {record} is missing here; run the "
                f"workflow's fetch first (snakemake {record}) from this directory"
            )
        folder = snapshot_folder(model)
        check_folder_files(model, folder)
        record = write_provenance(Path(scratch) / PROVENANCE_JSON, provenance(model, folder))
    return {"entry": model.spec(), "record": str(record)}


def lora_targets(backbone: torch.nn.Module, where: str) -> list[str]:
    """The module names LoRA adapts in a backbone not built by dnalm: the first group of
    :data:`LORA_NAME_GROUPS` whose every name is a linear layer of it. ConfigError naming
    `where` and the linear layers it has when none matches."""
    linear = {
        name.rsplit(".", 1)[-1]
        for name, m in backbone.named_modules()
        if isinstance(m, torch.nn.Linear)
    }
    for group in LORA_NAME_GROUPS:
        if set(group) <= linear:
            return list(group)
    raise ConfigError(
        f"{where}: no attention projections LoRA knows in {type(backbone).__name__} (its "
        f"linear layers: {', '.join(sorted(linear)[:12]) or 'none'}); use regime frozen, or a "
        "model whose attention has query/value (or q_proj/v_proj, Wqkv, ...) layers"
    )


__all__ = [
    "AUTO_CLASSES",
    "LORA_NAME_GROUPS",
    "PACKAGE_MODEL_TYPES",
    "HFTokenizer",
    "check_model_type",
    "external_from_config",
    "load_external",
    "lora_targets",
    "prepare",
]
