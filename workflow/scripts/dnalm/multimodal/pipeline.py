"""The ``dnatext`` stage end to end: tokenizer, three tiny models, the evaluation table.

:func:`run` reads the paired corpus and the DNA tokenizer folder and writes into `out_dir`:

* ``tokenizer/`` (:class:`~dnalm.multimodal.tokenizer.DNATextTokenizer` folder);
* ``dnatext/``: the DNA+text model (``save_pretrained``: config.json, model.safetensors,
  ``tokenizer/`` with both tokenizers, the ``tokenizer_config.json`` that makes
  ``AutoTokenizer`` load it, ``curves.csv``);
* ``dna_basewise/`` and ``dna_table/``: the DNA-only base-wise variant and the plain BPE MLM
  (same BERT size, data, masking and steps; its token embeddings a table), each with the DNA
  tokenizer files, so ``embed.py`` and the probes load them as any dnalm MLM folder;
* ``evaluation.tsv``: one row per metric (module :mod:`dnalm.multimodal.evaluate`) with
  the DNA-only comparison (test bits/nt, species-probe accuracy of mean-pooled states).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import BertConfig, BertForMaskedLM

from dnalm.core.artifacts import CURVES_CSV, EVALUATION_TSV, TIMING_JSON
from dnalm.core.device import select_device
from dnalm.core.errors import ConfigError
from dnalm.core.io import set_default_modes
from dnalm.multimodal import evaluate as ev
from dnalm.multimodal.corpus import read_pairs
from dnalm.multimodal.model import (
    DNATextForMaskedLM,
    build_config,
    register,
    save_auto_tokenizer,
)
from dnalm.multimodal.tokenizer import DNATextTokenizer, load_text_tokenizer_json, train_wordpiece
from dnalm.multimodal.train import CURVE_COLUMNS, Vocab, train_mlm
from dnalm.tokenization.build import load_tokenizer
from dnalm.training.core import write_curves


def _text_only(text: str) -> str:
    return re.sub(r"<dna>.*?</dna>", " ", text)


def build_tokenizer(
    pairs: pd.DataFrame, dna_dir: str | Path, cfg: dict[str, Any]
) -> DNATextTokenizer:
    """The DNA+text tokenizer: WordPiece on the training text (``text_tokenizer``:
    ``wordpiece``) or the tokenizer.json of a named folder."""
    spec = cfg.get("text_tokenizer", "wordpiece")
    train = pairs[pairs["split"] == "train"]
    if spec == "wordpiece":
        text = train_wordpiece(
            [_text_only(t) for t in train["text"]], int(cfg.get("text_vocab_size", 2000))
        )
    else:
        text = load_text_tokenizer_json(spec)
    return DNATextTokenizer(text, load_tokenizer(dna_dir), int(cfg["train"]["max_len"]))


def _draw(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most `n` rows of `frame`, drawn with `seed` (all rows, in order, if fewer)."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed).sort_index()


def _save(model, folder: Path, tok_files: list[tuple[Any, str]], history) -> None:
    """The tokenizers first: a DNA tokenizer's save replaces its whole folder (atomic
    rename), so saved after the model it would delete the weights."""
    for obj, sub in tok_files:
        obj.save(folder / sub if sub else folder)
    model.save_pretrained(folder, safe_serialization=True)
    set_default_modes(folder)  # save_pretrained writes model.safetensors 0600
    write_curves(folder / CURVES_CSV, history, CURVE_COLUMNS)


def stage_device(cfg: dict[str, Any]) -> torch.device:
    """The device of the stage's training (``dnatext.device``; the CPU when unset)."""
    want = cfg.get("device") or "cpu"
    try:
        return select_device(want)
    except ConfigError as err:
        raise ConfigError(f"dnatext.device: {err}; set dnatext.device: cpu (or auto)") from err


def run(
    pairs_path: str | Path, dna_dir: str | Path, cfg: dict[str, Any], out_dir: str | Path
) -> pd.DataFrame:
    """Run the stage (module docstring); returns the evaluation table."""
    device = stage_device(cfg)  # a bad dnatext.device fails before any work
    register()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = read_pairs(pairs_path)
    train, test = pairs[pairs["split"] == "train"], pairs[pairs["split"] == "test"]
    tcfg, arch, ecfg = cfg["train"], cfg.get("model", {}), cfg.get("evaluation", {})
    max_len = int(tcfg["max_len"])
    tok = build_tokenizer(pairs, dna_dir, cfg)
    tok.save(out / "tokenizer")
    rows: list[tuple[str, str, float | None]] = []
    timing: dict[str, float] = {}

    # DNA + text
    t0 = time.perf_counter()
    torch.manual_seed(int(tcfg.get("seed", 0)))
    model = DNATextForMaskedLM(build_config(tok.dna_token_strings(), tok.offset, arch, max_len))
    ids = [e["input_ids"] for e in tok.encode_batch(list(train["text"]))]
    hist = train_mlm(model, ids, Vocab.of_dnatext(tok), tcfg, device=device)
    model.cpu()  # the evaluation below is small: it runs on the CPU
    _save(model, out / "dnatext", [(tok, "tokenizer")], hist)
    save_auto_tokenizer(out / "dnatext")  # the folder loads whole with AutoTokenizer
    timing["train_dnatext_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    seed = int(tcfg.get("seed", 0))
    # seeded draws, not the first rows: pairs are ordered by sample, so head() would keep
    # the first samples' species only
    test_cap = _draw(test, int(ecfg.get("max_test_pairs", 200)), seed)
    for k, v in ev.loss_table(model, tok, test_cap, max_len).items():
        rows.append(("dnatext", k, v))
    for k, v in ev.retrieval(
        model,
        tok,
        train,
        test,
        int(ecfg.get("max_candidates", 16)),
        int(ecfg.get("max_queries", 32)),
        max_len,
        seed,
    ).items():
        rows.append(("dnatext", k, v))
    timing["evaluate_dnatext_s"] = time.perf_counter() - t0

    # DNA only: base-wise embedding vs a table, same everything else
    dna = tok.dna
    dna_rows = [dna.encode(s, add_special_tokens=True).astype(np.int64) for s in train["sequence"]]
    variants = {
        "dna_basewise": lambda: DNATextForMaskedLM(
            build_config(tok.dna_token_strings(), 0, arch, max_len)
        ),
        "dna_table": lambda: BertForMaskedLM(
            BertConfig(
                vocab_size=dna.vocab_size,
                hidden_size=int(arch.get("hidden_size", 64)),
                num_hidden_layers=int(arch.get("num_hidden_layers", 2)),
                num_attention_heads=int(arch.get("num_attention_heads", 2)),
                intermediate_size=int(
                    arch.get("intermediate_size", 4 * arch.get("hidden_size", 64))
                ),
                max_position_embeddings=max_len,
                pad_token_id=dna.pad_id,
            )
        ),
    }
    for name, make in variants.items():
        t0 = time.perf_counter()
        torch.manual_seed(int(tcfg.get("seed", 0)))
        m = make()
        hist = train_mlm(m, dna_rows, Vocab.of_dna(dna), tcfg, device=device)
        m.cpu()
        _save(m, out / name, [(dna, "")], hist)
        seqs = list(test_cap["sequence"])
        probe_train = _draw(train, 400, seed)
        rows.append((name, "test_bits_per_nt", ev.bits_per_nt(m, dna, seqs, max_len)))
        rows.append(
            (
                name,
                "species_probe_acc",
                ev.species_probe(
                    ev.mean_embeddings(m, dna, list(probe_train["sequence"]), max_len),
                    list(probe_train["species"]),
                    ev.mean_embeddings(m, dna, seqs, max_len),
                    list(test_cap["species"]),
                ),
            )
        )
        rows.append((name, "parameters", float(sum(p.numel() for p in m.parameters()))))
        timing[f"{name}_s"] = time.perf_counter() - t0
    table = pd.DataFrame(rows, columns=["model", "metric", "value"])
    table.to_csv(out / EVALUATION_TSV, sep="\t", index=False)
    (out / TIMING_JSON).write_text(json.dumps(timing, indent=2) + "\n", encoding="utf-8")
    return table
