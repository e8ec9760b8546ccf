"""The one way to load a model folder: a pretrained model, a backbone to fine-tune, a model to
embed with, or a fine-tuned run's ``model/`` folder.

A model folder is what pretraining (or fine-tuning) writes: ``config.json``,
``model.safetensors``, the tokenizer files (``dnalm_tokenizer.json`` plus the transformers
``tokenizer.json``) and ``run.json`` (the run record; absent in folders made elsewhere).

Loading is offline for local folders, uses the Auto classes and never runs code from the
folder (no ``trust_remote_code``; only an external model named in the probe config may opt
in), and reads safetensors only. Before transformers sees a folder it is checked, so that a
folder we refuse says why in one line, naming the folder, instead of a traceback:

* no ``config.json`` (or one that is not JSON): not a model folder;
* a ``model_type`` transformers does not know (a folder whose ``auto_map`` points at custom
  modeling code): remote code is never executed;
* pickle weights (``pytorch_model.bin`` and friends) and no ``model.safetensors``: pickles are
  never loaded (unpickling can run code); the message says how to convert them.

dnalm's own model types (:data:`OWN_MODEL_TYPES`: the DNA+text model) are not built into
transformers: :func:`check_folder` registers the one a folder names with the Auto classes
(:func:`register_model_types`) before anything reads the folder. Nothing registers them at
import time.

Kinds (``load_model_folder(path, kind=...)``):

``lm``         the language model (masked for BERT/ModernBERT, causal otherwise), in eval
               mode on `device` (default CPU), with its tokenizer: inference;
``backbone``   the same class, left where transformers puts it (or seeded random weights
               with `random_init`), with the dnalm tokenizer checked against run.json:
               fine-tuning;
``auto``       the Auto class ``config.architectures`` names (``AutoModel`` for a plain
               encoder), refusing a checkpoint that leaves backbone weights uninitialised;
               local folders or hub ids: embeddings;
``finetuned``  a fine-tuning run's ``model/`` folder rebuilt as backbone + task head
               (``finetune.json``, ``head.safetensors``), in eval mode.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
)
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from dnalm.core.artifacts import (
    CONFIG_JSON,
    DNALM_TOKENIZER_JSON,
    FINETUNE_JSON,
    HEAD_SAFETENSORS,
    RUN_JSON,
    WEIGHTS_PICKLE,
    WEIGHTS_PICKLE_INDEX,
    WEIGHTS_SAFETENSORS,
    WEIGHTS_SAFETENSORS_INDEX,
)
from dnalm.core.config import FinetuneTrainConfig
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.hub import PICKLE_SUFFIXES
from dnalm.modeling.models import objective_of
from dnalm.modeling.task_model import FinetuneModel
from dnalm.tokenization.build import load_tokenizer

KINDS = ("lm", "backbone", "auto", "finetuned")

#: Weight files that are pickles (torch.load / TF / Flax formats); never loaded.
PICKLE_WEIGHTS = (WEIGHTS_PICKLE, WEIGHTS_PICKLE_INDEX)
SAFE_WEIGHTS = (WEIGHTS_SAFETENSORS, WEIGHTS_SAFETENSORS_INDEX)

#: dnalm's own transformers model types -> the module whose ``register()`` adds the config and
#: model classes to the Auto classes. A table of names, not an import: those modules belong to
#: later stages (multimodal), imported only when a folder of theirs is loaded.
OWN_MODEL_TYPES: dict[str, str] = {"dnalm_dnatext": "dnalm.multimodal.model"}


def register_model_types(*model_types: str) -> None:
    """Register dnalm's own model types (all of :data:`OWN_MODEL_TYPES` when none is named;
    other names are ignored) with the transformers Auto classes, so ``AutoConfig`` and
    ``AutoModelForMaskedLM`` load their folders without remote code. Idempotent."""
    for model_type in model_types or tuple(OWN_MODEL_TYPES):
        module = OWN_MODEL_TYPES.get(model_type)
        if module is not None:
            importlib.import_module(module).register()


@dataclass
class LoadedFolder:
    """What load_model_folder returns."""

    path: Path | str  # the folder (or the hub id as given)
    model: Any  # a transformers PreTrainedModel; a FinetuneModel for kind="finetuned"
    config: Any  # the transformers config
    objective: str  # "gpt" (causal), "mlm" (masked) or "encoder" (plain backbone)
    tokenizer: Any = None  # DnaTokenizer (dnalm_tokenizer.json) or AutoTokenizer; or None
    run: dict[str, Any] = field(default_factory=dict)  # run.json ({} when absent)
    finetune: dict[str, Any] | None = None  # finetune.json of a fine-tuned folder

    @property
    def dna_tokenizer(self) -> bool:
        """Whether the tokenizer is dnalm's own (else a transformers tokenizer)."""
        return self.tokenizer is not None and hasattr(self.tokenizer, "special_ids")


def read_run_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's run.json as pretraining wrote it ({} for folders made elsewhere)."""
    f = Path(folder) / RUN_JSON
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputFormatError(f"{f}: not valid JSON ({err})") from err


def check_folder(
    path: str | os.PathLike, *, weights: bool = True, remote_code: bool = False
) -> dict[str, Any]:
    """Check a local model folder before transformers reads it; returns its config.json.

    Raises ConfigError (no such folder, a model type that needs the folder's own code, unless
    `remote_code`: an external model the user opted in for) or InputFormatError (not a model
    folder, pickle weights, no weights: only with `weights`), each one line naming the
    folder."""
    folder = Path(path)
    config_file = folder / CONFIG_JSON
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such model folder (no config.json); train it first")
    if not config_file.is_file():
        raise InputFormatError(f"{folder}: no config.json; not a trained model folder")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFormatError(f"{config_file}: not valid JSON ({err})") from err
    if not isinstance(config, dict):
        raise InputFormatError(f"{config_file}: not a model config (a JSON object)")
    if isinstance(config.get("model_type"), str):
        register_model_types(config["model_type"])
    if not remote_code:
        _check_model_type(folder, config)
    if weights:
        _check_weights(folder)
    return config


def _check_model_type(folder: Path, config: dict[str, Any]) -> None:
    model_type = config.get("model_type")
    if isinstance(model_type, str) and model_type in CONFIG_MAPPING:
        return  # a built-in architecture; an auto_map beside it is ignored, never run
    custom = " through the auto_map in its config.json" if config.get("auto_map") else ""
    raise ConfigError(
        f"{folder}: model_type {model_type!r} is not an architecture transformers knows; the "
        f"folder asks for its own modeling code{custom}, and remote code is never executed "
        "(nothing was run): use a model saved with a built-in architecture"
    )


def _damaged(file: Path, why: str) -> InputFormatError:
    return InputFormatError(
        f"{file}: {why}; the file is truncated or damaged (a copy or a save that did not "
        f"finish): copy the model folder {file.parent} again, or rerun the job that wrote it"
    )


def safetensors_header(file: str | os.PathLike) -> dict[str, Any]:
    """The tensor table of a safetensors file (name -> dtype, shape, data_offsets), read
    without loading any tensor, after checking that the file is as long as its header says:
    InputFormatError naming the file and the fix for a truncated or damaged one."""
    file = Path(file)
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise _damaged(file, f"only {size} bytes, not even a safetensors header")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise _damaged(file, f"its header claims {n} bytes but the file has {size}")
        try:
            header = json.loads(fh.read(n))
            end = max(
                (int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"),
                default=0,
            )
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
            raise _damaged(file, f"its header is not a safetensors header ({err})") from err
    if size != 8 + n + end:
        raise _damaged(file, f"{size} bytes, but its header describes {8 + n + end}")
    return {k: t for k, t in header.items() if k != "__metadata__"}


def _check_weights(folder: Path) -> None:
    if (folder / WEIGHTS_SAFETENSORS).is_file():
        safetensors_header(folder / WEIGHTS_SAFETENSORS)
        return
    if any((folder / name).is_file() for name in SAFE_WEIGHTS):
        return
    pickles = sorted(
        f.name
        for f in folder.iterdir()
        if f.is_file() and (f.name in PICKLE_WEIGHTS or f.name.endswith(PICKLE_SUFFIXES))
    )
    if pickles:
        raise InputFormatError(
            f"{folder}: no model.safetensors, only pickle weights ({', '.join(pickles)}); "
            "pickle weights are never loaded (nothing in them was executed). Convert them "
            "where the model is trusted: load it and call "
            "model.save_pretrained(folder, safe_serialization=True)"
        )
    raise InputFormatError(f"{folder}: no model.safetensors; not a trained model folder")


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch's global RNG for a block and restore the previous state afterwards."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(state)


def _lm_class(config) -> tuple[Any, str]:
    """The LM class of a dnalm folder: masked for BERT-like models, causal otherwise."""
    if objective_of(config) == "mlm":
        return AutoModelForMaskedLM, "mlm"
    return AutoModelForCausalLM, "gpt"


def _auto_class(config) -> tuple[Any, str]:
    """The Auto class that matches the saved architecture, and the objective it implies
    ('gpt' = causal / next-token, 'mlm' = masked, 'encoder' = plain backbone)."""
    archs = list(getattr(config, "architectures", None) or [])
    arch = archs[0] if archs else ""
    if arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
        return AutoModelForCausalLM, "gpt"
    if arch.endswith("ForMaskedLM"):
        return AutoModelForMaskedLM, "mlm"
    causal = bool(getattr(config, "is_decoder", False)) and not getattr(
        config, "is_encoder_decoder", False
    )
    return AutoModel, "gpt" if causal else "encoder"


def load_model_folder(
    path: str | os.PathLike,
    *,
    kind: str = "lm",
    device: str | torch.device | None = None,
    random_init: bool = False,
    seed: int = 0,
    tokenizer: bool = True,
    expected_tokenizer_hash: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedFolder:
    """Load the model folder `path` as `kind` (module docstring).

    `device`: where to put the model (None: CPU, except ``backbone``, which stays where
    transformers loads it); `random_init`: same config, fresh weights drawn with `seed` (no
    weights are read); `tokenizer`: also load the folder's tokenizer (dnalm's when
    ``dnalm_tokenizer.json`` is there, else AutoTokenizer); `expected_tokenizer_hash`: the
    dnalm tokenizer the caller expects (``backbone``: checked with check_model_tokenizer);
    `trust_remote_code`: only for ``auto`` and an external model the user opted in for."""
    if kind not in KINDS:
        raise ConfigError(f"unknown model folder kind {kind!r}; choose one of {list(KINDS)}")
    if trust_remote_code and kind != "auto":
        raise ConfigError(f"{path}: remote code is never executed for a {kind} model folder")
    if kind == "finetuned":
        return _load_finetuned(Path(path), device)
    name = str(path)
    # a hub id ("org/name") is only possible for kind auto; anything else is a folder
    local = kind != "auto" or Path(name).exists() or Path(name).expanduser().is_absolute()
    if local:
        path = Path(name)
        check_folder(path, weights=not random_init, remote_code=trust_remote_code)

    try:
        config = AutoConfig.from_pretrained(
            name, trust_remote_code=trust_remote_code, local_files_only=local
        )
    except (OSError, ValueError) as err:
        hint = (
            "the folder needs a config.json (a Hugging Face model folder)"
            if local
            else "not a local path; as a hub id it needs network access or the HF cache"
        )
        if "trust_remote_code" in str(err):
            hint = "the model uses custom code: set trust_remote_code for it in the config"
        raise ConfigError(f"cannot load model config of {name!r}: {hint} ({err})") from err
    cls, objective = _auto_class(config) if kind == "auto" else _lm_class(config)
    if random_init:
        with seeded(seed):
            net = cls.from_config(config, trust_remote_code=trust_remote_code)
    else:
        try:
            net, info = cls.from_pretrained(
                name,
                trust_remote_code=trust_remote_code,
                use_safetensors=True,
                local_files_only=local,
                output_loading_info=True,
            )
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot load model weights of {name!r}: {err}") from err
        except RuntimeError as err:
            if not local or "mismatch" not in str(err):
                raise
            raise _config_mismatch(Path(name), cls, config) from err
        if kind == "auto":
            _refuse_missing_backbone_weights(name, net, config, info)
    if kind != "backbone" or device is not None:
        net = net.to(torch.device(device or "cpu")).eval()
    loaded = LoadedFolder(path, net, config, objective, run=read_run_record(path) if local else {})
    if kind == "backbone":
        tok = check_model_tokenizer(path, config, expected_tokenizer_hash, loaded.run)
        loaded.tokenizer = tok if tokenizer else None
    elif tokenizer and kind != "auto":
        loaded.tokenizer = load_folder_tokenizer(path)
        if kind == "lm":
            _check_vocab(path, loaded)
    return loaded


def _config_mismatch(folder: Path, cls, config) -> InputFormatError:
    """The error for weights whose shapes config.json contradicts (transformers refuses the
    load): the first tensors that differ, with config.json's vocab_size when it is the
    culprit. The model is built on the meta device (no memory) to learn its shapes."""
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in cls.from_config(config).state_dict().items()}
    saved = {
        k: tuple(t["shape"]) for k, t in safetensors_header(folder / WEIGHTS_SAFETENSORS).items()
    }
    diff = [
        (k, saved[k], shapes[k]) for k in sorted(saved) if k in shapes and saved[k] != shapes[k]
    ]
    what = "; ".join(
        f"{k} is {list(a)} in the weights, {list(b)} by config.json" for k, a, b in diff[:3]
    )
    vocab = getattr(config, "vocab_size", None)
    if vocab is not None and any(b and b[0] == vocab and a and a[0] != vocab for _, a, b in diff):
        seen = next(a[0] for _, a, b in diff if b and b[0] == vocab and a)
        what = f"config.json says vocab_size {vocab} but the weights have {seen} tokens ({what})"
    return InputFormatError(
        f"{folder}: {CONFIG_JSON} does not fit {WEIGHTS_SAFETENSORS}: {what or 'shapes differ'}; "
        f"the config was edited or belongs to another model: restore the folder's own "
        f"{CONFIG_JSON} (or export the model again)"
    )


def _refuse_missing_backbone_weights(name: str, net, config, info: dict) -> None:
    """Weights a checkpoint leaves uninitialised would be random; only the backbone matters
    here (a missing LM head is harmless)."""
    prefix = getattr(net, "base_model_prefix", "") or ""
    missing = [
        k
        for k in info.get("missing_keys", [])
        if not prefix or k.startswith(prefix + ".") or net.base_model is net
    ]
    if missing:
        raise InputFormatError(
            f"{name}: {len(missing)} weight(s) missing from the checkpoint (e.g. "
            f"{missing[:3]}); they would be random. Is this the right model folder / "
            f"architecture ({config.architectures})?"
        )


def load_folder_tokenizer(folder: str | os.PathLike):
    """The folder's tokenizer: dnalm's (``dnalm_tokenizer.json``), else AutoTokenizer."""
    folder = Path(folder)
    if (folder / DNALM_TOKENIZER_JSON).is_file():
        return load_tokenizer(folder)

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise InputFormatError(
            f"{folder}: cannot load the tokenizer (expected dnalm_tokenizer.json or "
            f"tokenizer.json there): {err}"
        ) from err


def _check_vocab(folder, loaded: LoadedFolder) -> None:
    tok = loaded.tokenizer
    vocab = tok.vocab_size if loaded.dna_tokenizer else len(tok)
    if vocab != loaded.config.vocab_size:
        raise InputFormatError(
            f"{folder}: the tokenizer has {vocab} tokens but the model's vocabulary has "
            f"{loaded.config.vocab_size}; the tokenizer files do not belong to this model"
        )


def check_model_tokenizer(
    model_dir: str | os.PathLike,
    config,
    expected_hash: str | None = None,
    run_record: dict[str, Any] | None = None,
):
    """A model folder must hold the tokenizer it was trained with: its tokenizer hash must
    match the one pretraining recorded in run.json (and `expected_hash`, when the run names
    a tokenizer), and the vocabulary must fit the embedding table. Returns the (dnalm)
    tokenizer."""
    model_dir = Path(model_dir)
    tok = load_tokenizer(model_dir)
    have = tok.hash
    record = read_run_record(model_dir) if run_record is None else run_record
    trained = record.get("tokenizer_hash")
    if trained and trained != have:
        raise ConfigError(
            f"{model_dir}: the tokenizer files in the folder (hash {have[:12]}) are not the "
            f"tokenizer the model was pretrained with (run.json: {trained[:12]}); restore "
            "the model's own tokenizer files"
        )
    if expected_hash and expected_hash != have:
        raise ConfigError(
            f"{model_dir}: the model was trained with another tokenizer (hash {have[:12]}) "
            f"than the one this run names (hash {expected_hash[:12]}); fine-tune with the "
            "tokenizer the checkpoint was pretrained with"
        )
    if tok.vocab_size > int(config.vocab_size):
        raise ConfigError(
            f"{model_dir}: tokenizer has {tok.vocab_size} tokens but the model's embedding "
            f"table only {config.vocab_size}; tokenizer and checkpoint do not belong together"
        )
    return tok


def _load_finetuned(folder: Path, device) -> LoadedFolder:
    """A fine-tuning run's ``model/`` folder: backbone + head, in eval mode."""

    info_file = folder / FINETUNE_JSON
    if not info_file.is_file():
        raise InputFormatError(f"{folder}: no finetune.json; not a fine-tuned model folder")
    head_file = folder / HEAD_SAFETENSORS
    if not head_file.is_file():
        raise InputFormatError(f"{folder}: no head.safetensors; the fine-tuned head is missing")
    safetensors_header(head_file)
    info = json.loads(info_file.read_text(encoding="utf-8"))
    base = load_model_folder(folder, kind="lm", tokenizer=False)
    cfg = FinetuneTrainConfig.from_dict({**info["config"], "regime": "full"})
    n_out = len(info["labels"]) if info.get("labels") else 1
    model = FinetuneModel(base.model, info["kind"], n_out, cfg)
    model.head.load_state_dict(load_file(str(head_file)))
    model = model.to(torch.device(device or "cpu")).eval()
    return LoadedFolder(
        folder,
        model,
        base.config,
        base.objective,
        load_folder_tokenizer(folder),
        base.run,
        info,
    )


__all__ = [
    "KINDS",
    "LoadedFolder",
    "check_folder",
    "check_model_tokenizer",
    "load_folder_tokenizer",
    "load_model_folder",
    "read_run_record",
    "register_model_types",
    "seeded",
]
