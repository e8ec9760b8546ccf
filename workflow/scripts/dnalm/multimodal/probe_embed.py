"""Embeddings of the DNA alone from the three ``dnatext`` models, for the species probe.

The ``dnatext`` stage saves three model folders (:mod:`dnalm.multimodal.pipeline`):
``dnatext`` (DNA+text), ``dna_basewise`` (DNA only, token embeddings from bases) and
``dna_table`` (DNA only, a plain BERT MLM). :func:`embed_dnatext_folder` embeds the rows of a
task table with one of them and writes the same ``.npz`` + JSON sidecar as
:func:`dnalm.evaluation.embed.embed_table` (regime ``dnatext``), so the probe rules read them
as any other row. The pooling itself is :func:`dnalm.evaluation.embed.embed_sequences`
(the probe config's layer, pooling, batch size and reverse-complement averaging).

What is embedded:

* ``dna_basewise`` / ``dna_table``: the fragment tokenized by the folder's own DNA tokenizer
  (the BPE ``tokenizer.json``, special tokens as its post-processor adds them), exactly as a
  pretrained dnalm model is;
* ``dnatext``: the sentence ``<dna>FRAGMENT</dna>`` with no text, i.e. the ids
  ``[CLS] <dna> dna tokens... </dna> [SEP]`` of :class:`DNATextTokenizer` (modality mask 1 on
  the DNA tokens only). With ``mean`` pooling every non-pad position is averaged, the two tags
  and [CLS]/[SEP] included (as special tokens are for the other models); a fragment longer
  than the model's positions keeps its first DNA tokens and the closing ``</dna> [SEP]``.

The DNA+text model class has no token table for :func:`embed_sequences` to call through
``base_model``; :class:`Encoder` returns the hidden states of
:meth:`DNATextForMaskedLM.encode` (the bi-modal embedding and the BERT encoder, no MLM head).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForMaskedLM

from dnalm.core.artifacts import CONFIG_JSON
from dnalm.core.device import bf16_supported, select_device
from dnalm.core.errors import ConfigError
from dnalm.evaluation.embed import (
    Embeddings,
    embed_sequences,
    load_text_tokenizer,
    read_table,
    write_embeddings,
)
from dnalm.multimodal.model import DNATextForMaskedLM, register
from dnalm.multimodal.tokenizer import DNATextTokenizer

#: the model folders of the dnatext stage that the probe embeds
MODELS = ("dnatext", "dna_basewise", "dna_table")
REGIME = "dnatext"


class Encoder(torch.nn.Module):
    """The hidden states of a :class:`DNATextForMaskedLM` without its MLM head."""

    def __init__(self, model: DNATextForMaskedLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None, output_hidden_states=True, **_):
        return self.model.encode(
            input_ids, attention_mask, output_hidden_states=output_hidden_states
        )


class DnaSentenceTokenizer:
    """Callable like a Hugging Face tokenizer (what :func:`embed_sequences` uses): each text is
    a DNA fragment, encoded as the sentence ``<dna>FRAGMENT</dna>``."""

    def __init__(self, tok: DNATextTokenizer) -> None:
        self.tok = tok
        self.pad_token_id = tok.pad_id
        self.model_max_length = tok.model_max_length

    def __call__(
        self,
        texts: Sequence[str],
        add_special_tokens: bool = True,
        return_special_tokens_mask: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        **_: Any,
    ) -> dict[str, list[list[int]]]:
        encs = self.tok.encode_batch(
            [f"<dna>{t}</dna>" for t in texts], add_special_tokens=add_special_tokens
        )
        ids = [e["input_ids"] for e in encs]
        tail = 2 if add_special_tokens else 1  # </dna> [SEP]
        if truncation and max_length is not None:
            ids = [
                np.concatenate([a[: max_length - tail], a[-tail:]]) if len(a) > max_length else a
                for a in ids
            ]
        out = {"input_ids": [a.tolist() for a in ids]}
        if return_special_tokens_mask:
            special = set(self.tok.special_ids)
            out["special_tokens_mask"] = [[int(i in special) for i in a] for a in out["input_ids"]]
        return out


def load_dnatext_folder(folder: str | os.PathLike):
    """(network to call, tokenizer, model config) of one dnatext-stage model folder."""
    register()
    folder = Path(folder)
    if not (folder / CONFIG_JSON).is_file():
        raise ConfigError(f"{folder}: not a dnatext model folder (no config.json)")
    net = AutoModelForMaskedLM.from_pretrained(folder, use_safetensors=True).eval()
    if isinstance(net, DNATextForMaskedLM) and net.config.text_vocab_size > 0:
        tok = DNATextTokenizer.load(folder / "tokenizer")
        return Encoder(net), DnaSentenceTokenizer(tok), net.config, _identity
    hf, to_text, _ = load_text_tokenizer(folder)
    return (Encoder(net) if isinstance(net, DNATextForMaskedLM) else net), hf, net.config, to_text


def _identity(s: str) -> str:
    return s


def embed_dnatext_folder(
    folder: str | os.PathLike,
    table,
    out_npz: str | os.PathLike,
    *,
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 64,
    rc_average: bool = False,
    name: str | None = None,
    device: str = "cpu",
) -> Path:
    """Embed every row of `table` (task folder, data.tsv or DataFrame) with the dnatext-stage
    model in `folder` on `device` (``dnatext.device``; bf16 autocast on a CUDA device that
    supports it) and write `out_npz` + sidecar (regime ``dnatext``)."""
    t0 = time.perf_counter()
    df = read_table(table)
    net, tok, config, to_text = load_dnatext_folder(folder)
    where = select_device(device)
    net.to(where)
    name = name or Path(folder).name
    limit = int(config.max_position_embeddings)
    emb, n_tokens, n_trunc = embed_sequences(
        net,
        tok,
        df["sequence"].tolist(),
        layer=layer,
        pooling=pooling,
        batch_size=batch_size,
        max_length=limit,
        to_text=to_text,
        ids=df["id"].tolist(),
        model_name=name,
        rc_average=rc_average,
    )
    dnatext = isinstance(tok, DnaSentenceTokenizer)
    sidecar = {
        "model": name,
        "model_path": str(Path(folder).resolve()),
        "architecture": (config.architectures or [type(net).__name__])[0],
        "model_type": config.model_type,
        "objective": "mlm",
        "regime": REGIME,
        "random_init": False,
        "seed": None,
        "layer": layer,
        "layer_index": layer % (config.num_hidden_layers + 1),
        "n_layers": config.num_hidden_layers,
        "pooling": pooling,
        "exclude_special_tokens": False,
        "rc_average": bool(rc_average),
        "input": "[CLS] <dna> DNA </dna> [SEP] (no text)" if dnatext else "DNA tokens",
        "dim": int(emb.shape[1]),
        "n": len(df),
        "n_per_split": {k: int(v) for k, v in df["split"].value_counts().sort_index().items()},
        "max_length": limit,
        "n_truncated": n_trunc,
        "device": str(where),
        "dtype": "bfloat16-autocast" if bf16_supported(where) else "float32",
        "n_params": int(sum(p.numel() for p in net.parameters())),
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return write_embeddings(
        out_npz,
        Embeddings(
            df["id"].to_numpy(dtype=str),
            df["label"].to_numpy(dtype=str),
            df["split"].to_numpy(dtype=str),
            emb,
            n_tokens,
            sidecar,
        ),
    )
