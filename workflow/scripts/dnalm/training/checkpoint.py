"""Training checkpoints that make a resumed run exact.

Layout of `checkpoints/`::

    step-00000120/        one complete checkpoint (written as .tmp-*, then renamed)
        model.safetensors   weights (safetensors; tied tensors stored once; without the
                            tensors a run keeps frozen when saved with `skip`)
        trainer_state.pt    `format` (which loop wrote it, and the version), `setup`
                            (every setting that changes the result: a run resumes only
                            when it has the same, see setup_changes), optimizer,
                            scheduler, RNG states of every process (python, numpy, torch,
                            cuda), step, early-stopping state, curve rows
        state.json          step and losses, for people
    last.json             {"dir": "step-00000120", "step": 120}  (atomic rename)
    best.json             same for the best validation loss
    kept_checkpoints/     only with keep_checkpoints: the weights of every checkpoint
        step-00000120/model.safetensors   (no optimizer state: for evaluation, not resuming)

A run killed at any moment leaves `last.json` pointing at a complete folder; stale and
temporary folders are removed by the next save. `trainer_state.pt` holds only tensors and
plain Python values, and is read with ``torch.load(weights_only=True)`` (no pickle code runs).
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from dnalm.core.artifacts import (
    BEST_JSON,
    KEPT_CHECKPOINTS_DIR,
    LAST_JSON,
    STATE_JSON,
    TRAINER_STATE_PT,
    WEIGHTS_SAFETENSORS,
)
from dnalm.core.io import atomic_write, set_default_modes


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as tensors and plain values (loadable with weights_only)."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
            "has_gauss": npst["has_gauss"],
            "gauss": npst["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _read_pointer(root: Path, name: str) -> Path | None:
    path = root / f"{name}.json"
    if not path.is_file():
        return None
    target = root / json.loads(path.read_text())["dir"]
    return target if (target / TRAINER_STATE_PT).is_file() else None


def last_checkpoint(root: str | Path) -> Path | None:
    """The folder of the last complete checkpoint under `root`, or None."""
    return _read_pointer(Path(root), "last")


def best_checkpoint(root: str | Path) -> Path | None:
    return _read_pointer(Path(root), "best")


def snapshot(model: torch.nn.Module, skip: frozenset[str] = frozenset()) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's state dict without the names in `skip` (a GPU model's
    copy takes no GPU memory; tied tensors become separate copies)."""
    return {
        k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items() if k not in skip
    }


def save_checkpoint(
    root: str | Path,
    step: int,
    model: torch.nn.Module,
    state: dict[str, Any],
    best: bool,
    skip: frozenset[str] = frozenset(),
) -> Path:
    """Write a complete checkpoint for `step`, point `last` (and `best` if `best`) at it,
    then remove folders that no pointer names. Call on rank 0 only. `skip`: state-dict
    names left out of the weights (tensors the run keeps frozen); load with the same
    `skip`."""

    def weights(tmp: Path) -> None:
        if skip:
            save_file(snapshot(model, skip), str(tmp / WEIGHTS_SAFETENSORS))
        else:
            save_model(model, str(tmp / WEIGHTS_SAFETENSORS))

    return _write_folder(Path(root), step, weights, state, last=True, best=best)


def best_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of `model`'s weights as :func:`save_model` writes them (tied tensors
    once, under the first of their sorted names): what :func:`save_best_weights` writes."""
    groups: dict[tuple[int, int, tuple[int, ...]], list[str]] = {}
    state = model.state_dict()
    for name, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        groups.setdefault(key, []).append(name)
    keep = sorted(sorted(names)[0] for names in groups.values())
    return {k: state[k].detach().to("cpu", copy=True).contiguous() for k in keep}


def save_best_weights(
    root: str | Path, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any]
) -> Path:
    """Write the weights of an earlier best step (a :func:`best_weights` copy, kept since
    the evaluation that found it) as the folder of `step` and point `best` at it. Its
    trainer state (`state`: format, step, losses) holds no optimizer: it is loaded for its
    weights only (the export); a run resumes from `last`. Call on rank 0 only."""

    def write(tmp: Path) -> None:
        save_file(weights, str(tmp / WEIGHTS_SAFETENSORS))

    return _write_folder(Path(root), step, write, state, last=False, best=True)


def _write_folder(root: Path, step: int, weights, state, *, last: bool, best: bool) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights(tmp)
    torch.save(state, tmp / TRAINER_STATE_PT)
    summary = {k: state.get(k) for k in ("step", "best_val", "last_val")}
    (tmp / STATE_JSON).write_text(json.dumps(summary, indent=1) + "\n")
    set_default_modes(tmp)  # safetensors writes 0600: other users could not read the weights
    final = root / name
    if final.exists():
        # Only possible when a run resumed from this very step re-saves it.
        old = root / f".old-{name}"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    pointer = json.dumps({"dir": name, "step": step}) + "\n"
    if last:
        with atomic_write(root / LAST_JSON) as fh:
            fh.write(pointer)
    if best:
        with atomic_write(root / BEST_JSON) as fh:
            fh.write(pointer)
    keep = {p.name for p in (last_checkpoint(root), best_checkpoint(root)) if p is not None}
    keep.add(KEPT_CHECKPOINTS_DIR)
    for child in root.iterdir():
        if child.is_dir() and child.name not in keep:
            shutil.rmtree(child, ignore_errors=True)
    return final


def keep_weights(root: str | Path, step: int) -> Path:
    """Keep the weights of the checkpoint of `step` under `root` (written by
    :func:`save_checkpoint`) as ``kept_checkpoints/step-N/``, which later saves leave in
    place: the run's history for evaluation (dnalm.evaluation.analytics). Hard-linked when
    the file system allows (the checkpoint's file is never rewritten, only removed), else
    copied; the folder appears complete or not at all. Call on rank 0 only."""
    root = Path(root)
    name = f"step-{step:08d}"
    source = root / name / WEIGHTS_SAFETENSORS
    kept = root / KEPT_CHECKPOINTS_DIR
    kept.mkdir(exist_ok=True)
    tmp, final = kept / f".tmp-{name}", kept / name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        os.link(source, tmp / WEIGHTS_SAFETENSORS)
    except OSError:
        shutil.copy2(source, tmp / WEIGHTS_SAFETENSORS)
    shutil.rmtree(final, ignore_errors=True)  # a resumed run saving the same step again
    tmp.rename(final)
    return final


def kept_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every kept checkpoint under `root` (:func:`keep_weights`), by step."""
    kept = Path(root) / KEPT_CHECKPOINTS_DIR
    if not kept.is_dir():
        return []
    out = []
    for child in kept.iterdir():
        if child.name.startswith("step-") and (child / WEIGHTS_SAFETENSORS).is_file():
            out.append((int(child.name.removeprefix("step-")), child))
    return sorted(out)


def load_state(folder: str | Path) -> dict[str, Any]:
    """The trainer state of a checkpoint, read with weights_only=True."""
    return torch.load(Path(folder) / TRAINER_STATE_PT, map_location="cpu", weights_only=True)


def load_weights(
    folder: str | Path, model: torch.nn.Module, device="cpu", skip: frozenset[str] = frozenset()
) -> None:
    """Load checkpoint weights into `model` (strict; tied tensors handled). With `skip`
    (as saved), exactly those tensors must be absent from the file; they keep their values."""
    path = str(Path(folder) / WEIGHTS_SAFETENSORS)
    if not skip:
        missing, unexpected = load_model(model, path, device=str(device))
    else:
        missing, unexpected = model.load_state_dict(
            load_file(path, device=str(device)), strict=False
        )
        present = sorted(skip - set(missing))  # tensors the run keeps frozen, yet in the file
        missing = sorted(set(missing) - skip)
        unexpected = sorted(unexpected) + [f"{k} (kept frozen)" for k in present]
    if missing or unexpected:
        raise RuntimeError(f"checkpoint {folder}: missing {missing}, unexpected {unexpected}")


def folder_step(folder: Path) -> int | None:
    """The step of a checkpoint folder (from its state.json), or None."""
    try:
        return int(json.loads((Path(folder) / STATE_JSON).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def setup_changes(
    saved: Mapping[str, Any] | None, now: Mapping[str, Any], prefix: str = ""
) -> dict[str, tuple[Any, Any]]:
    """The entries of a run's setup `now` that differ from the `saved` one of a checkpoint:
    {key: (saved value, value now)}, nested dicts compared entry by entry under dotted keys
    ("arch.n_layer"). Both training loops record their setup in a checkpoint's `setup`
    entry and resume only when this is empty."""
    saved = saved or {}
    out: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(saved) | set(now), key=str):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out.update(setup_changes(a, b, f"{prefix}{key}."))
        elif not _same(a, b):
            out[f"{prefix}{key}"] = (a, b)
    return out


def describe_changes(changes: Mapping[str, tuple[Any, Any]], limit: int = 8) -> str:
    """'lr: checkpoint 0.001, now 1e-05; ...' for the result of setup_changes."""
    items = list(changes.items())
    text = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in items[:limit])
    if len(items) > limit:
        text += f"; and {len(items) - limit} more"
    return text


def export_model(model, tokenizer_dir: Path, out_dir: Path) -> None:
    """Write config.json, model.safetensors and the tokenizer files into `out_dir` (the
    exported model folder of pretraining), each file appearing only once complete."""
    tmp = out_dir / ".export-tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    for f in tokenizer_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, tmp / f.name)
    set_default_modes(tmp)  # save_pretrained writes model.safetensors 0600
    for f in tmp.iterdir():
        os.replace(f, out_dir / f.name)
    tmp.rmdir()
