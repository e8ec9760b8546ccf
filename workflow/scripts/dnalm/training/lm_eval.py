"""Held-out evaluation of a language model and the count-based baseline it must beat.

Both score exactly the same targets of a split:
* causal (gpt): every token that has a predecessor in the same CDS of its window and is not
  padding, predicted from the tokens before it;
* masked (mlm): the tokens chosen by a fixed, seeded mask (Masker with a fixed salt), the
  same for every evaluation and every model of a corpus.

Baselines: order-k Markov models on tokens with additive smoothing,
p(y | ctx) = (n(ctx, y) + alpha) / (n(ctx) + alpha * V), V the vocabulary without the pad
token (never a target), fitted on the train split (context restricted to the same CDS or
segment, never across a boundary; shorter contexts at a segment start are padded with a
start symbol). For codon tokens the default is three rows, as genomics-lm reports them:
codon usage (order 0), codon bigram (1) and codon trigram (2), with alpha = 0.01 (the
genomics-lm setting; add-one would flatten the sparse 64 x 64 x 64 trigram table). For other
tokenizers the default is one row, the largest k (at most 8) for which the train split holds
on average at least 10 tokens per table cell (see default_markov_order), with add-one
smoothing. `baseline_order` / `baseline_alpha` in the training settings override both. Every
baseline is fitted on every non-pad train token. For masked LM it sees only the left
context: it is the bar to clear, not a bidirectional model. ``metrics["baselines"]`` lists
every row; ``metrics["baseline"]`` is the strongest (lowest test loss), the bar the model
has to clear.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dnalm.core.artifacts import METRICS_JSON, METRICS_TSV
from dnalm.core.io import atomic_write
from dnalm.kinds.tokenizers import reads_frame
from dnalm.modeling.models import forward_logits
from dnalm.training.core import format_value
from dnalm.training.lm_data import (
    IGNORE_INDEX,
    Masker,
    bits_per_nt,
    causal_labels,
    check_split,
    load_lowercase,
    load_split,
    nt_per_token,
    special_id_list,
    split_path,
    target_weights,
)

EVAL_SALT = 2**32 - 1  # Masker salt of evaluation masks (training uses the epoch)
METRIC_COLUMNS = [
    "model",
    "split",
    "loss",
    "perplexity",
    "bits_per_nt",
    "accuracy",
    "n_targets",
    "loss_weighted",
    "bits_per_nt_weighted",
]


def targets_for(tokens, positions, meta, objective: str, masker: Masker | None, windows):
    """(inputs, labels) int64 numpy arrays for evaluation of `objective`. # (B, T) each"""
    tokens = np.asarray(tokens, dtype=np.int64)
    if objective == "gpt":
        labels = causal_labels(
            torch.from_numpy(tokens),
            torch.from_numpy(np.asarray(positions, np.int64)),
            meta.get("pad_id"),
        ).numpy()
        return tokens, labels
    return masker(tokens, windows, EVAL_SALT)


@torch.no_grad()
def evaluate_model(
    model,
    tokens: np.ndarray,
    positions: np.ndarray,
    meta: dict[str, Any],
    objective: str,
    nt_per_tok: float,
    batch_size: int = 32,
    max_batches: int | None = None,
    masker: Masker | None = None,
    device: str | torch.device = "cpu",
    autocast_dtype: torch.dtype | None = None,
    module=None,
    window_ids: np.ndarray | None = None,
    lowercase=None,
    lowercase_weight: float = 1.0,
) -> dict[str, float]:
    """Loss (nats/token), perplexity, bits per nucleotide and token accuracy of `model` on
    windows `tokens`/`positions` # (N, T). `max_batches` limits it to the first batches.
    `window_ids` (N,) are the windows' indices in their split (they seed the MLM masks);
    default 0..N-1. `lowercase` # (N, T): the corpus's lower-case flags (or None); the
    `*_weighted` results weight those targets by `lowercase_weight`."""
    was_training = model.training
    model.eval()
    special = torch.tensor(special_id_list(meta), dtype=torch.long, device=device)
    n = tokens.shape[0] if max_batches is None else min(tokens.shape[0], max_batches * batch_size)
    device = torch.device(device)
    # the sums stay on the device (float64 as the Python floats they replace; MPS: float32,
    # it has no float64) and are read once, at the end: one host synchronisation
    fdt = torch.float32 if device.type == "mps" else torch.float64
    sums = torch.zeros(7, dtype=fdt, device=device)  # the seven sums of summarise()
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(start + batch_size, n))
        windows = rows if window_ids is None else np.asarray(window_ids)[rows]
        inputs, labels = targets_for(
            tokens[rows], positions[rows], meta, objective, masker, windows
        )
        x = torch.from_numpy(inputs).to(device)  # (B, T)
        y = torch.from_numpy(labels).to(device)  # (B, T)
        pos = torch.from_numpy(np.asarray(positions[rows], dtype=np.int64)).to(device)
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            logits = forward_logits(model, x, pos, module=module)  # (B, T, V)
        logits = logits.float()
        if objective == "gpt":
            logits, y = logits[:, :-1], y[:, 1:]
        valid = y != IGNORE_INDEX  # a batch without targets adds zeros
        lv, yv = logits[valid], y[valid]  # (K, V), (K,)
        ce = F.cross_entropy(lv, yv, reduction="none")  # (K,)
        nonspecial = ~torch.isin(yv, special)
        part = [ce.sum(), yv.new_tensor(yv.numel()), nonspecial.sum(), (lv.argmax(-1) == yv).sum()]
        if lowercase is not None:
            w = torch.from_numpy(target_weights(lowercase[rows], lowercase_weight)).to(device)
            wv = (w[:, 1:] if objective == "gpt" else w)[valid]  # (K,)
            part += [(ce * wv).sum(), wv.sum(), wv[nonspecial].sum()]
        sums[: len(part)] += torch.stack([p.to(fdt) for p in part])
    loss_sum, n_targets, n_nonspecial, n_correct, loss_w, weight_sum, nonspecial_w = sums.tolist()
    n_targets, n_nonspecial, n_correct = int(n_targets), int(n_nonspecial), int(n_correct)
    model.train(was_training)
    if lowercase is None:
        return summarise(loss_sum, n_targets, n_nonspecial, n_correct, nt_per_tok)
    weighted = (loss_w, weight_sum, nonspecial_w)
    return summarise(loss_sum, n_targets, n_nonspecial, n_correct, nt_per_tok, *weighted)


def summarise(
    loss_sum,
    n_targets,
    n_nonspecial,
    n_correct,
    nt_per_tok,
    loss_sum_weighted=None,
    weight_sum=None,
    n_nonspecial_weighted=None,
) -> dict[str, float]:
    """Loss, perplexity, bits/nt and accuracy from sums; the `*_weighted` ones from the
    lower-case-weighted sums (equal to the unweighted ones when those are None)."""
    loss = loss_sum / n_targets if n_targets else float("nan")
    if loss_sum_weighted is None:
        loss_sum_weighted, weight_sum, n_nonspecial_weighted = loss_sum, n_targets, n_nonspecial
    return {
        "loss_weighted": loss_sum_weighted / weight_sum if weight_sum else float("nan"),
        "bits_per_nt_weighted": bits_per_nt(loss_sum_weighted, n_nonspecial_weighted, nt_per_tok),
        "loss_sum_weighted": float(loss_sum_weighted),
        "weight_sum": float(weight_sum),
        "n_nonspecial_weighted": float(n_nonspecial_weighted),
        "loss": loss,
        "perplexity": math.exp(loss) if n_targets and loss < 700 else float("inf"),
        "bits_per_nt": bits_per_nt(loss_sum, n_nonspecial, nt_per_tok),
        "accuracy": n_correct / n_targets if n_targets else float("nan"),
        "n_targets": int(n_targets),
        "loss_sum": float(loss_sum),
        "n_nonspecial": int(n_nonspecial),
        "n_correct": int(n_correct),
    }


def default_markov_order(
    vocab_size: int, tokenizer_type: str | None, n_train_tokens: int, n_special: int = 0
) -> int:
    """0 for codon tokens (codon usage); else the largest k <= 8 whose table
    (V_content^(k+1) cells) gets on average >= 10 training tokens per cell and whose code
    space (V+1)^k * V stays <= 2e7."""
    if reads_frame(tokenizer_type):
        return 0
    v_content = max(2, vocab_size - n_special)
    k = 0
    while (
        k < 8
        and v_content ** (k + 2) * 10 <= n_train_tokens
        and (vocab_size + 1) ** (k + 1) * vocab_size <= 2e7
    ):
        k += 1
    return k


def baseline_specs(
    tokenizer_type: str | None, vocab_size: int, n_train: int, n_special: int, cfg
) -> list[tuple[int, float, str]]:
    """(order, alpha, name) of every count baseline of a corpus (module docstring)."""
    codon = reads_frame(tokenizer_type)
    if cfg.get("baseline_order") is not None:
        orders = [int(cfg["baseline_order"])]
    elif codon:
        orders = [0, 1, 2]
    else:
        orders = [default_markov_order(vocab_size, tokenizer_type, n_train, n_special)]
    alpha = cfg.get("baseline_alpha")
    alpha = float(alpha) if alpha is not None else (CODON_ALPHA if codon else 1.0)
    names = CODON_BASELINE_NAMES if codon else {}
    return [(k, alpha, names.get(k, f"markov_order{k}")) for k in orders]


def _context_codes(tokens: np.ndarray, positions: np.ndarray, order: int, vocab: int):
    """Code of the `order` previous tokens in the same sequence for every token. # (N, T)"""
    start = vocab  # symbol for "before the sequence start"
    tokens = tokens.astype(np.int64)
    n, t = tokens.shape
    seg_start = np.ones((n, t), dtype=bool)
    seg_start[:, 1:] = positions[:, 1:] != positions[:, :-1] + 1
    seg = np.cumsum(seg_start, axis=1)
    code = np.zeros((n, t), dtype=np.int64)
    for i in range(1, order + 1):
        prev = np.full((n, t), start, dtype=np.int64)
        prev[:, i:] = tokens[:, :-i]
        same = np.zeros((n, t), dtype=bool)
        same[:, i:] = seg[:, i:] == seg[:, :-i]
        prev[~same] = start
        code = code * (vocab + 1) + prev
    return code


#: Additive smoothing constant of the codon n-gram baselines (genomics-lm's value).
CODON_ALPHA = 0.01
CODON_BASELINE_NAMES = {0: "codon_usage_unigram", 1: "codon_bigram", 2: "codon_trigram"}


class MarkovBaseline:
    """Order-k token Markov model with additive smoothing (see the module docstring).

    `alpha` is the pseudo-count of every (context, token) cell; the outcomes are the
    vocabulary without the pad token (set by `fit`)."""

    def __init__(self, order: int, vocab_size: int, alpha: float = 1.0):
        if alpha <= 0:
            raise ValueError(f"baseline smoothing alpha must be positive, got {alpha}")
        self.order, self.vocab, self.alpha = int(order), int(vocab_size), float(alpha)
        self.n_outcomes = self.vocab

    def fit(self, tokens, positions, pad_id: int | None, batch: int = 4096) -> MarkovBaseline:
        """Count (context, token) pairs over every non-pad token of the train windows."""
        self.n_outcomes = self.vocab - int(pad_id is not None and 0 <= pad_id < self.vocab)
        codes_all, counts_all = [], []
        for start in range(0, tokens.shape[0], batch):
            tok = np.asarray(tokens[start : start + batch], dtype=np.int64)
            pos = np.asarray(positions[start : start + batch], dtype=np.int64)
            labels = tok if pad_id is None else np.where(tok == pad_id, IGNORE_INDEX, tok)
            ctx = _context_codes(tok, pos, self.order, self.vocab)
            valid = labels != IGNORE_INDEX
            codes = ctx[valid] * self.vocab + labels[valid]
            u, c = np.unique(codes, return_counts=True)
            codes_all.append(u)
            counts_all.append(c)
        codes = np.concatenate(codes_all) if codes_all else np.zeros(0, np.int64)
        counts = np.concatenate(counts_all) if counts_all else np.zeros(0, np.int64)
        self.joint_codes, inv = np.unique(codes, return_inverse=True)
        self.joint_counts = np.bincount(inv, weights=counts).astype(np.int64)
        ctx = self.joint_codes // self.vocab
        self.ctx_codes, inv = np.unique(ctx, return_inverse=True)
        self.ctx_counts = np.bincount(inv, weights=self.joint_counts).astype(np.int64)
        # most frequent target per context (ties: lowest id), and overall
        order = np.lexsort((-self.joint_counts, ctx))
        first = np.r_[True, ctx[order][1:] != ctx[order][:-1]]
        self.ctx_best = (self.joint_codes[order][first] % self.vocab).astype(np.int64)
        target_totals = np.bincount(
            self.joint_codes % self.vocab, weights=self.joint_counts, minlength=self.vocab
        )
        self.global_best = int(np.argmax(target_totals)) if len(self.joint_codes) else 0
        return self

    @staticmethod
    def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray):
        idx = np.searchsorted(keys, query)
        idx_c = np.minimum(idx, max(len(keys) - 1, 0))
        found = (
            (idx < len(keys)) & (keys[idx_c] == query)
            if len(keys)
            else np.zeros_like(query, dtype=bool)
        )
        return found, idx_c

    def evaluate(
        self, tokens, positions, labels_fn, meta, nt_per_tok, batch=4096, lowercase=None, weight=1.0
    ):
        special = np.array(special_id_list(meta), dtype=np.int64)
        loss_sum, n_t, n_ns, n_c = 0.0, 0, 0, 0
        loss_w, w_sum, ns_w = 0.0, 0.0, 0.0
        for start in range(0, tokens.shape[0], batch):
            tok = np.asarray(tokens[start : start + batch], dtype=np.int64)
            pos = np.asarray(positions[start : start + batch], dtype=np.int64)
            labels = labels_fn(tok, pos, np.arange(start, start + tok.shape[0]))
            valid = labels != IGNORE_INDEX
            ctx = _context_codes(tok, pos, self.order, self.vocab)[valid]
            y = labels[valid]
            fj, ij = self._lookup(self.joint_codes, self.joint_counts, ctx * self.vocab + y)
            joint = np.where(fj, self.joint_counts[ij] if len(self.joint_codes) else 0, 0)
            fc, ic = self._lookup(self.ctx_codes, self.ctx_counts, ctx)
            ctxn = np.where(fc, self.ctx_counts[ic] if len(self.ctx_codes) else 0, 0)
            nll = -np.log((joint + self.alpha) / (ctxn + self.alpha * self.n_outcomes))  # (K,)
            loss_sum += float(nll.sum())
            pred = np.where(fc, self.ctx_best[ic] if len(self.ctx_codes) else 0, self.global_best)
            nonspecial = ~np.isin(y, special)
            n_t += len(y)
            n_ns += int(nonspecial.sum())
            n_c += int((pred == y).sum())
            if lowercase is not None:
                w = target_weights(lowercase[start : start + tok.shape[0]], weight)[valid]
                loss_w += float((nll * w).sum())
                w_sum += float(w.sum())
                ns_w += float(w[nonspecial].sum())
        if lowercase is None:
            return summarise(loss_sum, n_t, n_ns, n_c, nt_per_tok)
        return summarise(loss_sum, n_t, n_ns, n_c, nt_per_tok, loss_w, w_sum, ns_w)


def labels_function(meta: dict[str, Any], objective: str, masker: Masker | None, salt: int):
    """`labels_fn(tokens, positions, windows)` giving the targets scored for `objective`."""

    def fn(tok, pos, windows):
        if objective == "gpt":
            return causal_labels(
                torch.from_numpy(tok), torch.from_numpy(pos), meta.get("pad_id")
            ).numpy()
        return masker(tok, windows, salt)[1]

    return fn


def evaluate_test(tr) -> dict[str, Any]:
    """Score the test split with the best model of the pretraining Trainer `tr` and the
    count-based baseline."""
    meta, objective = tr.meta, tr.objective
    test_tok, test_pos = load_split(tr.corpus_dir, "test")
    check_split(
        test_tok, test_pos, tr.vocab_size, tr.arch["context"], split_path(tr.corpus_dir, "test")
    )
    test_low = load_lowercase(tr.corpus_dir, "test")
    lw = tr.low_weight
    ntpt = nt_per_token(meta, "test")
    bs = tr.cfg["eval_batch_size"] or tr.cfg["micro_batch_size"]
    model_res = evaluate_model(
        tr.model,
        test_tok,
        test_pos,
        meta,
        objective,
        ntpt,
        batch_size=bs,
        masker=tr.masker,
        device=tr.device,
        autocast_dtype=tr.amp_dtype,
        lowercase=test_low,
        lowercase_weight=lw,
    )
    ttype = (tr.tokenizer_spec or {}).get("type")
    n_train = int(meta.get("train", {}).get("n_tokens") or tr.train_tok.size)
    labels_fn = labels_function(meta, objective, tr.masker, EVAL_SALT)
    baselines = []
    for order, alpha, name in baseline_specs(
        ttype, tr.vocab_size, n_train, len(special_id_list(meta)), tr.cfg
    ):
        fitted = MarkovBaseline(order, tr.vocab_size, alpha)
        fitted.fit(tr.train_tok, tr.train_pos, tr.pad_id)
        res = fitted.evaluate(
            test_tok, test_pos, labels_fn, meta, ntpt, lowercase=test_low, weight=lw
        )
        baselines.append({"name": name, "order": order, "alpha": alpha, **res})
    best = min(baselines, key=lambda b: b["loss"] if math.isfinite(b["loss"]) else math.inf)
    return {
        "split": "test",
        "objective": objective,
        "targets": "next token" if objective == "gpt" else "masked tokens (fixed seeded mask)",
        "lowercase_loss_weight": lw,
        "lowercase_flags": test_low is not None,
        "model": model_res,
        "baseline": best,
        "baselines": baselines,
    }


def write_metrics(out_dir: Path, metrics: dict[str, Any]) -> None:
    with atomic_write(out_dir / METRICS_JSON) as fh:
        json.dump(metrics, fh, indent=1, default=float)
        fh.write("\n")
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    rows = [("model", metrics["model"])]
    rows += [(b["name"], b) for b in metrics.get("baselines") or [metrics["baseline"]]]
    for name, res in rows:
        row = [format_value(res[c]) for c in METRIC_COLUMNS[2:]]
        writer.writerow([name, metrics["split"], *row])
    with atomic_write(out_dir / METRICS_TSV) as fh:
        fh.write(buf.getvalue())
