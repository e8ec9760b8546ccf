"""Pretraining losses of causal (gpt) models beyond cross-entropy: `pretrain.models.*.loss`.

Every loss is computed from the logits of :func:`dnalm.modeling.models.forward_logits` (one
forward pass per micro-batch, so any architecture works), as a *sum over the targets* of the
micro-batch: pretraining divides the sum over the global batch by its number of targets (each
weighted by its lower-case weight, see ``lowercase_loss_weight``), so every loss below is a
mean per target. Targets are the usual next tokens inside each packed segment
(:func:`dnalm.training.lm_data.causal_labels`).

``ce``
    Cross-entropy of the next token (the default; unchanged).
``rc``
    The mean of the cross-entropy on the window and on its reverse complement, both strands in
    one forward pass (the batch doubled). The reverse complement is token-level and segment by
    segment (:mod:`dnalm.tokenization.revcomp`: reverse AND complement; BOS and EOS stay where a
    sequence of that strand has them); nucleotide, k-mer and overlapping k-mer vocabularies
    only. Option ``consistency`` (default 0) adds ``consistency * D`` with
    ``D = sum_s n_s (m_s - m'_s)^2 / sum_s n_s``: for each segment s with n_s targets, m_s and
    m'_s are its mean log-likelihoods per target on the two strands (the term pulls the model
    towards scoring a sequence and its reverse complement alike; lower-case weights do not
    enter it).
``two_d``
    The DNA-walk loss (nucleotide vocabularies only). Each base is a 2-D step, the walk
    convention of :mod:`dnalm.core.walks` (its ``WALK_STEPS``; lower-case tokens step like upper
    case). At each target that is a base, the model's expected step is the mean step under its
    next-token distribution *renormalised over the base tokens* (softmax of the base tokens'
    logits: mass on EOS, N, UNK and other non-base tokens is left out, not counted as a zero
    step); at a target that is not a base (EOS, N, ...) neither walk moves. Within each
    segment the expected steps are summed into the predicted walk P_t and the true steps into
    the true walk W_t (both start at the segment's first token). The loss of a base target t
    is ``|P_t - W_t|^2 / n_t``, with n_t the number of base targets of the segment up to and
    including t: the squared distance per step taken, which does not grow with the position
    (a uniform guess scores about 1 whatever the length; a perfect model 0); a target that is
    not a base contributes 0, and the mean is over all targets.
``two_d_ce``
    ``ce + two_d_weight * two_d`` (option ``two_d_weight``, default 1).
``headless``
    The teacher-less objective of Bachmann & Nagarajan, "The pitfalls of next-token
    prediction" (2024), as nucleotide-model-experiments uses it for DNA: the model predicts
    every target of a segment from an input in which the teacher-forced tokens are replaced
    by a dummy token, so it cannot copy the previous true token. The input keeps each
    segment's first token (BOS, or the first token of a chunk, and padding) and the `prefix`
    true tokens after it (option ``prefix``, default 0, as in nucleotide-model-experiments:
    BOS and then only dummies; the paper keeps the question as the prefix), and every other
    input token becomes the dummy: [MASK] (which causal pretraining never feeds otherwise),
    or PAD where the vocabulary has no mask token. Targets are the true next tokens, as in
    ``ce``; attention is the same (causal, block-diagonal by segment).

Curves and test metrics always report plain teacher-forced cross-entropy (``val_loss``,
``bits_per_nt``; :func:`dnalm.training.lm_eval.evaluate_model`), so runs with different
losses compare, and the Markov baseline is compared on that. The loss being optimised is
``train_loss`` and ``val_loss_objective`` in ``curves.csv`` and ``loss_objective`` in
``metrics.json``; early stopping and the best checkpoint follow ``val_loss_objective`` (for
``ce`` the lower-case-weighted validation loss, as before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from dnalm.core.errors import ConfigError
from dnalm.core.walks import WALK_STEPS
from dnalm.kinds.losses import loss_settings
from dnalm.modeling.models import forward_logits
from dnalm.tokenization.revcomp import segment_reversal_index, token_rc_map
from dnalm.training.lm_data import (
    IGNORE_INDEX,
    causal_labels,
    load_lowercase,
    load_split,
    target_weights,
)

#: forward(tokens, positions) -> logits # (B, T) -> (B, T, V), autocast applied by the caller
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def token_ce_sum(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None):
    """Summed (target-weighted) cross-entropy of aligned logits # (B, T, V) and targets
    # (B, T) (IGNORE_INDEX: no loss); weights # (B, T) or None."""
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        y.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum" if weights is None else "none",
    )
    if weights is not None:  # ignored targets have loss 0
        loss = (loss * weights.to(loss.device, non_blocking=True).reshape(-1)).sum()
    return loss


def ce_sum(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None):
    """Summed next-token cross-entropy of a causal batch: logits # (B, T, V), labels and
    weights # (B, T) as causal_labels gives them (unshifted)."""
    w = None if weights is None else weights[:, 1:]
    return token_ce_sum(logits[:, :-1], labels[:, 1:], w)


def segment_starts(positions: torch.Tensor) -> torch.Tensor:
    """True where a packed segment starts (column 0, or a position that is not the previous
    one plus 1). # (B, T) -> (B, T) bool"""
    starts = torch.ones_like(positions, dtype=torch.bool)
    starts[:, 1:] = positions[:, 1:] != positions[:, :-1] + 1
    return starts


def _start_index(starts: torch.Tensor) -> torch.Tensor:
    """Column of the segment start of every token. # (B, T) bool -> (B, T) int64"""
    cols = torch.arange(starts.shape[1], device=starts.device).expand_as(starts)
    return torch.cummax(torch.where(starts, cols, torch.zeros_like(cols)), dim=1).values


def within_segment_cumsum(values: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """Cumulative sum along dim 1 restarting at each segment start (the start's own value is
    included). values # (B, T, ...) ; starts # (B, T) bool -> like values"""
    total = torch.cumsum(values, dim=1)
    idx = _start_index(starts)
    view = idx.reshape(*idx.shape, *([1] * (values.dim() - 2))).expand_as(values)
    before = torch.gather(total, 1, view) - torch.gather(values, 1, view)
    return total - before


def walk_loss_sum(
    logits: torch.Tensor,
    labels: torch.Tensor,
    positions: torch.Tensor,
    base_ids: torch.Tensor,
    base_steps: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Summed DNA-walk loss (module docstring, ``two_d``) of a causal batch.

    logits # (B, T, V); labels # (B, T) from causal_labels (unshifted); positions # (B, T);
    base_ids # (K,) the base tokens' ids; base_steps # (K, 2) their steps; weights # (B, T)
    per-target weights or None."""
    logits = logits[:, :-1].float()  # (B, T-1, V): logits[:, t] predict token t + 1
    y = labels[:, 1:]  # (B, T-1)
    steps = base_steps.to(logits.device, torch.float32)
    probs = torch.softmax(logits[..., base_ids], dim=-1)  # (B, T-1, K) over the bases only
    is_base = y.unsqueeze(-1) == base_ids  # (B, T-1, K)
    on_base = is_base.any(-1)  # (B, T-1)
    pred = (probs @ steps) * on_base.unsqueeze(-1)  # (B, T-1, 2)
    true = is_base.to(torch.float32) @ steps  # (B, T-1, 2)
    b, t = labels.shape
    diff = logits.new_zeros(b, t, 2)  # token axis: token 0 is never a target
    diff[:, 1:] = pred - true
    count = logits.new_zeros(b, t)
    count[:, 1:] = on_base.to(torch.float32)
    starts = segment_starts(positions)
    err = within_segment_cumsum(diff, starts)[:, 1:]  # (B, T-1, 2)
    n = within_segment_cumsum(count, starts)[:, 1:]  # (B, T-1)
    per = (err.square().sum(-1) / n.clamp(min=1.0)) * on_base  # (B, T-1)
    if weights is not None:
        per = per * weights[:, 1:].to(per.device)
    return per.sum()


def teacherless_inputs(
    tokens: torch.Tensor, positions: torch.Tensor, dummy_id: int, prefix: int = 0
) -> torch.Tensor:
    """The headless input of a packed batch: each segment keeps its first token and the
    `prefix` tokens after it; every later token becomes `dummy_id`. # (B, T) -> (B, T)"""
    starts = segment_starts(positions)
    cols = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
    offset = cols - _start_index(starts)  # 0 at each segment's first token
    return torch.where(offset <= prefix, tokens, torch.full_like(tokens, dummy_id))


def _segment_mean_loglik(nll: torch.Tensor, valid: torch.Tensor, seg: torch.Tensor, n_seg: int):
    """Per (row, segment): number of targets and mean log-likelihood per target."""
    flat_seg = seg.reshape(-1)
    sums = nll.new_zeros(n_seg).index_add_(0, flat_seg, (nll * valid).reshape(-1))
    counts = nll.new_zeros(n_seg).index_add_(0, flat_seg, valid.to(nll.dtype).reshape(-1))
    return counts, -sums / counts.clamp(min=1.0)


class Objective:
    """One pretraining loss (module docstring) for a corpus's vocabulary.

    ``loss_sum(forward, tokens, positions, labels, weights)`` is the micro-batch's summed loss
    (a tensor that backpropagates); ``validation_sums`` the (loss sum, target weight) of
    windows, without gradients."""

    def __init__(
        self,
        name: str,
        options: dict[str, Any] | None,
        meta: dict[str, Any],
        vocab: dict[str, int],
        tokenizer_type: str | None,
        model: str = "<model>",
    ):
        spec = {"objective": "gpt", "loss": name, "loss_options": options or {}}
        self.name, self.options = loss_settings(model, spec, tokenizer_type)
        self.pad_id = meta.get("pad_id")
        specials = {k: meta.get(k) for k in ("pad_id", "unk_id", "bos_id", "eos_id", "sep_id")}
        specials["mask_id"] = meta.get("mask_id")
        special_ids = {int(v) for v in specials.values() if v is not None}
        where = f"pretrain.models.{model}.loss: the {self.name} loss"
        if self.name == "rc":
            try:
                self.rc_map = torch.from_numpy(token_rc_map(vocab, specials, tokenizer_type))
            except ConfigError as err:
                raise ConfigError(f"{where}: {err}") from None
        if self.name in ("two_d", "two_d_ce"):
            content = [t for t, i in vocab.items() if i not in special_ids]
            bad = sorted(t for t in content if len(t) != 1)
            if bad:
                raise ConfigError(
                    f"{where} needs a nucleotide tokenizer (one token per base); this "
                    f"vocabulary has longer tokens such as {bad[:3]}"
                )
            bases = sorted((i, t.upper()) for t, i in vocab.items() if t.upper() in WALK_STEPS)
            if not bases:
                raise ConfigError(f"{where}: the vocabulary has no A/C/G/T tokens")
            self.base_ids = torch.tensor([i for i, _ in bases], dtype=torch.long)
            self.base_steps = torch.tensor([WALK_STEPS[b] for _, b in bases], dtype=torch.float32)
        if self.name == "headless":
            dummy = meta.get("mask_id")
            self.dummy_id = int(dummy if dummy is not None else self.pad_id)

    def spec(self) -> dict[str, Any]:
        return {"loss": self.name, "loss_options": dict(self.options)}

    # ---- the losses

    def loss_sum(
        self,
        forward: Forward,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None,
    ) -> torch.Tensor:
        """Summed loss of a micro-batch (tensors on the model's device). # (B, T) each"""
        name = self.name
        if name == "ce":
            return ce_sum(forward(tokens, positions), labels, weights)
        if name == "headless":
            x = teacherless_inputs(tokens, positions, self.dummy_id, int(self.options["prefix"]))
            return ce_sum(forward(x, positions), labels, weights)
        if name == "rc":
            return self._rc_sum(forward, tokens, positions, labels, weights)
        logits = forward(tokens, positions)
        dev = logits.device
        walk = walk_loss_sum(
            logits, labels, positions, self.base_ids.to(dev), self.base_steps, weights
        )
        if name == "two_d":
            return walk
        return ce_sum(logits, labels, weights) + float(self.options["two_d_weight"]) * walk

    def _rc_sum(self, forward, tokens, positions, labels, weights):
        dev = tokens.device
        idx = torch.from_numpy(segment_reversal_index(positions.cpu().numpy())).to(dev)
        rc_tok = self.rc_map.to(dev)[torch.gather(tokens, 1, idx)]
        rc_lab = causal_labels(rc_tok, positions, self.pad_id)
        rc_w = None if weights is None else torch.gather(weights.to(dev), 1, idx)
        logits = forward(torch.cat([tokens, rc_tok]), torch.cat([positions, positions]))
        fwd, rev = logits.chunk(2)
        total = 0.5 * (ce_sum(fwd, labels, weights) + ce_sum(rev, rc_lab, rc_w))
        weight = float(self.options["consistency"])
        if weight == 0:
            return total
        b, t = tokens.shape
        seg = torch.cumsum(segment_starts(positions).long(), dim=1) - 1  # (B, T)
        seg = (seg + torch.arange(b, device=dev).unsqueeze(1) * t)[:, 1:]  # unique per row
        terms = []
        for lg, lab in ((fwd, labels), (rev, rc_lab)):
            y = lab[:, 1:]
            valid = y != IGNORE_INDEX
            nll = F.cross_entropy(
                lg[:, :-1].float().reshape(-1, lg.shape[-1]),
                y.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="none",
            ).reshape(y.shape)
            terms.append(_segment_mean_loglik(nll, valid, seg, b * t))
        (n, m_fwd), (_, m_rev) = terms
        return total + weight * (n * (m_fwd - m_rev).square()).sum()

    # ---- validation

    @torch.no_grad()
    def validation_sums(
        self,
        model,
        tokens,
        positions,
        batch_size: int,
        device,
        autocast_dtype=None,
        lowercase=None,
        lowercase_weight: float = 1.0,
    ) -> tuple[float, float]:
        """(loss sum, target weight sum) of the loss on windows `tokens`/`positions`
        # (N, T), in eval mode; `lowercase` # (N, T) flags weight targets as in training."""
        was_training = model.training
        model.eval()
        device = torch.device(device)

        def forward(x, pos):
            with torch.autocast(
                device.type,
                dtype=autocast_dtype or torch.float32,
                enabled=autocast_dtype is not None,
            ):
                return forward_logits(model, x, pos)

        loss, weight = 0.0, 0.0
        for start in range(0, tokens.shape[0], batch_size):
            rows = slice(start, min(start + batch_size, tokens.shape[0]))
            x = torch.from_numpy(np.asarray(tokens[rows], dtype=np.int64)).to(device)
            pos = torch.from_numpy(np.asarray(positions[rows], dtype=np.int64)).to(device)
            y = causal_labels(x, pos, self.pad_id)
            w = None
            if lowercase is not None:
                w = torch.from_numpy(target_weights(lowercase[rows], lowercase_weight)).to(device)
            loss += float(self.loss_sum(forward, x, pos, y, w))
            valid = y[:, 1:] != IGNORE_INDEX
            weight += float(valid.sum()) if w is None else float(w[:, 1:][valid].sum())
        model.train(was_training)
        return loss, weight


def build_objective(
    loss: str | None,
    options: dict[str, Any] | None,
    meta: dict[str, Any],
    tokenizer_dir,
    tokenizer_spec: dict[str, Any] | None,
    objective: str,
    model: str = "<model>",
) -> Objective:
    """The Objective of a run: `loss` (None: ce) with `options` for the corpus's vocabulary
    (read from `tokenizer_dir`). ConfigError for a non-ce loss of a masked model or a loss
    the vocabulary does not support."""
    loss = loss or "ce"
    if objective != "gpt" and loss != "ce":
        spec = {"objective": objective, "loss": loss, "loss_options": options}
        loss_settings(model, spec, None)  # raises, naming the model
    vocab: dict[str, int] = {}
    if loss != "ce":
        vocab = dict(AutoTokenizer.from_pretrained(str(tokenizer_dir)).get_vocab())
    ttype = (tokenizer_spec or {}).get("type")
    return Objective(loss, options, meta, vocab, ttype, model)


def test_objective(tr, model_metrics: dict[str, Any]) -> dict[str, Any]:
    """The loss's name and options, with ``loss_objective`` (the loss on the test split; the
    lower-case-weighted CE for ce) added to `model_metrics` (the test metrics of the model of
    the pretraining Trainer `tr`)."""
    loss: Objective = tr.loss
    if loss.name == "ce":
        value = model_metrics["loss_weighted"]
    else:
        tok, pos = load_split(tr.corpus_dir, "test")
        low = load_lowercase(tr.corpus_dir, "test")
        bs = tr.cfg["eval_batch_size"] or tr.cfg["micro_batch_size"]
        args = (tr.model, tok, pos, bs, tr.device, tr.amp_dtype, low, tr.low_weight)
        num, den = loss.validation_sums(*args)
        value = num / den if den else float("nan")
    model_metrics["loss_objective"] = value
    return loss.spec()


__all__ = [
    "Objective",
    "build_objective",
    "ce_sum",
    "segment_starts",
    "teacherless_inputs",
    "test_objective",
    "walk_loss_sum",
    "within_segment_cumsum",
]
