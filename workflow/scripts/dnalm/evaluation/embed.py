"""Sequence embeddings from a language model: one vector per sequence of a task table.

Used by the probing stage (species probe of the Nucleotide Transformer post: mean-pooled
embeddings of CDS fragments, a logistic-regression probe and a UMAP), for three kinds of model:

* a model folder trained by the workflow (``results/models/{model}/``: ``config.json``,
  ``model.safetensors`` and the tokenizer files);
* any Hugging Face model named by a local path or a hub id (Nucleotide Transformer,
  DNABERT-2, HyenaDNA, ...). Remote code runs only when the caller passes
  ``trust_remote_code=True`` for that model;
* the same architecture as a folder's ``config.json`` with freshly initialised, seeded weights
  (``random_init=True``), the "what does pretraining add" control.

All three load through :func:`dnalm.modeling.loader.load_model_folder` (``kind="auto"``).

Method. Every sequence is tokenized by the model's own tokenizer (``AutoTokenizer``; special
tokens added as the tokenizer's post-processor does), the model is run with
``output_hidden_states=True`` and the hidden states of one layer (``layer=-1``: the last; 0 is
the embedding layer) are pooled:

``mean``  the mean over the sequence's non-pad positions (special tokens included, unless
          ``exclude_special_tokens``), computed in float32;
``cls``   the first position (the [CLS]/BOS token of encoders). For a causal model the first
          token sees only itself, so its vector is the same for every sequence; that is
          refused with an error that points to ``last``;
``last``  the last non-pad position (the natural summary of a causal model);
``max``   the elementwise maximum over the positions ``mean`` averages (pads never count).

The layer-wise probe (config ``probe.layers`` and a list under ``probe.pooling``;
:func:`embed_sequences_grid`) takes every chosen layer and pooling from the same forward
pass as the main vector: ``output_hidden_states`` returns every layer at once, so the extra
cost is the pooling, not another pass. It is written beside the main file as a layer-wise
file (:class:`dnalm.evaluation.embeddings.LayerEmbeddings`, (N, layers, poolings, D)).

Reverse-complement averaging (``rc_average=True``, config ``probe.rc_average``; as Caduceus,
GPN and Evo 2 do): each sequence is also embedded as its reverse complement
(:func:`dnalm.core.alphabet.reverse_complement` on the DNA string, case kept, N stays N, then
the model's own tokenizer, so it works for every tokenizer) and the vector is the mean of the
two pooled vectors. This module only writes pooled vectors; there is no per-token output to
flip. ``n_tokens`` stays the forward strand's count.

Pad positions cannot change a sequence's vector: padding is on the right, the attention mask
hides pad keys from every query, and causal models never look right anyway
(``tests/test_evaluation_embed.py`` checks batched against alone). Sequences are sorted by token
length
and cut into batches (length bucketing, so little compute is spent on padding); the vectors
are written back in table order. Inference runs under ``torch.inference_mode``, with bf16
autocast on CUDA (float32 on CPU).

Output: ``{name}.npz`` with ``ids``, ``labels``, ``split`` (unicode arrays, no pickles),
``embeddings`` (float32, (N, D)) and ``n_tokens`` (int32, tokens per sequence incl.
specials), plus a JSON sidecar ``{name}.json`` (model, layer, pooling, dim, n, regime, ...).
Both are written atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm
from transformers import AutoTokenizer

from dnalm.core.alphabet import reverse_complement
from dnalm.core.artifacts import DNALM_TOKENIZER_JSON
from dnalm.core.device import bf16_supported, select_device
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.hub import external_model, read_provenance, verify_code
from dnalm.core.log import progress_disabled
from dnalm.evaluation.embeddings import (
    REGIMES,
    Embeddings,
    LayerEmbeddings,
    load_embeddings,
    read_table,
    sidecar_path,
    write_embeddings,
    write_layer_embeddings,
)
from dnalm.modeling.external import prepare
from dnalm.modeling.loader import load_model_folder
from dnalm.modeling.models import objective_of
from dnalm.tokenization.build import load_tokenizer

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls", "last", "max")
#: tokenizer.model_max_length above this is transformers' "no limit" sentinel
_NO_LIMIT = 1_000_000


# ----------------------------------------------------------------------------- loading


def _is_local(name: str | os.PathLike) -> bool:
    return Path(name).exists()


def _is_causal(model, objective: str) -> bool:
    config = model.config
    if objective == "gpt":
        return True
    return bool(getattr(config, "is_decoder", False)) and objective_of(model) == "gpt"


def load_text_tokenizer(
    model: str | os.PathLike,
    tokenizer: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
):
    """AutoTokenizer of `tokenizer` (default: the model folder / id), padding on the right.

    Returns (hf_tokenizer, to_text, info): `to_text(seq)` is the text to give the tokenizer
    (the sequence itself, except for dnalm's overlapping k-mer tokenizer whose tokenizer.json
    expects space-separated k-mers; read from ``dnalm_tokenizer.json`` when present) and
    `info` describes the tokenizer for the sidecar."""
    src = str(tokenizer if tokenizer is not None else model)
    try:
        hf = AutoTokenizer.from_pretrained(src, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"cannot load the tokenizer of {src!r} (expected tokenizer.json / "
            f"tokenizer_config.json there): {err}"
        ) from err
    hf.padding_side = "right"
    info: dict[str, Any] = {"source": src, "class": type(hf).__name__}
    to_text = _identity
    dnalm_file = Path(src) / DNALM_TOKENIZER_JSON
    if dnalm_file.is_file():
        try:
            meta = json.loads(dnalm_file.read_text(encoding="utf-8"))
            info.update(type=meta.get("type"), spec=meta.get("spec"), hash=meta.get("hash"))
        except json.JSONDecodeError as err:
            raise InputFormatError(f"{dnalm_file}: not valid JSON ({err})") from err
        with contextlib.suppress(ImportError, AttributeError):
            to_text = load_tokenizer(src).hf_text
    if hf.pad_token_id is None:
        # GPT-style tokenizers without a pad token: any id works because pads are masked
        # and pooled over nothing; EOS is the usual stand-in.
        if hf.eos_token is None:
            raise ConfigError(f"tokenizer of {src!r} has neither a pad nor an eos token")
        hf.pad_token = hf.eos_token
    return hf, to_text, info


def _identity(seq: str) -> str:
    return seq


# ----------------------------------------------------------------------------- embedding


def _layer_tuple(out):
    """Every layer's hidden states of a model output (None when the model returns none)."""
    hs = getattr(out, "hidden_states", None)
    if hs is None and isinstance(out, tuple | list) and len(out) > 2:
        hs = out[2] if isinstance(out[2], tuple | list) else None
    return hs


def _hidden_states(out, layer: int, model_name: str) -> torch.Tensor:
    """The hidden states of `layer` from a model output. # -> (B, T, C)"""
    hs = _layer_tuple(out)
    if hs is None:
        # Some remote-code models (DNABERT-2) return only the last layer.
        last = getattr(out, "last_hidden_state", None)
        if last is None and isinstance(out, tuple | list):
            last = out[0]
        if layer in (-1,) and last is not None:
            return last
        raise ConfigError(
            f"{model_name}: the model returns no per-layer hidden states; only layer -1 "
            "(the last) can be embedded"
        )
    n = len(hs)
    if not -n <= layer < n:
        raise ConfigError(
            f"{model_name}: layer {layer} does not exist; the model has {n} hidden-state "
            f"layers (0 = embedding output .. {n - 1} = last; negative counts from the end)"
        )
    return hs[layer]


def _grid_layers(out, layers: str | Sequence[int], model_name: str) -> list[int]:
    """The hidden-state indices (from 0) that `layers` (``all`` or a list, negative counting
    from the end) names in a model output; ConfigError naming ``probe.layers``."""
    hs = _layer_tuple(out)
    if hs is None:
        if layers == "all" or list(layers) != [-1]:
            raise ConfigError(
                f"probe.layers: {model_name} returns no per-layer hidden states, so only its "
                "last layer can be probed; set probe.layers: last, or leave the model out of "
                "probe.layer_models"
            )
        return [-1]  # the last (the output's last_hidden_state; its index is unknown)
    n = len(hs)
    if layers == "all":
        return list(range(n))
    bad = [i for i in layers if not -n <= i < n]
    if bad:
        raise ConfigError(
            f"probe.layers: layer(s) {bad} do not exist in {model_name}, which has {n} "
            f"hidden-state layers (0 = embedding output .. {n - 1} = last; negative counts "
            "from the end); list layers it has, or write all"
        )
    picked = [i % n for i in layers]
    if len(set(picked)) < len(picked):
        raise ConfigError(
            f"probe.layers: {list(layers)} name the same layer of {model_name} twice (it has "
            f"{n} hidden-state layers); list each once"
        )
    return picked


def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool (B, T, C) hidden states over the positions where mask (B, T) is 1. -> (B, C)"""
    hidden = hidden.float()
    if pooling == "mean":
        m = mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, C)
    if pooling == "max":
        keep = mask.bool().unsqueeze(-1)  # (B, T, 1)
        return hidden.masked_fill(~keep, float("-inf")).amax(1)  # (B, C)
    if pooling == "cls":
        return hidden[:, 0]  # (B, C)
    last = mask.shape[1] - 1 - mask.flip(1).to(torch.int64).argmax(1)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, C)


def _max_length(hf_tok, config, max_length: int | None) -> int | None:
    if max_length is not None:
        if max_length < 1:
            raise ConfigError(f"max_length must be positive, got {max_length}")
        return int(max_length)
    limits = []
    tml = getattr(hf_tok, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml < _NO_LIMIT:
        limits.append(tml)
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "dnalm_context"):
        v = getattr(config, key, None)
        if isinstance(v, int) and v > 0:
            limits.append(v)
            break
    return min(limits) if limits else None


def embed_sequences(
    net,
    hf_tok,
    sequences: Sequence[str],
    *,
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int | None = None,
    exclude_special_tokens: bool = False,
    to_text=_identity,
    ids: Sequence[str] | None = None,
    model_name: str = "model",
    rc_average: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Embed `sequences` with a loaded model and tokenizer.

    Returns (embeddings float32 (N, D) in input order, tokens per sequence int32 (N,),
    number of sequences truncated to `max_length`). `rc_average`: the mean of the vectors
    of each sequence and of its reverse complement (truncation counted on both strands)."""
    out, n_tok, n_cut, _, _ = _embed(
        net,
        hf_tok,
        sequences,
        layer=layer,
        pooling=pooling,
        batch_size=batch_size,
        max_length=max_length,
        exclude_special_tokens=exclude_special_tokens,
        to_text=to_text,
        ids=ids,
        model_name=model_name,
        rc_average=rc_average,
        grid=None,
    )
    return out, n_tok, n_cut


def embed_sequences_grid(
    net,
    hf_tok,
    sequences: Sequence[str],
    *,
    layers: str | Sequence[int],
    poolings: Sequence[str],
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray, list[int]]:
    """:func:`embed_sequences` plus, from the same forward pass of each batch, every layer of
    `layers` (``"all"``, ``"last"`` or hidden-state indices, negative counting from the end)
    pooled by every method of `poolings`.

    Returns (the main embeddings (N, D), tokens per sequence, sequences truncated, the
    layer-wise vectors float32 (N, L, P, D), the layers' hidden-state indices from 0). The
    main embeddings are those :func:`embed_sequences` returns, bit for bit."""
    poolings = list(poolings)
    unknown = [p for p in poolings if p not in POOLINGS]
    if unknown or not poolings or len(set(poolings)) < len(poolings):
        raise ConfigError(f"probe.pooling: {poolings} must be distinct methods of {list(POOLINGS)}")
    spec: str | list[int] = [-1] if layers == "last" else layers
    if spec != "all" and (isinstance(spec, str) or not list(spec)):
        raise ConfigError(f"probe.layers: {layers!r} is not last, all or a list of layers")
    return _embed(net, hf_tok, sequences, grid=(spec, poolings), **kwargs)


def _embed(
    net,
    hf_tok,
    sequences: Sequence[str],
    *,
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int | None = None,
    exclude_special_tokens: bool = False,
    to_text=_identity,
    ids: Sequence[str] | None = None,
    model_name: str = "model",
    rc_average: bool = False,
    grid: tuple[str | Sequence[int], list[str]] | None = None,
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None, list[int] | None]:
    """The embedding of :func:`embed_sequences` and, with `grid` (layers, poolings), the
    layer-wise vectors of :func:`embed_sequences_grid`, from one forward pass per batch."""
    if rc_average:
        same = {
            "layer": layer,
            "pooling": pooling,
            "batch_size": batch_size,
            "max_length": max_length,
            "exclude_special_tokens": exclude_special_tokens,
            "to_text": to_text,
            "ids": ids,
            "model_name": model_name,
            "grid": grid,
        }
        fwd, n_tok, n_cut, g_fwd, picked = _embed(net, hf_tok, sequences, **same)
        rc_seqs = [reverse_complement(s) for s in sequences]
        rev, _, n_cut_rc, g_rev, _ = _embed(net, hf_tok, rc_seqs, **same)
        both = None if g_fwd is None else (g_fwd + g_rev) / np.float32(2.0)
        return (fwd + rev) / np.float32(2.0), n_tok, n_cut + n_cut_rc, both, picked
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r}; choose one of {list(POOLINGS)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    n = len(sequences)
    texts = [to_text(s) for s in sequences]
    kwargs = {
        "add_special_tokens": True,
        "return_special_tokens_mask": exclude_special_tokens,
        "return_attention_mask": False,
    }
    enc = hf_tok(texts, **kwargs)
    lengths = np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=n)
    n_truncated = int((lengths > max_length).sum()) if max_length is not None else 0
    if n_truncated:  # tokenize again with truncation (keeps the special tokens at the ends)
        enc = hf_tok(texts, truncation=True, max_length=max_length, **kwargs)
        lengths = np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=n)
    input_ids: list[list[int]] = enc["input_ids"]
    keep_masks = enc.get("special_tokens_mask") if exclude_special_tokens else None
    content = (
        np.fromiter((len(m) - sum(m) for m in keep_masks), np.int64, count=n)
        if keep_masks is not None
        else lengths
    )
    empty = np.flatnonzero(content == 0)
    if empty.size:
        name = ids[empty[0]] if ids is not None else f"#{empty[0]}"
        raise InputFormatError(
            f"sequence {name} ({len(sequences[empty[0]])} nt) gives no tokens to pool "
            f"({empty.size} such sequence(s)); drop sequences shorter than the tokenizer's "
            "smallest unit"
        )
    device = next(net.parameters()).device
    backbone = getattr(net, "base_model", net)
    pad_id = int(hf_tok.pad_token_id)
    order = np.argsort(-lengths, kind="stable")  # longest first: an OOM shows up at once
    out: np.ndarray | None = None
    grid_out: np.ndarray | None = None
    picked: list[int] | None = None
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if bf16_supported(device)
        else contextlib.nullcontext()
    )
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    with torch.inference_mode(), autocast:
        for idx in tqdm(batches, desc=f"embed {model_name}", disable=progress_disabled()):
            t_max = int(lengths[idx].max())
            tokens = torch.full((len(idx), t_max), pad_id, dtype=torch.long)  # (B, T)
            attn = torch.zeros((len(idx), t_max), dtype=torch.long)  # (B, T)
            pool_mask = torch.zeros((len(idx), t_max), dtype=torch.long)  # (B, T)
            for row, i in enumerate(idx):
                seq_ids = input_ids[i]
                tokens[row, : len(seq_ids)] = torch.tensor(seq_ids, dtype=torch.long)
                attn[row, : len(seq_ids)] = 1
                if keep_masks is not None:
                    pool_mask[row, : len(seq_ids)] = 1 - torch.tensor(keep_masks[i])
                else:
                    pool_mask[row, : len(seq_ids)] = 1
            tokens, attn, pool_mask = tokens.to(device), attn.to(device), pool_mask.to(device)
            res = backbone(input_ids=tokens, attention_mask=attn, output_hidden_states=True)
            hidden = _hidden_states(res, layer, model_name)  # (B, T, C)
            vec = _pool(hidden, _mask_for(pooling, pool_mask, attn), pooling)  # (B, C)
            if out is None:
                out = np.empty((n, vec.shape[1]), dtype=np.float32)
            out[idx] = vec.cpu().numpy()
            if grid is not None:
                picked = picked or _grid_layers(res, grid[0], model_name)
                states = [_hidden_states(res, a, model_name) for a in picked]  # L x (B, T, C)
                masks = [_mask_for(p, pool_mask, attn) for p in grid[1]]
                cube = torch.stack(
                    [
                        torch.stack(
                            [_pool(h, m, p) for m, p in zip(masks, grid[1], strict=True)], 1
                        )
                        for h in states
                    ],
                    1,
                )  # (B, L, P, C)
                if grid_out is None:
                    grid_out = np.empty((n, *cube.shape[1:]), dtype=np.float32)
                grid_out[idx] = cube.cpu().numpy()
    if out is None:
        out = np.empty((0, 0), dtype=np.float32)
    for arr in (out, grid_out):
        if arr is not None and not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(1))[0])
            name = ids[bad] if ids is not None else f"#{bad}"
            raise FloatingPointError(f"{model_name}: non-finite embedding for sequence {name}")
    return out, lengths.astype(np.int32), n_truncated, grid_out, picked


def _mask_for(pooling: str, pool_mask: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """The positions a pooling reads: mean and max the pooled ones (special tokens left out
    with exclude_special_tokens), cls and last the attended ones. # -> (B, T)"""
    return pool_mask if pooling in ("mean", "max") else attn


def embed_table(
    model_dir: str | os.PathLike,
    table: pd.DataFrame | str | os.PathLike,
    out_npz: str | os.PathLike,
    layer: int = -1,
    pooling: str = "mean",
    batch_size: int = 64,
    max_length: int | None = None,
    trust_remote_code: bool = False,
    device: str | torch.device | None = None,
    *,
    random_init: bool = False,
    seed: int = 0,
    splits: Sequence[str] | None = None,
    exclude_special_tokens: bool = False,
    tokenizer: str | os.PathLike | None = None,
    regime: str | None = None,
    meta: Mapping[str, Any] | None = None,
    rc_average: bool = False,
    external: Mapping[str, Any] | None = None,
    remote_code: Mapping[str, Any] | None = None,
    layers: str | Sequence[int] | None = None,
    poolings: Sequence[str] | None = None,
    layers_out: str | os.PathLike | None = None,
) -> Path:
    """Embed every row of a task table with one model and write ``out_npz`` + sidecar.

    `model_dir`: a model folder or hub id; `table`: DataFrame, task folder or data.tsv with
    columns id, sequence, split (label optional); `layer`: hidden-state index (-1 last, 0
    embedding output); `pooling`: mean | cls | last; `max_length`: token limit (default: the
    smaller of the tokenizer's and the position table's); `random_init`: same config, fresh
    weights drawn with `seed`; `splits`: only rows of these splits; `tokenizer`: a tokenizer
    folder or id other than the model's; `rc_average`: average each sequence's vector with its
    reverse complement's (module docstring); `regime`: the probe-table regime (default
    "random-init" or "pretrained"); `meta`: extra keys for the sidecar (e.g. model and
    tokenizer names from the config); `remote_code`: ``{"entry", "record"}`` of the external
    entry with its own code that `model_dir` was fine-tuned from: the folder's code files
    are checked against the entry's provenance record (dnalm.core.hub.verify_code) before
    it is loaded with that code. `layers_out`: also write the layer-wise file there, every
    layer of `layers` (``last`` | ``all`` | indices) pooled by every method of `poolings`
    (default: `pooling`), from the same forward passes (:func:`embed_sequences_grid`).
    Returns the path of the .npz."""
    t0 = time.perf_counter()
    df = read_table(table)
    if splits is not None:
        df = df[df["split"].isin(list(splits))].reset_index(drop=True)
        if df.empty:
            raise InputFormatError(f"{table}: no rows in split(s) {list(splits)}")
    regime = regime or ("random-init" if random_init else "pretrained")
    if external:
        entry, model_dir, _ = prepare(external["entry"], external["record"])
        trust_remote_code = entry.trust_remote_code
        tokenizer = tokenizer or entry.tokenizer
    if remote_code:
        entry = external_model(str(remote_code["entry"]["name"]), remote_code["entry"])
        record = str(remote_code["record"])
        verify_code(entry, model_dir, read_provenance(record), f"fine-tuned from it; {record}")
        trust_remote_code = entry.trust_remote_code
    if regime not in REGIMES:
        raise ConfigError(f"unknown regime {regime!r}; choose one of {list(REGIMES)}")
    loaded = load_model_folder(
        model_dir,
        kind="auto",
        random_init=random_init,
        seed=seed,
        trust_remote_code=trust_remote_code,
        device=select_device(device),
    )
    net, objective, config = loaded.model, loaded.objective, loaded.config
    grid_poolings = list(poolings or [pooling]) if layers_out is not None else []
    if "cls" in [pooling, *grid_poolings] and _is_causal(net, objective):
        raise ConfigError(
            f"probe.pooling: {model_dir} is a causal model; pooling 'cls' takes its first "
            "token, which attends only to itself, so every sequence gets the same vector; use "
            "'last', 'mean' or 'max'"
        )
    hf_tok, to_text, tok_info = load_text_tokenizer(model_dir, tokenizer, trust_remote_code)
    limit = _max_length(hf_tok, config, max_length)
    name = str(model_dir)
    same = {
        "layer": layer,
        "pooling": pooling,
        "batch_size": batch_size,
        "max_length": limit,
        "exclude_special_tokens": exclude_special_tokens,
        "to_text": to_text,
        "ids": df["id"].tolist(),
        "model_name": name,
        "rc_average": rc_average,
    }
    seqs = df["sequence"].tolist()
    if layers_out is None:
        emb, n_tokens, n_trunc = embed_sequences(net, hf_tok, seqs, **same)
    else:
        emb, n_tokens, n_trunc, cube, picked = embed_sequences_grid(
            net, hf_tok, seqs, layers=layers or "last", poolings=grid_poolings, **same
        )
    if n_trunc:
        log.warning("%s: %d sequence(s) truncated to %d tokens", name, n_trunc, limit)
    n_hidden = getattr(config, "num_hidden_layers", None)
    sidecar = {
        "model": Path(name).name if _is_local(name) else name,
        "model_path": str(Path(name).resolve()) if _is_local(name) else name,
        "architecture": (config.architectures or [type(net).__name__])[0],
        "model_type": config.model_type,
        "objective": objective,
        "regime": regime,
        "random_init": random_init,
        "seed": seed if random_init else None,
        "layer": layer,
        "layer_index": (layer % (n_hidden + 1)) if isinstance(n_hidden, int) else None,
        "n_layers": n_hidden,
        "pooling": pooling,
        "exclude_special_tokens": exclude_special_tokens,
        "rc_average": bool(rc_average),
        "dim": int(emb.shape[1]),
        "n": len(df),
        "n_per_split": {k: int(v) for k, v in df["split"].value_counts().sort_index().items()},
        "max_length": limit,
        "n_truncated": n_trunc,
        "tokenizer": tok_info,
        "trust_remote_code": trust_remote_code,
        "device": str(next(net.parameters()).device),
        "dtype": "bfloat16-autocast"
        if bf16_supported(next(net.parameters()).device)
        else "float32",
        "n_params": int(sum(p.numel() for p in net.parameters())),
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - t0, 3),
        **dict(meta or {}),
    }
    write_embeddings(
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
    if layers_out is not None:
        write_layer_embeddings(
            layers_out,
            LayerEmbeddings(
                df["id"].to_numpy(dtype=str),
                df["label"].to_numpy(dtype=str),
                df["split"].to_numpy(dtype=str),
                cube,
                np.asarray(picked, dtype=np.int64),
                np.asarray(grid_poolings, dtype=str),
                {**sidecar, "layers": picked, "poolings": grid_poolings},
            ),
        )
        log.info("%s: layers %s x poolings %s -> %s", name, picked, grid_poolings, layers_out)
    log.info("%s: %d x %d embeddings -> %s", name, emb.shape[0], emb.shape[1], out_npz)
    return Path(out_npz)


__all__ = [
    "POOLINGS",
    "REGIMES",
    "Embeddings",
    "embed_sequences",
    "embed_sequences_grid",
    "embed_table",
    "load_embeddings",
    "load_text_tokenizer",
    "read_table",
    "select_device",
    "sidecar_path",
    "write_embeddings",
]
