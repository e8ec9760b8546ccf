"""External models (``models.external``): published Hugging Face models used beside the
workflow's own, resolved to a local snapshot folder and pinned by the sha256 of their files.

Torch-free: the plan checks the entries at DAG build (:func:`external_models`,
:func:`check_folder_files`), the fetch rule resolves a hub id once into the Hugging Face
cache and writes the provenance record (:func:`snapshot_folder`, :func:`provenance`), and
the loader (``dnalm.modeling.external``) checks a snapshot against that record
(:func:`verify_snapshot`) before transformers reads anything of it.

An entry (``models.external.<name>``):

``source``             a local model folder, or a hub id ``org/name``;
``revision``           the commit (40 hex digits) to use; a branch or tag is taken as it is
                       for a model without code of its own;
``objective``          ``mlm`` (masked LM), ``gpt`` (causal LM) or ``encoder`` (a plain
                       backbone): the Auto class it is loaded with and what it can do
                       (:data:`USES`);
``tokenizer``          a local tokenizer folder; null: the model folder's own;
``trust_remote_code``  run the repository's own code (``auto_map`` in config.json); only with
                       a 40-hex ``revision``, and only while every code file has the sha256
                       recorded when the model was fetched.

Safety, in the order the checks run: remote code needs the opt-in and a full commit hash;
a folder with only pickle weights (``pytorch_model.bin`` ...) is refused, as pickles can run
code when read, and the fetch never downloads them (:data:`NEVER_FETCHED`); a folder whose
config.json asks for its own code (``auto_map``) is refused without the opt-in; a code or
weight file whose sha256 differs from the record stops the load with both hashes named.

Hugging Face's environment is read at call time: ``HF_HUB_OFFLINE`` (no network: only the
cache), ``HF_HUB_CACHE`` or ``HF_HOME`` (the cache is ``$HF_HOME/hub``), so the compute nodes
of a cluster without internet read what the login node fetched.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dnalm.core.artifacts import (
    CONFIG_JSON,
    TOKENIZER_JSON,
    WEIGHTS_PICKLE,
    WEIGHTS_PICKLE_INDEX,
    WEIGHTS_SAFETENSORS,
    WEIGHTS_SAFETENSORS_INDEX,
)
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, file_digest, read_json_object

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
OBJECTIVES = ("mlm", "gpt", "encoder")

#: what an external model can be used for, by objective (the plan refuses the rest, naming
#: the entry): every model embeds and fine-tunes; only a causal one generates; variant
#: scoring needs a token head (masked marginal or log-likelihood), which an encoder lacks
USES: dict[str, tuple[str, ...]] = {
    "probe": OBJECTIVES,
    "finetune": OBJECTIVES,
    "generate": ("gpt",),
    "vep": ("mlm", "gpt"),
}
#: fine-tuning regimes an external backbone supports (all of fine-tuning's: ``partial``
#: finds the model's list of blocks by its usual paths or as its largest list of like layers)
FINETUNE_REGIMES = ("frozen", "partial", "full", "lora")

#: code files: executed by transformers only for an entry with trust_remote_code
CODE_SUFFIXES = (".py",)
#: weight files transformers reads (safetensors); pickles are never read
WEIGHT_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
#: files the fetch never downloads: pickles and the TensorFlow, Flax and ONNX copies
NEVER_FETCHED = (*tuple(f"*{s}" for s in PICKLE_SUFFIXES), "*.h5", "*.msgpack", "*.onnx", "*.ot")
#: files a folder's own tokenizer is read from (any one of them)
TOKENIZER_FILES = (TOKENIZER_JSON, "tokenizer_config.json", "vocab.txt")

#: the provenance record the rule fetch_external_model writes for entry {ename} (relative
#: to the run's directory; the command line's ``--external`` reads it there too)
RECORD = "resources/external/{ename}/provenance.json"

#: version of the provenance record's layout
RECORD_VERSION = 1


@dataclass(frozen=True)
class ExternalModel:
    """One ``models.external`` entry, checked (:func:`external_model`)."""

    name: str
    source: str
    revision: str | None = None
    objective: str = "mlm"
    tokenizer: str | None = None
    trust_remote_code: bool = False

    @property
    def key(self) -> str:
        """The config key, for messages."""
        return f"models.external.{self.name}"

    @property
    def local(self) -> bool:
        """A local folder (else a hub id): a path that exists, or one written as a path."""
        s = self.source
        return (
            s.startswith(("/", "./", "../", "~"))
            or Path(s).expanduser().exists()
            or not REPO_ID_RE.match(s)
        )

    @property
    def folder(self) -> Path:
        """The local folder of a local source."""
        return Path(self.source).expanduser()

    def spec(self) -> dict[str, Any]:
        """The entry as a plain dict (rule params, the provenance record)."""
        return {
            "name": self.name,
            "source": self.source,
            "revision": self.revision,
            "objective": self.objective,
            "tokenizer": self.tokenizer,
            "trust_remote_code": self.trust_remote_code,
        }


def external_model(name: str, spec: Mapping[str, Any]) -> ExternalModel:
    """The entry ``models.external.<name>`` (schema-validated `spec`), with the checks that
    need no file: remote code only with a 40-hex revision; a source that is a folder or a
    hub id. ConfigError naming the key."""
    model = ExternalModel(
        name=name,
        source=str(spec["source"]),
        revision=None if spec.get("revision") is None else str(spec["revision"]),
        objective=str(spec.get("objective") or "mlm"),
        tokenizer=None if spec.get("tokenizer") is None else str(spec["tokenizer"]),
        trust_remote_code=bool(spec.get("trust_remote_code", False)),
    )
    if model.objective not in OBJECTIVES:
        raise ConfigError(
            f"{model.key}.objective: {model.objective!r} is not one of {list(OBJECTIVES)}"
        )
    if model.trust_remote_code and not COMMIT_RE.match(model.revision or ""):
        got = "no revision" if model.revision is None else f"revision {model.revision!r}"
        where = (
            "the Hub's 'History' page lists them"
            if model.local
            else f"listed at https://huggingface.co/{model.source}/commits/main"
        )
        raise ConfigError(
            f"{model.key}: trust_remote_code is true but the entry has {got}; remote code runs "
            f"only from a pinned commit: set {model.key}.revision to the full 40-hex commit "
            f"hash of the repository ({where}), after reading its code at that commit, or set "
            "trust_remote_code: false"
        )
    return model


def external_models(config: Mapping[str, Any]) -> dict[str, ExternalModel]:
    """Every ``models.external`` entry, checked (:func:`external_model`; a local folder's
    files too: :func:`check_folder_files`)."""
    entries = ((config.get("models") or {}).get("external")) or {}
    out = {}
    for name, spec in entries.items():
        model = external_model(name, spec)
        if model.local:
            check_folder_files(model, model.folder)
        if model.tokenizer is not None and not Path(model.tokenizer).expanduser().is_dir():
            raise ConfigError(
                f"{model.key}.tokenizer: {model.tokenizer!r} is not a folder; give a tokenizer "
                "folder (tokenizer.json or tokenizer_config.json), or leave it out to use the "
                "model's own"
            )
        out[name] = model
    return out


def check_use(model: ExternalModel, use: str, where: str) -> None:
    """Refuse a use an entry's objective cannot serve (:data:`USES`), naming both keys."""
    allowed = USES[use]
    if model.objective not in allowed:
        raise ConfigError(
            f"{where}: {model.key} has objective {model.objective!r}, which cannot be used for "
            f"{use} (needs objective {' or '.join(allowed)}); name a model that can"
        )


def _files(folder: Path) -> list[Path]:
    """Every file under `folder` (links followed, hidden ones such as .git skipped)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def check_folder_files(model: ExternalModel, folder: str | os.PathLike) -> dict[str, Any]:
    """Check a model folder (a local source, or a fetched snapshot) before anything reads it:
    a config.json (JSON), safetensors weights (pickle-only refused), an ``auto_map`` only
    with trust_remote_code (and its code files there), tokenizer files unless the entry names
    a tokenizer. Returns config.json. ConfigError / InputFormatError naming the key."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(
            f"{model.key}.source: {folder} is not a folder; give a model folder (config.json, "
            "model.safetensors, tokenizer files) or a hub id 'org/name'"
        )
    cfg_file = folder / CONFIG_JSON
    if not cfg_file.is_file():
        raise InputFormatError(f"{model.key}: {folder} has no {CONFIG_JSON}; not a model folder")
    config = read_json_object(cfg_file, "model config")
    names = {p.relative_to(folder).as_posix() for p in _files(folder)}
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        pickled = (WEIGHTS_PICKLE, WEIGHTS_PICKLE_INDEX)
        pickles = sorted(n for n in names if n in pickled or n.endswith(PICKLE_SUFFIXES))
        if pickles:
            raise InputFormatError(
                f"{model.key}: {folder} has only pickle weights ({', '.join(pickles)}), which "
                "are never read (unpickling can run code; nothing was read): use a revision "
                f"with {WEIGHTS_SAFETENSORS}, or convert the weights where the model is "
                "trusted (model.save_pretrained(folder, safe_serialization=True))"
            )
        raise InputFormatError(
            f"{model.key}: {folder} has no {WEIGHTS_SAFETENSORS} (nor "
            f"{WEIGHTS_SAFETENSORS_INDEX}); not a model folder with safetensors weights"
        )
    auto_map = config.get("auto_map")
    if auto_map and not model.trust_remote_code:
        modules = sorted({str(v).split(".")[0] + ".py" for v in _auto_map_targets(auto_map)})
        raise ConfigError(
            f"{model.key}: {cfg_file} asks for the model's own code through auto_map "
            f"({', '.join(modules)}), which runs only when the entry opts in (nothing was "
            "run): set trust_remote_code: true with revision: <40-hex commit>, after reading "
            "that code"
        )
    if auto_map:
        missing = sorted(
            {
                m
                for m in (str(v).split(".")[0] + ".py" for v in _auto_map_targets(auto_map))
                if "--" not in m and m not in names
            }
        )
        if missing:
            raise InputFormatError(
                f"{model.key}: {cfg_file} names code files that are not in the folder "
                f"({', '.join(missing)}); fetch the whole repository revision"
            )
    if model.tokenizer is None and not any(n in names for n in TOKENIZER_FILES):
        raise InputFormatError(
            f"{model.key}: {folder} has no tokenizer files ({', '.join(TOKENIZER_FILES)}); "
            "set the entry's tokenizer to a tokenizer folder"
        )
    return config


def _auto_map_targets(auto_map: Any) -> list[str]:
    """The "module.Class" values of an auto_map (a tokenizer's is a [slow, fast] pair)."""
    out = []
    for value in (auto_map or {}).values() if isinstance(auto_map, Mapping) else []:
        for v in value if isinstance(value, list | tuple) else [value]:
            if isinstance(v, str):
                out.append(v)
    return out


# ------------------------------------------------------------------ resolving and recording


def offline() -> bool:
    """Whether HF_HUB_OFFLINE asks for no network (read now, not at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_cache() -> Path:
    """The Hugging Face hub cache: HF_HUB_CACHE, else $HF_HOME/hub, else
    ~/.cache/huggingface/hub (read now, not at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def snapshot_folder(model: ExternalModel, *, download: bool = False) -> Path:
    """The local folder of an entry: a local source as it is; a hub id's snapshot of
    `revision` in the Hugging Face cache, downloaded when `download` and HF_HUB_OFFLINE is
    not set (pickles and TF/Flax copies never are), else read from the cache only.
    ConfigError naming the key, the repository, the revision and the fix."""
    if model.local:
        return model.folder.resolve()
    # lazy: huggingface_hub (~0.3 s) only where a hub id is resolved, not at DAG build
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (  # lazy: as above
        HfHubHTTPError,
        LocalEntryNotFoundError,
    )

    cache_only = offline() or not download
    try:
        path = snapshot_download(
            model.source,
            revision=model.revision,
            cache_dir=str(hub_cache()),
            local_files_only=cache_only,
            ignore_patterns=list(NEVER_FETCHED),
        )
    except (LocalEntryNotFoundError, FileNotFoundError) as err:
        raise ConfigError(
            f"{model.key}: {model.source} at revision {model.revision or 'main'} is not in "
            f"the Hugging Face cache {hub_cache()} ({type(err).__name__}); fetch it first "
            "where there is internet (rule fetch_external_model, e.g. on the login node), "
            "with the same HF_HOME"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise ConfigError(
            f"{model.key}: cannot fetch {model.source} at revision "
            f"{model.revision or 'main'}: {err}"
        ) from None
    return Path(path)


def file_hashes(folder: str | os.PathLike) -> dict[str, dict[str, str]]:
    """sha256 of every file of a snapshot, by kind: ``code`` (*.py), ``weights``
    (*.safetensors) and ``other`` (config, tokenizer files, ...); paths relative to it."""
    folder = Path(folder)
    out: dict[str, dict[str, str]] = {"code": {}, "weights": {}, "other": {}}
    for f in _files(folder):
        rel = f.relative_to(folder).as_posix()
        if rel.endswith(PICKLE_SUFFIXES):
            continue  # never read, so never hashed (a snapshot we fetch has none)
        kind = (
            "code"
            if rel.endswith(CODE_SUFFIXES)
            else "weights"
            if rel.endswith(WEIGHT_SUFFIXES)
            else "other"
        )
        out[kind][rel] = file_digest(f, "sha256")
    return out


def provenance(model: ExternalModel, folder: str | os.PathLike) -> dict[str, Any]:
    """The provenance record of an entry's snapshot: the entry, the snapshot folder and
    commit, and the sha256 of every file (:func:`file_hashes`)."""
    folder = Path(folder)
    return {
        "version": RECORD_VERSION,
        "entry": model.spec(),
        "snapshot": str(folder),
        "commit": None if model.local else folder.name,
        "files": file_hashes(folder),
    }


def write_provenance(path: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write a provenance record atomically."""
    with atomic_write(path) as fh:
        json.dump(record, fh, indent=2, sort_keys=True)
        fh.write("\n")
    return Path(path)


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    return read_json_object(path, "external model provenance record (rule fetch_external_model)")


def verify_snapshot(
    model: ExternalModel, folder: str | os.PathLike, record: Mapping[str, Any], where: str = ""
) -> None:
    """Check a snapshot against its provenance record before anything of it is read: the
    same entry, and every recorded code and weight file with the recorded sha256, and no
    code file that was not recorded. ConfigError naming the key, the file and both hashes."""
    folder = Path(folder)
    src = f" ({where})" if where else ""
    recorded_entry = dict(record.get("entry") or {})
    for key in ("source", "revision", "trust_remote_code"):
        if recorded_entry.get(key) != model.spec()[key]:
            raise ConfigError(
                f"{model.key}.{key}: the config says {model.spec()[key]!r} but the provenance "
                f"record{src} was written for {recorded_entry.get(key)!r}; fetch the model "
                "again (rule fetch_external_model)"
            )
    now = file_hashes(folder)
    for kind in ("code", "weights"):
        _verify_kind(model, folder, now, record, kind, src)


def verify_code(
    model: ExternalModel, folder: str | os.PathLike, record: Mapping[str, Any], where: str = ""
) -> None:
    """Check the code files of a folder made from an entry's snapshot (a model fine-tuned
    from it, which carries the entry's code) against the entry's provenance record: the
    recorded code files with their sha256, and no other; the weights may differ. ConfigError
    naming the file and both hashes, before any of the code is imported."""
    folder = Path(folder)
    _verify_kind(model, folder, file_hashes(folder), record, "code", f" ({where})" if where else "")


def _verify_kind(
    model: ExternalModel,
    folder: Path,
    now: Mapping[str, Mapping[str, str]],
    record: Mapping[str, Any],
    kind: str,
    src: str,
) -> None:
    """The files of one kind of `now` (:func:`file_hashes` of `folder`) against `record`;
    an unrecorded code file is refused too."""
    then = dict((record.get("files") or {}).get(kind) or {})
    for rel, old in sorted(then.items()):
        new = now[kind].get(rel)
        if new != old:
            what = "is missing" if new is None else f"has sha256 {new}"
            raise ConfigError(
                f"{model.key}: {folder / rel} {what}, but sha256 {old} was recorded when "
                f"the model was fetched{src}; the {kind} file changed since (nothing of it "
                "was run). If the change is wanted, fetch the model again; otherwise "
                "restore the file"
            )
    extra = sorted(set(now[kind]) - set(then))
    if extra and kind == "code":
        raise ConfigError(
            f"{model.key}: code file(s) {', '.join(extra)} in {folder} were not there when "
            f"the model was fetched{src} (nothing of them was run); remove them, or fetch "
            "the model again"
        )


__all__ = [
    "COMMIT_RE",
    "FINETUNE_REGIMES",
    "NEVER_FETCHED",
    "OBJECTIVES",
    "RECORD",
    "USES",
    "ExternalModel",
    "check_folder_files",
    "check_use",
    "external_model",
    "external_models",
    "file_hashes",
    "hub_cache",
    "offline",
    "provenance",
    "read_provenance",
    "snapshot_folder",
    "verify_code",
    "verify_snapshot",
    "write_provenance",
]
