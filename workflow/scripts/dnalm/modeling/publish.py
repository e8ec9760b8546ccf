"""``dnalm publish``: upload a model folder the workflow wrote to the Hugging Face Hub.

Before anything is sent the folder is checked, and every problem is listed at once:

- the model card (``README.md``) parses with ``huggingface_hub.ModelCard.load`` and
  ``provenance.json`` is a JSON object (rules pretrain_card and finetune_card write both);
- no pickle weights (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``, ``*.pkl``, ``*.pickle``):
  whoever loads them runs whatever they contain;
- no remote code (``*.py`` files, ``auto_map`` in ``config.json`` or
  ``tokenizer_config.json``) unless ``provenance.json`` pins it: ``remote_code.revision``
  a 40-hex commit and ``remote_code.files`` the sha256 of every ``*.py`` file, which must
  match;
- no symlink, and nothing else, that resolves outside the folder;
- the folder loads offline with ``AutoConfig``, ``AutoTokenizer`` and the Auto model class
  of its architecture, after dnalm's own model types are registered (only when nothing of
  the above was refused, so no code of a refused folder runs).

Left out of the upload, and listed as such: ``checkpoints/`` (the optimiser state of
training) and hidden entries (unfinished atomic writes). ``--dry-run`` prints what would be
uploaded, left out and refused and exits 0 only when nothing is refused. The upload is
``HfApi.create_repo`` (``exist_ok``) and ``HfApi.upload_folder`` with exactly the listed
files, against ``--endpoint`` or ``HF_ENDPOINT`` (default the Hub), with the token
huggingface_hub finds (``HF_TOKEN`` or ``huggingface-cli login``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnalm.core.artifacts import CONFIG_JSON, MODEL_CARD_MD, PROVENANCE_JSON
from dnalm.core.errors import ConfigError, DnalmError
from dnalm.core.hub import COMMIT_RE
from dnalm.core.io import file_digest
from dnalm.modeling.loader import PICKLE_SUFFIXES, _auto_class, check_folder

HELP = "check a model folder (card, provenance, safety, offline loading) and upload it to the Hub"
#: top-level entries never uploaded: training state and unfinished writes
LEFT_OUT_DIRS = ("checkpoints",)
#: files whose ``auto_map`` makes transformers import code from the repository
AUTO_MAP_FILES = (CONFIG_JSON, "tokenizer_config.json")


@dataclass
class Upload:
    """What publishing a folder would do: files to upload, left out and refused (relative
    paths, each left-out or refused one with why)."""

    folder: Path
    files: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def report(self) -> str:
        lines = [f"{self.folder}: {len(self.files)} files to upload"]
        lines += [f"  upload   {f}" for f in self.files]
        lines += [f"  left out {f}: {why}" for f, why in self.left_out]
        lines += [f"  REFUSED  {f}: {why}" for f, why in self.refused]
        return "\n".join(lines)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _walk(up: Upload) -> None:
    root = up.folder.resolve()
    for dirpath, dirnames, filenames in os.walk(up.folder, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames):
            rel = (here / name).relative_to(up.folder).as_posix()
            if (here / name).is_symlink():
                why = "a symlinked folder" + ("" if _inside(here / name, root) else " outside it")
                up.refused.append((rel, f"{why}: copy what it holds into the folder"))
                dirnames.remove(name)
            elif name.startswith(".") or (here == up.folder and name in LEFT_OUT_DIRS):
                up.left_out.append((rel + "/", "training state or unfinished write"))
                dirnames.remove(name)
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(up.folder).as_posix()
            if name.startswith("."):
                up.left_out.append((rel, "hidden file"))
            elif not _inside(path, root):
                up.refused.append(
                    (rel, f"resolves outside the folder ({path.resolve()}): copy it in")
                )
            elif path.is_symlink():
                up.refused.append((rel, "a symlink: replace it by the file it points to"))
            elif name.lower().endswith(PICKLE_SUFFIXES):
                up.refused.append(
                    (rel, "pickle weights run code when loaded: save them as safetensors")
                )
            else:
                up.files.append(rel)


def _check_card(up: Upload) -> None:
    from huggingface_hub import ModelCard  # lazy: only publishing reads cards

    card = up.folder / MODEL_CARD_MD
    if not card.is_file():
        up.refused.append((MODEL_CARD_MD, "no model card: run the workflow's card rule first"))
    else:
        try:
            data = ModelCard.load(card).data.to_dict()
        except Exception as err:  # any parse failure is a refusal, named
            up.refused.append((MODEL_CARD_MD, f"does not parse as a model card: {err}"))
        else:
            if data.get("library_name") != "transformers":
                up.refused.append((MODEL_CARD_MD, "its metadata lacks library_name: transformers"))
    prov = up.folder / PROVENANCE_JSON
    if not prov.is_file():
        up.refused.append((PROVENANCE_JSON, "no provenance record: run the card rule first"))
        return
    try:
        record = json.loads(prov.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        up.refused.append((PROVENANCE_JSON, f"not valid JSON: {err}"))
        return
    if not isinstance(record, dict):
        up.refused.append((PROVENANCE_JSON, "not a JSON object"))
        return
    _check_remote_code(up, record)


def _check_remote_code(up: Upload, record: dict[str, Any]) -> None:
    code = [f for f in up.files if f.endswith(".py")]
    mapped = []
    for name in AUTO_MAP_FILES:
        path = up.folder / name
        if path.is_file():
            try:
                if "auto_map" in json.loads(path.read_text(encoding="utf-8")):
                    mapped.append(name)
            except (json.JSONDecodeError, UnicodeDecodeError):
                up.refused.append((name, "not valid JSON"))
    if not code and not mapped:
        return
    pin = record.get("remote_code") if isinstance(record.get("remote_code"), dict) else {}
    revision, hashes = str(pin.get("revision") or ""), pin.get("files") or {}
    if not COMMIT_RE.match(revision):
        for f in code + mapped:
            up.refused.append(
                (
                    f,
                    "remote code without a pinned hash: provenance.json needs remote_code."
                    "revision (the 40-hex commit) and remote_code.files (sha256 of each .py)",
                )
            )
        return
    for f in code:
        got = file_digest(up.folder / f, "sha256")
        if hashes.get(f) != got:
            up.refused.append(
                (f, f"sha256 {got} is not the one pinned in provenance.json: {hashes.get(f)}")
            )


def _check_loads(up: Upload) -> None:
    """Load the folder with the Auto classes, offline; a failure is a refusal."""
    from transformers import AutoConfig, AutoTokenizer  # lazy: only a publish loads models

    folder = str(up.folder)
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        check_folder(up.folder, remote_code=True)  # registers dnalm's own model types
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        AutoTokenizer.from_pretrained(folder, local_files_only=True)
        cls, _ = _auto_class(config)
        cls.from_pretrained(folder, local_files_only=True)
    except (DnalmError, OSError, ValueError, KeyError, TypeError) as err:
        up.refused.append((".", f"does not load offline with the Auto classes: {err}"))
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old


def plan_upload(folder: str | os.PathLike, *, load: bool = True) -> Upload:
    """Every check of the module docstring on `folder`; the Upload lists the outcome."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such model folder")
    up = Upload(path)
    _walk(up)
    _check_card(up)
    if load and not up.refused:
        _check_loads(up)
    return up


def publish(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision_note: str | None = None,
    endpoint: str | None = None,
    dry_run: bool = False,
) -> Upload:
    """Check `folder` and (unless `dry_run`) upload it to `repo_id`; a ConfigError listing
    every refusal when anything is refused."""
    if not re.match(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$", repo_id):
        raise ConfigError(f"--repo-id {repo_id!r}: write it as org/name")
    up = plan_upload(folder)
    if up.refused or dry_run:
        return up
    from huggingface_hub import HfApi  # lazy: only an upload talks to the Hub

    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(
        folder_path=str(up.folder),
        repo_id=repo_id,
        repo_type="model",
        allow_patterns=up.files,
        commit_message=revision_note or f"Upload {up.folder.name} (dnalm)",
    )
    return up


def register(subparsers) -> None:
    p = subparsers.add_parser("publish", help=HELP, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="the model folder")
    p.add_argument("--repo-id", required=True, help="the Hub repository, org/name")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision-note", default=None, help="the commit message of the upload")
    p.add_argument("--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or hub)")
    p.add_argument(
        "--dry-run", action="store_true", help="list what would be uploaded; upload nothing"
    )

    def run(args: argparse.Namespace) -> int:
        up = publish(
            args.model,
            args.repo_id,
            private=args.private,
            revision_note=args.revision_note,
            endpoint=args.endpoint,
            dry_run=args.dry_run,
        )
        print(up.report())
        if up.refused:
            print(f"dnalm: error: {len(up.refused)} refused; nothing uploaded", file=sys.stderr)
            return 1
        if not args.dry_run:
            print(f"uploaded to {args.repo_id}")
        return 0

    p.set_defaults(func=run)
