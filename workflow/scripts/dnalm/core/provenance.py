"""The provenance record of a model folder (``provenance.json``): what a model was made from
and with, so that a published model can be traced back to its inputs.

=====================  ==============================================================
``config_sha256``      sha256 of the resolved config (defaults filled in) as canonical JSON
``samples``            per sample: species, format, and each source file (primary genome,
                       annotation) with where it came from, its size and its sha256, read
                       again from the file and compared with the record the download
                       stage wrote (resources/genomes/{sample}/provenance.json)
``inputs``             other files the model was made from (split assignment, task table),
                       each with its sha256
``leakage``            the split leakage summary table (rows as written) or null with why
``seeds``              every seed the model depends on
``packages``           installed versions of torch, transformers, tokenizers,
                       huggingface-hub and dnalm (importlib.metadata; nothing is imported)
``repository``         the commit of the code (``git rev-parse HEAD``; ``dirty`` when the
                       work tree has changes), or null with the reason
``base_model``         fine-tuned from an external model: its entry, commit and file
                       hashes (:func:`external_base`)
``remote_code``        only when that model runs its own code: the commit and the sha256
                       of every code file, which ``dnalm publish`` checks
=====================  ==============================================================

Torch-free.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from dnalm import __version__
from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write, file_digest, read_json_object

#: the version of the record's layout
FORMAT = "dnalm.provenance/1"
#: the distributions whose versions are recorded (dnalm's own comes from dnalm.__version__)
PACKAGES = ("torch", "transformers", "tokenizers", "huggingface-hub", "safetensors")
#: the repository whose commit is recorded: the one holding this library
REPO_DIR = Path(__file__).resolve().parents[4]


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 of `config` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_record(path: str | os.PathLike) -> dict[str, Any]:
    """{path, size, sha256} of an existing file; InputFormatError naming it when missing."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: not found (a provenance input must exist)")
    return {"path": str(path), "size": path.stat().st_size, "sha256": file_digest(path, "sha256")}


def sample_record(record_path: str | os.PathLike) -> dict[str, Any]:
    """One sample's sources from the download stage's record, every file hashed again; an
    InputFormatError naming the file, both hashes and the fix when it no longer matches."""
    record = read_json_object(record_path, "a sample's source record (rule verify_sources)")
    files = {}
    for which, entry in sorted((record.get("files") or {}).items()):
        got = file_record(entry["path"])
        if entry.get("sha256") and entry["sha256"] != got["sha256"]:
            raise InputFormatError(
                f"{entry['path']}: sha256 {got['sha256']} differs from {entry['sha256']} "
                f"recorded in {record_path} when it was verified: the file changed since; "
                f"delete {record_path} and rerun so that it is verified again"
            )
        files[which] = {"source": entry.get("source"), **got}
    return {"species": record.get("species"), "format": record.get("format"), "files": files}


def leakage_rows(path: str | os.PathLike | None, why_none: str = "") -> dict[str, Any]:
    """The leakage table `path` (TSV) as {path, sha256, rows}, or {rows: None, reason}."""
    if not path:
        return {"rows": None, "reason": why_none or "no leakage table was computed"}
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return {**file_record(path), "rows": rows}


def package_versions() -> dict[str, str | None]:
    """Installed versions of PACKAGES (None for one not installed) and dnalm's."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["dnalm"] = __version__
    return out


def repository_commit(repo: str | os.PathLike = REPO_DIR) -> dict[str, Any]:
    """{commit, dirty} of the git work tree at `repo`, or {commit: None, reason}."""
    if not (Path(repo) / ".git").exists():
        return {"commit": None, "reason": f"{repo} is not a git work tree (an installed copy?)"}
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if head.returncode:
            return {"commit": None, "reason": f"git rev-parse failed: {head.stderr.strip()}"}
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"commit": None, "reason": f"git is not usable here: {err}"}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def build_provenance(
    *,
    config: Mapping[str, Any],
    sample_records: Mapping[str, str | os.PathLike],
    inputs: Mapping[str, str | os.PathLike | None] | None = None,
    leakage: str | os.PathLike | None = None,
    leakage_reason: str = "",
    seeds: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The provenance record (module docstring). `sample_records`: sample -> the download
    stage's record of it; `inputs`: name -> file (None entries are left out)."""
    return {
        "format": FORMAT,
        "config_sha256": config_sha256(config),
        "samples": {s: sample_record(p) for s, p in sorted(sample_records.items())},
        "inputs": {k: file_record(v) for k, v in sorted((inputs or {}).items()) if v},
        "leakage": leakage_rows(leakage, leakage_reason),
        "seeds": dict(seeds or {}),
        "packages": package_versions(),
        "repository": repository_commit(),
        **dict(extra or {}),
    }


def external_base(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a fine-tuned folder's provenance takes from its external base model's record
    (rule fetch_external_model, :func:`dnalm.core.hub.provenance`): ``base_model`` (the
    entry, commit and file hashes) and, when the entry runs its own code, ``remote_code``
    (the commit and the sha256 of each code file), which ``dnalm publish`` checks the
    folder's code files against."""
    entry = dict(record.get("entry") or {})
    files = dict(record.get("files") or {})
    out: dict[str, Any] = {
        "base_model": {
            "source": entry.get("source"),
            "revision": entry.get("revision"),
            "commit": record.get("commit"),
            "files": files,
        }
    }
    code = dict(files.get("code") or {})
    if entry.get("trust_remote_code") and code:
        revision = record.get("commit") or entry.get("revision")
        out["remote_code"] = {"revision": revision, "files": code}
    return out


def write_provenance(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    with atomic_write(path) as fh:
        json.dump(record, fh, indent=1, default=str)
        fh.write("\n")
