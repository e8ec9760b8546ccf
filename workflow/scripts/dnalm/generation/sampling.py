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

from collections.abc import Sequence

import numpy as np
import torch

from dnalm.core.alphabet import IUPAC
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation.inference import (
    LoadedModel,
    add_model_arguments,
    causal_forward,
    cli_external,
    load_lm,
    positive_int,
    token_logits,
)

STOP_CODONS = frozenset({"TAA", "TAG", "TGA"})
#: rows sampled together in one forward pass
BATCH_SIZE = 64
#: tokens between two checks (one host sync) of whether every row of a batch has ended
CHECK_EVERY = 32


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
    """Logits (..., V) with every token outside the top-k and outside the nucleus set to
    -inf, row by row (each row of a batch is filtered on its own).

    Top-k keeps the `top_k` largest logits (ties at the k-th value are kept). Top-p keeps the
    smallest set of the most probable tokens whose softmax probabilities sum to at least
    `top_p` (the token that crosses p is kept; at least one token always is)."""
    if top_k:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        ranked, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(ranked, -1)
        before = torch.cumsum(probs, -1) - probs  # mass of the tokens ranked above each one
        drop = before >= top_p
        drop[..., 0] = False
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))
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
    batch_size: int = BATCH_SIZE,
) -> list[str]:
    """`n` sampled continuations of `prefix` (the returned strings include the prefix),
    sampled `batch_size` at a time (:func:`sample_batch`)."""
    _need_causal(lm, "generate")
    _check_sampling(temperature, top_k, top_p)
    _positive(n=n, max_new_tokens=max_new_tokens, batch_size=batch_size)
    gen = torch.Generator(device=lm.device).manual_seed(seed)
    ids = encode_prefix(lm, prefix)
    done = sample_batch(
        lm, [ids] * n, max_new_tokens, temperature, top_k, gen, stop_codon, top_p, batch_size
    )
    return [seq for seq, _reason in done]


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
    its first base) or "length_cap" (`max_new_tokens` sampled). One row of
    :func:`sample_batch`."""
    return sample_batch(lm, [ids], max_new_tokens, temperature, top_k, gen, stop_codon, top_p)[0]


@torch.no_grad()
def sample_batch(
    lm: LoadedModel,
    prompts: Sequence[list[int]],
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    gen: torch.Generator,
    stop_codon: bool = False,
    top_p: float | None = None,
    batch_size: int = BATCH_SIZE,
) -> list[tuple[str, str]]:
    """(sequence, stop reason) of each prompt (token ids, [BOS] + prefix tokens), as
    :func:`sample_continuation` would give one by one, in the order given.

    Prompts of the same length are sampled together, up to `batch_size` rows a forward pass,
    with the model's cache (attention keys and values, or a state-space model's states), so
    each new token costs one position, not the whole prefix again (an external model whose
    code takes no cache runs the whole sequence for each token); the tokens are sampled on
    the model's device and the batch is copied to the host once it is finished. A sequence
    longer than the model's context is continued from its last `context` tokens, as one
    would be without a cache. Rows are sampled from `gen` together, so a sample depends on
    the seed and on the rows sampled with it."""
    _need_causal(lm, "generate")
    _check_sampling(temperature, top_k, top_p)
    _positive(max_new_tokens=max_new_tokens, batch_size=batch_size)
    by_length: dict[int, list[int]] = {}
    for i, ids in enumerate(prompts):
        by_length.setdefault(len(ids), []).append(i)
    out: list[tuple[str, str]] = [("", "")] * len(prompts)
    for rows in by_length.values():
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            x = torch.tensor([prompts[i] for i in chunk], dtype=torch.long)
            new = _sample_tokens(lm, x, max_new_tokens, temperature, top_k, top_p, gen)
            for i, tokens in zip(chunk, new.tolist(), strict=True):
                out[i] = _finish(lm, list(prompts[i]), tokens, stop_codon)
    return out


def _finish(
    lm: LoadedModel, ids: list[int], tokens: list[int], stop_codon: bool
) -> tuple[str, str]:
    """The sequence and stop reason of one row: its sampled `tokens` read as the one-token
    loop reads them (up to [EOS], or up to the first in-frame stop codon)."""
    for token in tokens:
        if token == lm.eos_id:
            return lm.decode(ids), "eos"
        ids.append(token)
        if stop_codon:
            seq = lm.decode(ids)
            end = len(seq) - len(seq) % 3
            if end >= 3 and seq[end - 3 : end] in STOP_CODONS:
                return seq[:end], "stop_codon"
    return lm.decode(ids), "length_cap"


def _sample_tokens(
    lm: LoadedModel,
    x: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    gen: torch.Generator,
) -> torch.Tensor:
    """`max_new_tokens` sampled tokens after each row of `x` (B, T), all rows of one length;
    after a row's [EOS] its tokens are [EOS] too. # (B, T) -> (B, <= max_new_tokens), host"""
    b, length = x.shape
    buf = torch.empty((b, length + max_new_tokens), dtype=torch.long, device=lm.device)
    buf[:, :length] = x.to(lm.device)
    eos = lm.eos_id
    done = torch.zeros(b, dtype=torch.bool, device=lm.device)
    cache, fed = None, 0  # tokens the cache holds
    end = length
    for step in range(max_new_tokens):
        if end <= lm.context and lm.cached:
            logits, cache = causal_forward(lm, buf[:, fed:end], fed, cache)
            fed = end
        else:  # past the context, or a model without a cache: the last `context` tokens,
            # positions from 0, no cache
            logits, _ = causal_forward(lm, buf[:, max(0, end - lm.context) : end], 0, None, False)
        logits = logits[:, -1]  # (B, V)
        probs = torch.softmax(filter_logits(logits / temperature, top_k, top_p), -1)
        token = torch.multinomial(probs.to(gen.device), 1, generator=gen)[:, 0].to(lm.device)
        if eos is not None:
            token = token.masked_fill(done, eos)
            done |= token == eos
        buf[:, end] = token
        end += 1
        # whether every row has ended: a host sync every CHECK_EVERY tokens, not every token
        if eos is not None and step % CHECK_EVERY == CHECK_EVERY - 1 and bool(done.all()):
            break
    return buf[:, length:end].cpu()


# --------------------------------------------------------------------------- command line


def _cmd_generate(args) -> int:
    check_prefix(args.prefix)  # before the model loads
    with cli_external(args) as external:
        lm = load_lm(args.model, args.device, external)
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
    with cli_external(args) as external:
        lm = load_lm(args.model, args.device, external)
    print("token\tprobability")
    for token, p in next_tokens(lm, args.prefix, args.k):
        print(f"{token}\t{p:.6f}")
    return 0


def register(subparsers) -> None:
    """`dnalm generate`, `dnalm next`."""
    p = subparsers.add_parser("generate", help="sample continuations of a prefix (gpt)")
    add_model_arguments(p, "trained model folder (gpt)")
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
    add_model_arguments(p, "trained model folder (gpt)")
    p.add_argument("--prefix", required=True)
    p.add_argument("-k", type=positive_int, default=5, help="number of tokens to list")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_next)
