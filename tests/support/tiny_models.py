"""Random-initialised model folders of any architecture (nucleotide tokenizer), for tests
that need a real model but not a trained one; and the GC-rich versus AT-rich task a tiny model
learns in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
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


def gc_at_table(
    n: int = 60,
    length: int = 30,
    skew: float = 0.35,
    fractions: tuple[float, float] = (0.6, 0.8),
) -> pd.DataFrame:
    """A classification task table: GC-rich ("gc": G and C at `skew` each) versus AT-rich
    ("at") sequences of `length`, alternating; the first `fractions[0]` of rows train, up to
    `fractions[1]` validation, the rest test (seeded)."""
    rng = np.random.default_rng(1)
    low = 0.5 - skew
    rows = []
    for i in range(n):
        label = "gc" if i % 2 else "at"
        p = [low, skew, skew, low] if label == "gc" else [skew, low, low, skew]
        split = (
            "train" if i < fractions[0] * n else ("validation" if i < fractions[1] * n else "test")
        )
        seq = "".join(rng.choice(list("ACGT"), length, p=p))
        rows.append({"id": f"s{i}", "sequence": seq, "split": split, "label": label})
    df = pd.DataFrame(rows)
    df.attrs.update(kind="classification", labels=["at", "gc"])
    return df
