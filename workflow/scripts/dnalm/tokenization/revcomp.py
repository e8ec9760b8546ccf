"""Token-level reverse complement of token ids and of packed windows.

The reverse complement of a token sequence is computed on the ids, without decoding:

* :func:`token_rc_map` gives, for every id of a vocabulary, the id of the token that is its
  reverse complement: a nucleotide token maps to its complement (``A``<->``T``, ``C``<->``G``,
  ``N`` to itself; with a case-keeping vocabulary lower case to lower case, ``a``<->``t``), a
  k-mer token (non-overlapping or overlapping) to the token of the k-mer's reverse complement
  (``AAC`` -> ``GTT``), UNK, PAD and MASK to themselves, and BOS and EOS to each other (see
  below). Codon and BPE vocabularies are refused: a codon only means something in its own
  CDS frame and strand, and the reverse complement of a BPE token need not be a token.
* :func:`reverse_complement_windows` reverses every segment of a packed batch (a segment is a
  run of positions increasing by 1, as the corpus writes a CDS or a chunk of one; a pad token
  is a segment of its own) and maps each id through the table. Positions are unchanged (they
  still count 0, 1, ... from each segment's start), so the result is a valid packed batch of
  the same segments read on the other strand.

Special tokens. A segment ``BOS x1 ... xn EOS`` becomes ``BOS rc(xn) ... rc(x1) EOS``: exactly
what the corpus builder writes for the reverse-complement strand of that CDS (BOS marks a
sequence start, EOS its end, on whichever strand is read). Reversing the segment moves the
old EOS to the front and the old BOS to the back, so the table swaps them. For a chunk of a
long CDS, ``BOS x1 ... xn`` (the first chunk) becomes ``rc(xn) ... rc(x1) EOS``: on the
other strand that stretch is the end of the sequence, where its EOS belongs. With the BERT
layout of the dnalm tokenizers BOS is ``[CLS]`` and EOS ``[SEP]``.

For a non-overlapping k-mer vocabulary the result decodes to the reverse complement of the
decoded window, but it is not always what tokenizing that reverse complement would give (the
single-base tail of a stretch ends up at its start). For overlapping k-mers it is exactly the
tokenization of the reverse complement.

numpy only (the tokenization stage runs without torch); callers move the results to a device.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dnalm.core.alphabet import IUPAC, reverse_complement
from dnalm.core.errors import ConfigError
from dnalm.kinds.tokenizers import TOKENIZER_KINDS

#: tokenizer types whose tokens have no token-level reverse complement
NO_TOKEN_RC = tuple(k.name for k in TOKENIZER_KINDS if not k.token_rc)
_LETTERS = set(IUPAC + IUPAC.lower())


def token_rc_map(
    vocab: Mapping[str, int],
    special: Mapping[str, int | None],
    tokenizer_type: str | None = None,
) -> np.ndarray:
    """id -> id of its reverse-complement token, (V,) int64 (see the module docstring).

    `vocab`: token string -> id (every id 0..V-1 once); `special`: the special ids by role
    (``bos_id``, ``eos_id``, ``pad_id``, ... as in a corpus's meta.json; None where absent);
    `tokenizer_type`: the dnalm tokenizer type when known. Raises ConfigError for a codon or
    BPE vocabulary, or a token whose reverse complement is not in the vocabulary."""
    if tokenizer_type in NO_TOKEN_RC:
        names = [k.name for k in TOKENIZER_KINDS if k.token_rc]
        with_rc = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        raise ConfigError(
            f"a {tokenizer_type} vocabulary has no token-level reverse complement "
            f"({TOKENIZER_KINDS.get(tokenizer_type).no_rc_reason}); use a {with_rc} tokenizer"
        )
    size = len(vocab)
    out = np.full(size, -1, dtype=np.int64)
    specials = {int(v) for v in special.values() if v is not None}
    for tok, i in vocab.items():
        if not 0 <= i < size:
            raise ConfigError(f"vocabulary id {i} of token {tok!r} is outside 0..{size - 1}")
        if i in specials:
            out[i] = i
            continue
        if not tok or not set(tok) <= _LETTERS:
            raise ConfigError(
                f"token {tok!r} (id {i}) is not a DNA string: this vocabulary has no "
                "token-level reverse complement"
            )
        rc = vocab.get(reverse_complement(tok))
        if rc is None:
            raise ConfigError(
                f"token {tok!r} (id {i}): its reverse complement {reverse_complement(tok)!r} "
                "is not in the vocabulary, so it has no token-level reverse complement"
            )
        out[i] = rc
    if (out < 0).any():
        raise ConfigError(f"vocabulary ids {np.flatnonzero(out < 0).tolist()} have no token")
    bos, eos = special.get("bos_id"), special.get("eos_id")
    if bos is not None and eos is not None:
        out[int(bos)], out[int(eos)] = int(eos), int(bos)
    return out


def segment_reversal_index(positions: np.ndarray) -> np.ndarray:
    """For each token of a packed batch, the index in its row of the token that takes its
    place when every segment is reversed. # (B, T) -> (B, T) int64

    A segment starts where the position is not the previous one plus 1 (and at column 0)."""
    pos = np.asarray(positions, dtype=np.int64)
    b, t = pos.shape
    cols = np.broadcast_to(np.arange(t, dtype=np.int64), (b, t))
    starts = np.ones((b, t), dtype=bool)
    starts[:, 1:] = pos[:, 1:] != pos[:, :-1] + 1
    ends = np.ones((b, t), dtype=bool)
    ends[:, :-1] = starts[:, 1:]
    first = np.maximum.accumulate(np.where(starts, cols, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, cols, t)[:, ::-1], axis=1)[:, ::-1]
    return first + last - cols


def reverse_complement_windows(
    tokens: np.ndarray, positions: np.ndarray, rc_map: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The reverse complement of a packed batch, segment by segment: (tokens, positions)
    # (B, T) each. Tokens are reversed within each segment and mapped through `rc_map`
    (:func:`token_rc_map`); positions are returned unchanged. Per-token arrays that must
    follow the tokens (lower-case flags, loss weights) are reordered with
    ``np.take_along_axis(a, segment_reversal_index(positions), 1)``."""
    idx = segment_reversal_index(positions)
    tok = np.asarray(tokens, dtype=np.int64)
    return rc_map[np.take_along_axis(tok, idx, axis=1)], np.asarray(positions).copy()


__all__ = [
    "NO_TOKEN_RC",
    "reverse_complement_windows",
    "segment_reversal_index",
    "token_rc_map",
]
