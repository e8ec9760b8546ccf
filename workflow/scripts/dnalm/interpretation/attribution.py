"""Attribution in base space: in-silico mutagenesis, gradient x input and integrated gradients.

Every method explains one scalar per sequence (the model's *output*, see
:class:`OneHotScalar`): for a per-base task the mean prediction over the sequence's scored
bases (the whole-window mean: one number that rises when any base of the window looks
bound, so its attribution marks the bases the model treats as binding sites); for a
classifier the logit of the sequence's own class minus the mean logit over classes (for
two classes, half the log-odds of the own class); for sequence regression the prediction.

Methods and what they return for a batch of N sequences of width L:

``ism``            every single-base substitution of every base, batched: ``delta`` (N, L, 4)
                   = f(mutant) - f(reference), 0 at the reference base and at padding or N.
                   The per-position track is the reference base's value minus the mean over
                   the four bases, ``-delta.sum(-1) / 4``; the (N, L, 4) "hypothetical"
                   matrix is ``delta`` centred over the four bases (the reference letter's
                   height is the track value).
``grad_x_input``   gradient of the output times the input (captum ``InputXGradient`` on the
                   one-hot input; ``LayerGradientXActivation`` on the token embedding layer
                   of a token model).
``ig``             integrated gradients (captum ``IntegratedGradients`` on the one-hot input
                   from an all-zero baseline, which is how every model here encodes N; on a
                   token model ``LayerIntegratedGradients`` on the token embedding layer, from
                   the sequence with every token but BOS/EOS replaced by the pad token).

A token model's attribution per token (summed over the embedding dimensions) is spread
evenly over the bases that token covers (a 6-mer token's value / 6 to each of its bases),
so a window's total is kept; bases no token covers get 0. For the one-hot models the
per-position track is the sum over the four bases (only the reference base is non-zero).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from dnalm.core.alphabet import N_CODE, one_hot
from dnalm.core.errors import ConfigError
from dnalm.kinds.tasks import TASK_KINDS

METHODS = ("ism", "grad_x_input", "ig")

#: codes (B, L) int, mask (B, L) bool, class index (B,) int -> output (B,) float
CodesScorer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def scalar_output(out: torch.Tensor, kind: str, mask: torch.Tensor, cls: torch.Tensor):
    """The explained scalar (B,) from a model's raw output (module docstring)."""
    if TASK_KINDS.get(kind).per_base:
        m = mask.to(out.dtype)  # (B, L)
        return (out * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B,)
    if TASK_KINDS.get(kind).classes:
        own = out.gather(1, cls.long().view(-1, 1)).squeeze(1)  # (B,)
        return own - out.mean(1)
    return out.reshape(out.shape[0], -1)[:, 0]  # sequence regression: (B, 1) -> (B,)


class OneHotScalar(nn.Module):
    """A one-hot model (B, L, 4) [, mask] -> per-base (B, L) or logits (B, C), wrapped to
    return the explained scalar (B,): forward(x, mask, cls)."""

    def __init__(self, net: nn.Module, kind: str) -> None:
        super().__init__()
        self.net = net
        self.kind = kind

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cls: torch.Tensor) -> torch.Tensor:
        return scalar_output(self.net(x, mask), self.kind, mask, cls)


def onehot_scorer(model: OneHotScalar, device: torch.device | str = "cpu") -> CodesScorer:
    """A :data:`CodesScorer` of a one-hot model (no gradients)."""

    def score(codes: np.ndarray, mask: np.ndarray, cls: np.ndarray) -> np.ndarray:
        c = torch.as_tensor(codes, device=device)
        with torch.no_grad():
            out = model(
                one_hot(c),
                torch.as_tensor(mask, device=device),
                torch.as_tensor(cls, device=device),
            )
        return out.float().cpu().numpy()

    return score


# ----------------------------------------------------------------------------- ISM


def ism(
    score: CodesScorer,
    codes: np.ndarray,
    mask: np.ndarray,
    cls: np.ndarray,
    batch_size: int = 256,
) -> np.ndarray:
    """In-silico mutagenesis: (N, L, 4) f(mutant) - f(reference) of every substitution of
    every A/C/G/T base (module docstring); the batches mix mutants of one sequence only."""
    codes = np.asarray(codes)
    mask = np.asarray(mask, bool)
    cls = np.asarray(cls)
    n, width = codes.shape
    delta = np.zeros((n, width, 4), np.float32)
    for i in range(n):
        pos = np.flatnonzero(mask[i] & (codes[i] != N_CODE))
        if not len(pos):
            continue
        ref = float(score(codes[i : i + 1], mask[i : i + 1], cls[i : i + 1])[0])
        sites = [(p, b) for p in pos for b in range(4) if b != codes[i, p]]  # 3 per base
        for start in range(0, len(sites), batch_size):
            chunk = sites[start : start + batch_size]
            mut = np.repeat(codes[i : i + 1], len(chunk), axis=0)
            for j, (p, b) in enumerate(chunk):
                mut[j, p] = b
            out = score(
                mut,
                np.repeat(mask[i : i + 1], len(chunk), axis=0),
                np.repeat(cls[i : i + 1], len(chunk)),
            )
            for j, (p, b) in enumerate(chunk):
                delta[i, p, b] = out[j] - ref
    return delta


def ism_track(delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(track (N, L), hypothetical (N, L, 4)) of ISM deltas (module docstring)."""
    hyp = delta - delta.mean(-1, keepdims=True)
    return -delta.sum(-1) / 4.0, hyp


# ----------------------------------------------------------------------------- one-hot models


def onehot_gradients(
    model: OneHotScalar,
    codes: np.ndarray,
    mask: np.ndarray,
    cls: np.ndarray,
    method: str,
    *,
    steps: int = 32,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """(N, L, 4) captum attributions of a one-hot model (grad_x_input or ig)."""
    # lazy: captum loads only when attributions are computed
    from captum.attr import InputXGradient, IntegratedGradients

    out = []
    for s in range(0, len(codes), batch_size):
        x = one_hot(torch.as_tensor(codes[s : s + batch_size], device=device))  # (B, L, 4)
        m = torch.as_tensor(mask[s : s + batch_size], device=device)
        c = torch.as_tensor(cls[s : s + batch_size], device=device)
        x.requires_grad_(True)
        if method == "grad_x_input":
            a = InputXGradient(model).attribute(x, additional_forward_args=(m, c))
        elif method == "ig":
            a = IntegratedGradients(model).attribute(
                x, baselines=torch.zeros_like(x), additional_forward_args=(m, c), n_steps=steps
            )
        else:
            raise ConfigError(f"interpret.methods: unknown gradient method {method!r}")
        out.append(a.detach().float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, codes.shape[1], 4), np.float32)


# ----------------------------------------------------------------------------- token models


class TokenScalar(nn.Module):
    """A fine-tuned token model (:class:`dnalm.modeling.task_model.FinetuneModel`) wrapped to
    return the explained scalar: forward(input_ids, attention_mask, base_index, mask, cls)."""

    def __init__(self, model: nn.Module, kind: str) -> None:
        super().__init__()
        self.model = model
        self.kind = kind

    def forward(self, input_ids, attention_mask, base_index, mask, cls) -> torch.Tensor:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if TASK_KINDS.get(self.kind).per_base:
            batch["base_index"] = base_index
            batch["mask"] = mask
        return scalar_output(self.model(batch), self.kind, mask, cls)


def token_scorer(
    model: TokenScalar, tokenize: Callable[[np.ndarray, np.ndarray], Mapping[str, Any]], device
) -> CodesScorer:
    """A :data:`CodesScorer` of a token model: `tokenize(codes, mask)` gives input_ids,
    attention_mask and (per-base tasks) base_index and the covered-base mask."""

    def score(codes: np.ndarray, mask: np.ndarray, cls: np.ndarray) -> np.ndarray:
        b = _token_inputs(tokenize, codes, mask, cls, device)
        with torch.no_grad():
            return model(*b).float().cpu().numpy()

    return score


def _token_inputs(tokenize, codes, mask, cls, device) -> tuple[torch.Tensor, ...]:
    b = tokenize(codes, mask)
    ids = b["input_ids"].to(device)
    base_index = b.get("base_index")
    if base_index is None:  # sequence tasks: the projection still needs the base -> token map
        base_index = torch.full(tuple(np.shape(codes)), -1, dtype=torch.long)
    return (
        ids,
        b["attention_mask"].to(device),
        base_index.to(device),
        b.get("mask", torch.as_tensor(mask)).to(device),
        torch.as_tensor(cls, device=device),
    )


def tokens_to_base_attribution(tok_attr: np.ndarray, base_index: np.ndarray) -> np.ndarray:
    """Spread per-token attributions (N, T) onto bases (N, L): each base gets its token's
    value divided by the number of bases that token covers; uncovered bases (-1) get 0."""
    tok_attr = np.asarray(tok_attr, np.float64)
    base_index = np.asarray(base_index)
    out = np.zeros(base_index.shape, np.float32)
    for i in range(base_index.shape[0]):
        idx = base_index[i]
        covered = idx >= 0
        if not covered.any():
            continue
        counts = np.bincount(idx[covered], minlength=tok_attr.shape[1])
        out[i, covered] = tok_attr[i, idx[covered]] / counts[idx[covered]]
    return out


def token_gradients(
    model: TokenScalar,
    tokenize: Callable[[np.ndarray, np.ndarray], Mapping[str, Any]],
    base_map: Callable[[np.ndarray, np.ndarray], np.ndarray],
    codes: np.ndarray,
    mask: np.ndarray,
    cls: np.ndarray,
    method: str,
    *,
    pad_id: int,
    special_ids: set[int],
    steps: int = 32,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """(N, L) attribution of a token model through its token embedding layer (module
    docstring); `base_map(codes, mask)` gives the (N, L) base -> token index."""
    # lazy: captum loads only when attributions are computed
    from captum.attr import LayerGradientXActivation, LayerIntegratedGradients

    layer = model.model.backbone.get_input_embeddings()
    out = []
    for s in range(0, len(codes), batch_size):
        c, m, k = codes[s : s + batch_size], mask[s : s + batch_size], cls[s : s + batch_size]
        ids, attn, base_index, bmask, kk = _token_inputs(tokenize, c, m, k, device)
        extra = (attn, base_index, bmask, kk)
        if method == "grad_x_input":
            a = LayerGradientXActivation(model, layer).attribute(ids, additional_forward_args=extra)
        elif method == "ig":
            special = torch.zeros_like(ids, dtype=torch.bool)
            for sid in special_ids:
                special |= ids == sid
            baseline = torch.where(special | (attn == 0), ids, torch.full_like(ids, pad_id))
            a = LayerIntegratedGradients(model, layer).attribute(
                ids, baselines=baseline, additional_forward_args=extra, n_steps=steps
            )
        else:
            raise ConfigError(f"interpret.methods: unknown gradient method {method!r}")
        tok_attr = a.detach().float().sum(-1).cpu().numpy()  # (B, T, E) -> (B, T)
        out.append(tokens_to_base_attribution(tok_attr, base_map(c, m)))
    return np.concatenate(out) if out else np.zeros(codes.shape, np.float32)
