"""Random-initialised model folders of any architecture (nucleotide tokenizer), for tests
that need a real model but not a trained one."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dnalm.modeling import models as dm
from dnalm.tokenization import build as dtok


def model_dir(folder: Path, arch: str, objective: str = "gpt", context: int = 24, seed: int = 7):
    """`folder` holding a freshly initialised `arch` model (tiny preset, `context`) and the
    nucleotide tokenizer, loadable as a trained model folder."""
    folder.mkdir(parents=True, exist_ok=True)
    tok = dtok.build_tokenizer({"type": "nucleotide"})
    tok.save(folder)
    torch.manual_seed(seed)
    spec = dm.resolve_arch(objective, "tiny", {"context": context}, arch)
    model = dm.build_model(objective, spec, tok.vocab_size, tok.special_ids)
    model.save_pretrained(str(folder))
    (folder / "run.json").write_text(json.dumps({"tokenizer": "t", "tokenizer_hash": tok.hash}))
    return folder
