"""Sampling from a trained causal model folder: continuations of a prefix and the most
probable next tokens (the ``dnalm generate`` and ``dnalm next`` commands, and the sampling of
:mod:`dnalm.generation.run`).

The model folder is loaded as for scoring (:class:`dnalm.evaluation.inference.LoadedModel`);
a prefix is encoded as ``[BOS] tokens`` (no EOS) and must be DNA (IUPAC letters, either case).

* generate (causal): temperature / top-k / top-p (nucleus) sampling from a prefix, until
  [EOS], an in-frame stop codon (`stop_codon=True`, frame counted from the first base of the
  prefix) or `max_new_tokens`. Top-k keeps the k most probable tokens; top-p then keeps the
  smallest set of the most probable tokens whose probabilities (after temperature and top-k)
  sum to at least p (:func:`filter_logits`).
* next (causal): the top-k next tokens and their probabilities.
"""

from __future__ import annotations

import numpy as np
import torch

from dnalm.core.alphabet import IUPAC
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation.inference import LoadedModel, positive_int, token_logits

STOP_CODONS = frozenset({"TAA", "TAG", "TGA"})


@torch.no_grad()
def next_tokens(lm: LoadedModel, prefix: str, k: int = 5) -> list[tuple[str, float]]:
    """The `k` most probable next tokens after `prefix` (causal models), with their
    probabilities. Special tokens other than EOS (the end of the sequence, a real answer)
    are never candidates; probabilities are not renormalised over what is listed."""
    _need_causal(lm, "next")
    _positive(k=k)
    ids = encode_prefix(lm, prefix)[-lm.context :]
    probs = torch.softmax(token_logits(lm, ids)[-1].float(), -1)  # (V,)
    skip = [t for t in lm.special if t != lm.eos_id and t < probs.numel()]
    probs[skip] = -1.0  # below every probability: never among the top k
    n = min(k, probs.numel() - len(skip))
    p, i = probs.topk(n)
    return [(lm.token_text(int(t)), float(v)) for v, t in zip(p, i, strict=True)]


def _positive(**counts: int) -> None:
    for key, value in counts.items():
        if not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")


def check_prefix(prefix: str) -> None:
    """A ConfigError naming the prefix, the character and its position unless `prefix` is
    DNA (IUPAC letters, either case; empty is allowed: sampling starts after BOS)."""
    allowed = set(IUPAC + IUPAC.lower())
    bad = next((i for i, ch in enumerate(prefix) if ch not in allowed), None)
    if bad is not None:
        raise ConfigError(
            f"prefix {prefix!r}: character {prefix[bad]!r} at position {bad + 1} is not a "
            f"nucleotide code ({IUPAC}, either case); give --prefix as DNA letters"
        )


def encode_prefix(lm: LoadedModel, prefix: str) -> list[int]:
    """[BOS] + the tokens of `prefix` (no EOS); a prefix that is not DNA is a ConfigError
    naming the prefix, the character and its position."""
    check_prefix(prefix)
    try:
        return lm.encode(prefix, name=f"prefix {prefix!r}", eos=False)
    except InputFormatError as err:  # a tokenizer stricter than IUPAC
        raise ConfigError(f"prefix {prefix!r} cannot be tokenized: {err}") from err


def _need_causal(lm: LoadedModel, what: str) -> None:
    if lm.objective != "gpt":
        raise ConfigError(f"`{what}` needs a causal (gpt) model; this one is masked (mlm)")


def filter_logits(
    logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Logits (V,) with every token outside the top-k and outside the nucleus set to -inf.

    Top-k keeps the `top_k` largest logits (ties at the k-th value are kept). Top-p keeps the
    smallest set of the most probable tokens whose softmax probabilities sum to at least
    `top_p` (the token that crosses p is kept; at least one token always is)."""
    if top_k:
        kth = logits.topk(min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        order = torch.argsort(logits, descending=True)
        probs = torch.softmax(logits[order], -1)
        before = torch.cumsum(probs, -1) - probs  # mass of the tokens ranked above each one
        drop = before >= top_p
        drop[0] = False
        logits = logits.clone()
        logits[order[drop]] = float("-inf")
    return logits


def _check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if top_k is not None:
        _positive(top_k=top_k)
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")


@torch.no_grad()
def generate(
    lm: LoadedModel,
    prefix: str,
    n: int = 1,
    max_new_tokens: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
    stop_codon: bool = False,
    top_p: float | None = None,
) -> list[str]:
    """`n` sampled continuations of `prefix` (the returned strings include the prefix)."""
    _need_causal(lm, "generate")
    _check_sampling(temperature, top_k, top_p)
    _positive(n=n, max_new_tokens=max_new_tokens)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for _ in range(n):
        ids = encode_prefix(lm, prefix)
        seq, _reason = sample_continuation(
            lm, ids, max_new_tokens, temperature, top_k, gen, stop_codon, top_p
        )
        out.append(seq)
    return out


@torch.no_grad()
def sample_continuation(
    lm: LoadedModel,
    ids: list[int],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    gen: torch.Generator,
    stop_codon: bool = False,
    top_p: float | None = None,
) -> tuple[str, str]:
    """Extend the token ids `ids` ([BOS] + prefix tokens) by sampling. Returns (sequence,
    stop reason): "eos", "stop_codon" (the sequence ends with the in-frame stop, frame from
    its first base) or "length_cap" (`max_new_tokens` sampled)."""
    _need_causal(lm, "generate")
    _check_sampling(temperature, top_k, top_p)
    for _ in range(max_new_tokens):
        logits = token_logits(lm, ids[-lm.context :])[-1] / temperature  # (V,)
        probs = torch.softmax(filter_logits(logits, top_k, top_p), -1).cpu()
        token = int(torch.multinomial(probs, 1, generator=gen))
        if token == lm.eos_id:
            return lm.decode(ids), "eos"
        ids.append(token)
        if stop_codon:
            seq = lm.decode(ids)
            end = len(seq) - len(seq) % 3
            if end >= 3 and seq[end - 3 : end] in STOP_CODONS:
                return seq[:end], "stop_codon"
    return lm.decode(ids), "length_cap"


# --------------------------------------------------------------------------- command line


def _cmd_generate(args) -> int:
    check_prefix(args.prefix)  # before the model loads
    lm = LoadedModel.from_folder(args.model, args.device)
    seqs = generate(
        lm,
        args.prefix,
        args.n,
        args.max_new_tokens,
        args.temperature,
        args.top_k,
        args.seed,
        args.stop_codon,
        args.top_p,
    )
    for i, seq in enumerate(seqs, 1):
        print(f">sample{i} prefix={args.prefix}\n{seq}")
    return 0


def _cmd_next(args) -> int:
    check_prefix(args.prefix)
    lm = LoadedModel.from_folder(args.model, args.device)
    print("token\tprobability")
    for token, p in next_tokens(lm, args.prefix, args.k):
        print(f"{token}\t{p:.6f}")
    return 0


def register(subparsers) -> None:
    """`dnalm generate`, `dnalm next`."""
    p = subparsers.add_parser("generate", help="sample continuations of a prefix (gpt)")
    p.add_argument("--model", required=True)
    p.add_argument("--prefix", default="ATG", help="DNA prefix (default ATG)")
    p.add_argument("-n", type=positive_int, default=1, help="number of samples")
    p.add_argument("--max-new-tokens", type=positive_int, default=200)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=positive_int, default=None)
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (0, 1]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stop-codon", action="store_true", help="stop at an in-frame stop codon")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_generate)

    p = subparsers.add_parser("next", help="top-k next tokens after a prefix (gpt)")
    p.add_argument("--model", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("-k", type=positive_int, default=5, help="number of tokens to list")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_next)
