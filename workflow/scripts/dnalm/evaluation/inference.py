"""Using a trained model folder: load it (:class:`LoadedModel`) and score sequences. Sampling
(continuations of a prefix, the next tokens) is :mod:`dnalm.generation.sampling`.

A model folder written by pretraining (or any folder with the same files) is loaded with
:func:`dnalm.modeling.loader.load_model_folder` (Auto classes, safetensors, no remote code)
and sequences are tokenized with the dnalm tokenizer when the folder carries
``dnalm_tokenizer.json``, else with ``AutoTokenizer``. Sequences are
encoded as the corpus encodes a CDS: ``[BOS] tokens [EOS]`` (where the tokenizer has them).

* score (causal): log p(token | tokens before it) for every token after [BOS], [EOS]
  included (how likely the sequence ends there). Sequences longer than the model's context
  are scored with a sliding window of the context length and stride context/2, each token
  with at least context/2 tokens of left context (position ids restart in every window).
* score (masked): pseudo-log-likelihood: each token is masked in turn (with its k-1
  neighbours on each side for overlapping k-mers, so the base cannot be read from them) and
  scored from the rest. Sequences must fit the context.
* score with ``rc_average`` (``dnalm score --rc-average``; as Caduceus, GPN and Evo 2 do):
  each sequence is also scored as its reverse complement
  (:func:`dnalm.core.alphabet.reverse_complement` on the DNA string, case kept, N stays N,
  then tokenized like the forward strand, so any tokenizer works); the sequence's
  log-likelihood is the mean of the two strands' totals (both strands are in the totals
  table too). The per-token table then lists the reverse strand's tokens as well
  (``strand`` column ``+``/``-``), flipped back: the ``-`` rows run in forward base order
  (the reverse strand's last token first) and ``index`` is the token's index in the
  reverse strand's encoding. Per-token values are not averaged: a k-mer, codon or BPE token
  of one strand has no counterpart token on the other.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import inspect
import math
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, read_unique_fasta, refuse_overwrite
from dnalm.kinds.archs import by_model_type
from dnalm.kinds.tokenizers import mask_span_for
from dnalm.modeling.loader import load_model_folder
from dnalm.modeling.models import forward_logits, model_context
from dnalm.training.lm_data import read_tokenizer_spec

#: windows scored together in one forward pass (causal models)
SCORE_BATCH = 64


@dataclass
class LoadedModel:
    """A model, its tokenizer and what inference needs to know about them."""

    model: Any
    objective: str
    tokenizer: Any  # dnalm.tokenization.tokenizers.DnaTokenizer or a transformers tokenizer
    dna_tokenizer: bool
    spec: dict | None
    context: int
    bos_id: int | None
    eos_id: int | None
    mask_id: int | None
    special: set[int]
    device: torch.device
    external: bool = False  # a models.external entry: called as it is, one segment a row
    #: the keyword arguments an external model's forward names (:func:`forward_inputs`);
    #: None: one of dnalm's own models, which takes them all
    inputs: frozenset[str] | None = None

    @property
    def cached(self) -> bool:
        """Whether a causal model continues from a cache (:func:`causal_forward`): its
        forward takes position ids and attention keys and values (``past_key_values``), or
        a state-space model's states (``cache_params``). An external model whose code takes
        neither (HyenaDNA's forward takes input_ids, inputs_embeds, labels and nothing of a
        cache) runs the whole sequence at every call instead."""
        if self.inputs is None:
            return True
        kind = by_model_type(str(getattr(self.model.config, "model_type", "")))
        need = {"cache_params"} if kind is not None and kind.state_space else CACHE_INPUTS
        return set(need) <= self.inputs

    def logits(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, V) of the rows `x` (B, T), unpadded, at positions `pos` (B, T): our
        models through :func:`dnalm.modeling.models.forward_logits` (packed attention); an
        external model with its own forward (its code may not take a packed mask, or any
        mask: then none is given)."""
        if self.external:
            if self.inputs is not None and "attention_mask" not in self.inputs:
                return self.model(input_ids=x).logits
            return self.model(input_ids=x, attention_mask=torch.ones_like(x)).logits
        return forward_logits(self.model, x, pos)

    def encode(self, seq: str, name: str | None = None, eos: bool = True) -> list[int]:
        """[BOS] ids [EOS] (EOS only if `eos`)."""
        if self.dna_tokenizer:
            ids = [int(i) for i in self.tokenizer.encode(seq, name=name)]
        else:
            ids = list(self.tokenizer(seq.upper(), add_special_tokens=False)["input_ids"])
        head = [self.bos_id] if self.bos_id is not None else []
        tail = [self.eos_id] if eos and self.eos_id is not None else []
        return head + ids + tail

    def encode_many(
        self, seqs: Sequence[str], names: Sequence[str], eos: Sequence[bool]
    ) -> list[list[int]]:
        """:meth:`encode` of each of `seqs` (named `names` in errors, [EOS] where `eos`),
        a dnalm tokenizer's in one vectorised call."""
        if not self.dna_tokenizer:
            return [self.encode(s, n, e) for s, n, e in zip(seqs, names, eos, strict=True)]
        head = [self.bos_id] if self.bos_id is not None else []
        tail = [self.eos_id] if self.eos_id is not None else []
        parts = self.tokenizer.encode_batch(seqs, names)
        return [head + p.tolist() + (tail if e else []) for p, e in zip(parts, eos, strict=True)]

    def token_text(self, token_id: int) -> str:
        if self.dna_tokenizer:
            return str(self.tokenizer._id_to_token[token_id])
        return str(self.tokenizer.convert_ids_to_tokens(int(token_id)))

    def decode(self, ids: list[int]) -> str:
        ids = [i for i in ids if i not in self.special]
        if self.dna_tokenizer:
            return self.tokenizer.decode(np.asarray(ids, dtype=np.int64))
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        return "".join(text.split())

    @classmethod
    def from_external(cls, external: Mapping[str, Any], device: str = "cpu") -> LoadedModel:
        """An external model (``{"entry", "record"}``: a models.external entry and its
        provenance record, :func:`dnalm.modeling.external.load_external`) with its own
        tokenizer; [BOS] and [EOS] are the special tokens its tokenizer puts first and last
        (BERT's [CLS] and [SEP], NT's <cls> and <eos>, a causal model's <s>)."""
        # lazy: the external loader (huggingface_hub) only where an external model is used
        from dnalm.modeling.external import load_external

        folder = load_external(external["entry"], external["record"], device=device)
        if folder.objective == "encoder":
            raise ConfigError(
                f"models.external.{external['entry']['name']}: objective encoder has no token "
                "head to score or sample with; use an mlm or gpt model"
            )
        tok = folder.tokenizer.hf
        probe = tok("A", add_special_tokens=True)["input_ids"]
        special = {int(i) for i in tok.all_special_ids}
        eos = probe[-1] if len(probe) > 1 and probe[-1] in special else None
        return cls(
            folder.model,
            folder.objective,
            tok,
            False,
            None,
            model_context(folder.config),
            folder.tokenizer.bos_id,
            eos,
            tok.mask_token_id,
            special,
            torch.device(device),
            external=True,
            inputs=forward_inputs(folder.model),
        )

    @classmethod
    def from_folder(cls, model_dir: str | Path, device: str = "cpu") -> LoadedModel:
        """Load a trained model folder (dnalm.modeling.loader, kind "lm")."""
        folder = load_model_folder(model_dir, kind="lm", device=device)
        tok = folder.tokenizer
        if folder.dna_tokenizer:
            ids = tok.special_ids
            special = {int(v) for v in ids.values() if v is not None}
            bos, eos, mask = ids.get("bos_id"), ids.get("eos_id"), ids.get("mask_id")
        else:
            special = set(tok.all_special_ids)
            bos, eos, mask = tok.bos_token_id, tok.eos_token_id, tok.mask_token_id
        return cls(
            folder.model,
            folder.objective,
            tok,
            folder.dna_tokenizer,
            read_tokenizer_spec(model_dir),
            model_context(folder.config),
            bos,
            eos,
            mask,
            special,
            torch.device(device),
        )


def load_lm(
    model_dir: str | Path | None, device: str = "cpu", external: Mapping[str, Any] | None = None
) -> LoadedModel:
    """The model a command or rule uses: an external model (``{"entry", "record"}``: a
    models.external entry and its provenance record) when `external`, else the folder."""
    if external:
        return LoadedModel.from_external(external, device)
    return LoadedModel.from_folder(str(model_dir), device)


#: what a causal model's forward must take to continue from a cache of attention keys and
#: values (:attr:`LoadedModel.cached`)
CACHE_INPUTS = ("position_ids", "past_key_values", "use_cache")


def forward_inputs(model: torch.nn.Module) -> frozenset[str]:
    """The keyword arguments `model`'s forward names (a ``**kwargs`` catch-all is no name:
    an argument it would swallow is not taken)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(model.forward).parameters
    return frozenset(name for name, p in params.items() if p.kind in kinds)


def token_logits(lm: LoadedModel, ids: list[int]) -> torch.Tensor:
    x = torch.tensor([ids], dtype=torch.long, device=lm.device)  # (1, T)
    pos = torch.arange(len(ids), device=lm.device)[None]  # (1, T)
    return lm.logits(x, pos)[0].float()  # (T, V)


def causal_forward(
    lm: LoadedModel, x: torch.Tensor, start: int, cache: Any, use_cache: bool = True
) -> tuple[torch.Tensor, Any]:
    """Logits (B, t, V), float, of a causal model after the tokens `x` (B, t) at positions
    `start`.. of every row, and the model's cache with them: attention keys and values
    (``past_key_values``), or a state-space model's states (``cache_params``). `cache`: the
    cache of the positions before `start` (None when `start` is 0). A model that takes no
    cache (:attr:`LoadedModel.cached` false) is given the rows alone, from position 0, and
    returns no cache."""
    model = lm.model
    if not lm.cached:
        if start or cache is not None:
            raise ValueError(
                f"{type(model).__name__} takes no cache: run the whole sequence from position "
                f"0 (got start {start})"
            )
        return model(input_ids=x).logits.float(), None
    kind = by_model_type(str(getattr(model.config, "model_type", "")))
    if kind is not None and kind.state_space:
        pos = torch.arange(start, start + x.shape[1], device=x.device)
        out = model(input_ids=x, cache_params=cache, cache_position=pos, use_cache=use_cache)
        return out.logits.float(), out.cache_params
    pos = torch.arange(start, start + x.shape[1], device=x.device)[None].expand(x.shape[0], -1)
    out = model(input_ids=x, position_ids=pos, past_key_values=cache, use_cache=use_cache)
    return out.logits.float(), out.past_key_values


@torch.inference_mode()
def ll_differences(
    lm: LoadedModel, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int = SCORE_BATCH
) -> list[float]:
    """log p(b) - log p(a), the difference of the :func:`score_ids` totals, of each pair
    (a, b) of token id lists of a causal model, both within the context. The tokens the two
    share at the start have the same log-likelihoods in both and cancel: the shared start
    runs through the model once, its cache serves both, and only the tokens from the first
    difference on are scored (attention models; a state-space model runs both whole, its
    cache continuing one token at a time only; a model that takes no cache runs both whole
    too). Pairs of one shape (shared start, lengths)
    run together, `batch_size` pairs to a batch: when both sides of a pair have one length,
    both run in one forward pass, and a first side shared by several pairs (the REF window of
    several ALT alleles) runs once; one copy to the host a batch."""
    out = [0.0] * len(pairs)
    kind = by_model_type(str(getattr(lm.model.config, "model_type", "")))
    share = lm.cached and not (kind is not None and kind.state_space)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, (a, b) in enumerate(pairs):
        if max(len(a), len(b)) > lm.context:
            raise ValueError(f"pair {i}: {max(len(a), len(b))} tokens > context {lm.context}")
        h = 0
        while h < min(len(a), len(b)) and a[h] == b[h]:
            h += 1
        if h == len(a) == len(b):
            continue  # the same tokens
        groups.setdefault((max(h - 1, 0) if share else 0, len(a), len(b)), []).append(i)
    for (p, len_a, len_b), rows in groups.items():  # p: the shared tokens run once
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            if len_a == len_b:
                diff = _same_length_differences(lm, [pairs[i] for i in chunk], p)
            else:
                diff = _differences(lm, [pairs[i] for i in chunk], p)
            for i, d in zip(chunk, diff, strict=True):
                out[i] = float(d)
    return out


def _same_length_differences(
    lm: LoadedModel, pairs: Sequence[tuple[list[int], list[int]]], p: int
) -> list[float]:
    """:func:`ll_differences` of pairs of one length that share their first `p` tokens, in
    one forward pass after the shared tokens: each distinct first side once (the REF window
    of several ALT alleles at one site, or of a site in two windows, runs once), then those
    and every second side together, each from its row of the shared tokens' cache. The last
    token is no input: nothing scores from it."""
    firsts: dict[tuple[int, ...], int] = {}
    first_of = [firsts.setdefault(tuple(a), len(firsts)) for a, _ in pairs]
    n = len(firsts)
    x = torch.tensor([*firsts, *(b for _, b in pairs)], device=lm.device)  # (n + B, T)
    cache = None
    if p:
        cache = causal_forward(lm, x[:n, :p], 0, None)[1]
        rows = torch.tensor([*range(n), *first_of], device=lm.device)
        cache.batch_select_indices(rows)  # the shared tokens' cache of every row of x
    logits, _ = causal_forward(lm, x[:, p:-1], p, cache, use_cache=False)
    logp = torch.log_softmax(logits, -1)  # tokens p+1.. from the logits before them
    sums = logp.gather(-1, x[:, p + 1 :, None])[..., 0].double().sum(-1)
    firsts_sum = sums[:n][torch.tensor(first_of, device=lm.device)]
    return (sums[n:] - firsts_sum).cpu().tolist()  # one copy a batch


def _differences(
    lm: LoadedModel, pairs: Sequence[tuple[list[int], list[int]]], p: int
) -> list[float]:
    """:func:`ll_differences` of pairs whose two sides differ in length (each side's rows
    of one length) and share their first `p` tokens: each side in its own forward pass."""
    sums = []
    for side in (0, 1):
        x = torch.tensor([pair[side] for pair in pairs], device=lm.device)
        if side == 0:
            cache = causal_forward(lm, x[:, :p], 0, None)[1] if p else None
            shared = copy.deepcopy(cache)
        logits, _ = causal_forward(lm, x[:, p:], p, shared if side else cache)
        logp = torch.log_softmax(logits[:, :-1], -1)  # tokens p+1.. from the logits before
        sums.append(logp.gather(-1, x[:, p + 1 :, None])[..., 0].double().sum(-1))
    return (sums[1] - sums[0]).cpu().tolist()  # one copy a batch


@torch.no_grad()
def score_ids(lm: LoadedModel, ids: list[int]) -> np.ndarray:
    """Log-likelihood (nats) of each token of `ids` (causal: ids[1:], masked: every
    non-special token; NaN where not scored). # (T,)"""
    if lm.objective == "gpt":
        return score_many(lm, [ids])[0]
    out = np.full(len(ids), np.nan)
    if len(ids) > lm.context:
        raise ConfigError(
            f"sequence of {len(ids)} tokens is longer than the masked model's context "
            f"{lm.context}; pseudo-log-likelihood needs the whole sequence in one window"
        )
    if lm.mask_id is None:
        raise ConfigError("the tokenizer has no mask token: cannot compute pseudo-likelihood")
    span = mask_span_for(lm.spec)
    targets = [i for i, t in enumerate(ids) if t not in lm.special]
    if not targets:
        return out
    x = torch.tensor(ids, dtype=torch.long, device=lm.device).repeat(len(targets), 1)  # (K, T)
    for row, i in enumerate(targets):
        lo, hi = max(0, i - span + 1), min(len(ids), i + span)
        for j in range(lo, hi):
            if ids[j] not in lm.special:
                x[row, j] = lm.mask_id
    pos = torch.arange(len(ids), device=lm.device)[None].expand_as(x)
    for s in range(0, len(targets), 64):
        logits = lm.logits(x[s : s + 64], pos[s : s + 64]).float()  # (k, T, V)
        rows = targets[s : s + 64]
        at = torch.tensor(rows, device=lm.device)
        picked = torch.log_softmax(logits[torch.arange(len(rows)), at], -1)  # (k, V)
        want = torch.tensor([ids[i] for i in rows], device=lm.device)
        out[rows] = picked.gather(-1, want[:, None])[:, 0].cpu().numpy()  # one copy a batch
    return out


@torch.no_grad()
def score_many(
    lm: LoadedModel, seqs: Sequence[list[int]], batch_size: int = SCORE_BATCH
) -> list[np.ndarray]:
    """:func:`score_ids` of each token id list of `seqs`. Causal models: the windows of
    every sequence (the sliding window of the module docstring) are scored `batch_size` to
    a forward pass, right-padded to the longest of the batch (a causal model's tokens never
    see the padding after them), and the log-likelihoods of a batch are picked on the device
    and copied to the host once."""
    if lm.objective != "gpt":
        return [score_ids(lm, ids) for ids in seqs]
    outs = [np.full(len(ids), np.nan) for ids in seqs]
    ctx, stride = lm.context, max(1, lm.context // 2)
    windows = []  # (sequence, start, window, first token it scores)
    for k, ids in enumerate(seqs):
        done, start = 1, 0  # the first token (BOS) has no left context
        while done < len(ids):
            window = ids[start : start + ctx]
            windows.append((k, start, window, max(done, start + 1)))
            done = start + len(window)
            start += stride
    windows.sort(key=lambda w: len(w[2]))  # similar lengths together: less padding
    for s in range(0, len(windows), batch_size):
        chunk = windows[s : s + batch_size]
        width = max(len(w[2]) for w in chunk)
        x = torch.zeros((len(chunk), width), dtype=torch.long)
        for r, (_, _, window, _) in enumerate(chunk):
            x[r, : len(window)] = torch.tensor(window)
        x = x.to(lm.device)
        logits, _ = causal_forward(lm, x, 0, None, use_cache=False)
        # row r, column t - 1: log p(token t | the tokens before it)
        logp = torch.log_softmax(logits[:, :-1], -1)
        picked = logp.gather(-1, x[:, 1:, None])[..., 0].cpu().numpy()  # (b, width - 1)
        for r, (k, start, window, first) in enumerate(chunk):
            outs[k][first : start + len(window)] = picked[r, first - start - 1 : len(window) - 1]
    return outs


def score_fasta(
    model_dir: str | Path,
    fasta: str | Path,
    out_tsv: str | Path,
    totals_tsv: str | Path,
    device: str = "cpu",
    rc_average: bool = False,
    external: Mapping[str, Any] | None = None,
) -> int:
    """Per-token log-likelihoods (`out_tsv`: id, index, token, log_likelihood) and per
    sequence totals (`totals_tsv`: id, n_tokens, n_nt, log_likelihood, mean_per_token,
    bits_per_nt) of every sequence in `fasta`. Returns the number of sequences.

    `rc_average` (module docstring): totals are the mean over the sequence and its reverse
    complement (plus columns log_likelihood_forward, log_likelihood_reverse); the per-token
    table gains a ``strand`` column and the reverse strand's rows. `external`: an external
    model (:func:`load_lm`) scored instead of `model_dir`."""
    lm = load_lm(model_dir, device, external)
    n = 0
    with atomic_write(out_tsv) as fh_pos, atomic_write(totals_tsv) as fh_tot:
        wp = csv.writer(fh_pos, delimiter="\t", lineterminator="\n")
        wt = csv.writer(fh_tot, delimiter="\t", lineterminator="\n")
        head = ["id", "index", "token", "log_likelihood"]
        wp.writerow([*head, "strand"] if rc_average else head)
        head = ["id", "n_tokens", "n_nt", "log_likelihood", "mean_per_token", "bits_per_nt"]
        extra = ["log_likelihood_forward", "log_likelihood_reverse"] if rc_average else []
        wt.writerow(head + extra)
        for sid, seq, strands in _scored_records(lm, fasta, rc_average):
            totals, counts = [], []
            for strand, ids, ll in strands:
                scored = np.flatnonzero(~np.isnan(ll))
                for i in scored if strand == "+" else scored[::-1]:
                    row = [sid, int(i), lm.token_text(ids[i]), f"{ll[i]:.6f}"]
                    wp.writerow([*row, strand] if rc_average else row)
                totals.append(float(ll[scored].sum()))
                counts.append(len(scored))
            total = sum(totals) / len(totals)
            mean_per_token = sum(t / max(k, 1) for t, k in zip(totals, counts, strict=True))
            wt.writerow(
                [
                    sid,
                    counts[0],
                    len(seq),
                    f"{total:.6f}",
                    f"{mean_per_token / len(totals):.6f}",
                    f"{-total / math.log(2) / len(seq):.6f}",
                    *(f"{t:.6f}" for t in (totals if rc_average else [])),
                ]
            )
            n += 1
        if n == 0:  # inside the atomic writes: no empty tables are left behind
            raise InputFormatError(
                f"{fasta}: no FASTA records (the file is empty or holds only blank lines); "
                "give a FASTA with at least one sequence to score"
            )
    return n


def _scored_records(
    lm: LoadedModel, fasta: str | Path, rc_average: bool, chunk: int = 256
) -> Iterator[tuple[str, str, list[tuple[str, list[int], np.ndarray]]]]:
    """(id, sequence, [(strand, ids, log-likelihoods)]) of each record of `fasta`, in file
    order, scored `chunk` records at a time (:func:`score_many`)."""
    pending: list[tuple[str, str, list[tuple[str, list[int]]]]] = []

    def flush():
        lls = iter(score_many(lm, [ids for _, _, strands in pending for _, ids in strands]))
        for sid, seq, strands in pending:
            yield sid, seq, [(strand, ids, next(lls)) for strand, ids in strands]
        pending.clear()

    for name, seq, lineno in read_unique_fasta(fasta):  # two records of one name: refused
        sid = name or f"line{lineno}"
        if not seq:
            raise InputFormatError(f"{fasta}:{lineno}: sequence {sid!r} is empty")
        where = f"{fasta}:{lineno} ({sid})"
        strands = [("+", seq)] + ([("-", reverse_complement(seq))] if rc_average else [])
        pending.append((sid, seq, [(st, lm.encode(text, name=where)) for st, text in strands]))
        if len(pending) >= chunk:
            yield from flush()
    yield from flush()


# --------------------------------------------------------------------------- command line


def add_model_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """The model of a command: ``--model FOLDER``, or ``--external NAME --config FILE`` (a
    models.external entry of a workflow config, :func:`cli_external`)."""
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model", help=what)
    g.add_argument(
        "--external",
        metavar="NAME",
        help="a models.external entry of --config (a published model; remote code only as "
        "the entry allows it, pinned and recorded by the workflow's fetch)",
    )
    p.add_argument("--config", metavar="FILE", help="the workflow config naming --external")


@contextlib.contextmanager
def cli_external(args) -> Iterator[dict[str, Any] | None]:
    """The external model of a command (``{"entry", "record"}``; None for ``--model``):
    ``--external NAME`` read from ``--config FILE`` by
    :func:`dnalm.modeling.external.external_from_config`, its record made in a scratch
    folder kept while the command runs when the workflow has not fetched it."""
    if args.external is None:
        if args.config:
            raise ConfigError("--config is read with --external NAME only; remove it")
        yield None
        return
    if not args.config:
        raise ConfigError(
            f"--external {args.external}: give the workflow config that declares "
            f"models.external.{args.external} with --config FILE"
        )
    # lazy: the external loader (huggingface_hub) only where an external model is named
    from dnalm.modeling.external import external_from_config

    with tempfile.TemporaryDirectory(prefix="dnalm-external-") as scratch:
        yield external_from_config(args.external, args.config, scratch)


def _cmd_score(args) -> int:
    totals = args.totals or str(Path(args.out).with_suffix("")) + ".totals.tsv"
    refuse_overwrite(
        {"--model": args.model, "--fasta": args.fasta}, {"--out": args.out, "--totals": totals}
    )
    with cli_external(args) as external:
        n = score_fasta(
            args.model, args.fasta, args.out, totals, device=args.device,
            rc_average=args.rc_average, external=external,
        )  # fmt: skip
    print(f"scored {n} sequences: {args.out}, {totals}", file=sys.stderr)
    return 0


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def register(subparsers) -> None:
    """`dnalm score` (`dnalm generate` and `dnalm next`: dnalm.generation.sampling)."""
    p = subparsers.add_parser("score", help="per-token log-likelihoods of FASTA sequences")
    add_model_arguments(p, "trained model folder")
    p.add_argument("--fasta", required=True)
    p.add_argument("--out", required=True, help="per-token TSV (id, index, token, ll)")
    p.add_argument("--totals", help="per-sequence TSV (default: OUT minus suffix + .totals.tsv)")
    p.add_argument(
        "--rc-average",
        action="store_true",
        help="sequence score = mean of the forward and reverse-complement scores",
    )
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_score)
