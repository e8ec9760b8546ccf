"""The count-model sampler: the baseline every language model has to beat.

A Markov chain of order `order` over units of `unit` nucleotides: single bases
(``unit=1``, order k: P(base | the k bases before)) or, for codon tokenizers, codons
(``unit=3``, order 2: a codon trigram, P(codon | the two codons before), in frame from each
sequence's first base). Counts come from the training split; a context never seen in
training backs off to the longest shorter context that was (down to the unit frequencies).
No smoothing beyond that: the sampler only emits n-grams seen in training.

Ends: on CDS (`stop_codon=True`) a sample ends at its first in-frame stop codon; every sample
ends at the length cap; otherwise (genome windows, regions) its length is drawn from the
training sequences' lengths (capped), since counts of units say nothing about where a
window ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from dnalm.core.alphabet import BASES, N_CODE, encode_sequences
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.log import progress_disabled
from dnalm.generation.sequences import STOP_CODONS, clean

#: largest count table (entries) a sampler may allocate
MAX_TABLE = 1 << 26


def unit_codes(seq: str, unit: int) -> np.ndarray:
    """Codes of the in-frame units of `seq`: 0..4^unit-1, -1 for a unit holding N. # (L//unit,)"""
    codes, _ = encode_sequences([clean(seq)])
    c = codes[0].astype(np.int64)
    n = len(c) // unit
    c = c[: n * unit].reshape(n, unit)
    value = np.zeros(n, np.int64)
    for j in range(unit):
        value = value * 4 + np.minimum(c[:, j], 3)
    value[(c == N_CODE).any(1)] = -1
    return value


class MarkovSampler:
    """Order-`order` Markov chain over `unit`-nt units, fitted with :meth:`fit`."""

    def __init__(self, order: int, unit: int = 1):
        if order < 0:
            raise ConfigError(f"generate.markov_order must be >= 0, got {order}")
        if unit not in (1, 3):
            raise ConfigError(f"the Markov sampler's unit is 1 (bases) or 3 (codons), not {unit}")
        self.order, self.unit, self.v = order, unit, 4**unit
        if self.v ** (order + 1) > MAX_TABLE:
            raise ConfigError(
                f"generate.markov_order {order} over {'codons' if unit == 3 else 'bases'} "
                f"needs a table of {self.v ** (order + 1):,} counts (limit {MAX_TABLE:,}); "
                "lower it"
            )
        # counts[j]: (v^j, v) next-unit counts after each j-unit context
        self.counts = [np.zeros((self.v**j, self.v), np.int64) for j in range(order + 1)]
        self.lengths = np.zeros(0, np.int64)

    def fit(self, sequences: Sequence[str]) -> MarkovSampler:
        lengths = []
        for seq in tqdm(sequences, desc="Markov counts", unit="seq", disable=progress_disabled()):
            u = unit_codes(seq, self.unit)
            lengths.append(len(seq))
            for j in range(self.order + 1):
                if len(u) <= j:
                    break
                win = np.lib.stride_tricks.sliding_window_view(u, j + 1)  # (M, j+1)
                win = win[(win >= 0).all(1)]
                ctx = np.zeros(len(win), np.int64)
                for col in range(j):
                    ctx = ctx * self.v + win[:, col]
                np.add.at(self.counts[j], (ctx, win[:, j]), 1)
        if not self.counts[0].any():
            raise InputFormatError(
                f"the Markov sampler's training split has no whole A/C/G/T "
                f"{'codon' if self.unit == 3 else 'base'} ({len(sequences)} sequences)"
            )
        self.lengths = np.asarray(lengths, np.int64)
        return self

    def _next(self, history: list[int], rng: np.random.Generator) -> int:
        for j in range(min(self.order, len(history)), -1, -1):
            ctx = history[len(history) - j :]
            if any(c < 0 for c in ctx):
                continue
            idx = 0
            for c in ctx:
                idx = idx * self.v + c
            row = self.counts[j][idx]
            total = row.sum()
            if total:
                return int(rng.choice(self.v, p=row / total))
        raise AssertionError("order-0 counts are never empty after fit")  # pragma: no cover

    def _text(self, code: int) -> str:
        return "".join(BASES[(code >> (2 * (self.unit - 1 - j))) & 3] for j in range(self.unit))

    def sample(
        self, prefix: str, max_new_nt: int, rng: np.random.Generator, stop_codon: bool = False
    ) -> tuple[str, str]:
        """(sequence incl. `prefix`, stop reason "stop_codon" | "end" | "length_cap")."""
        prefix = clean(prefix)
        history = [int(c) for c in unit_codes(prefix, self.unit)] if prefix else []
        seq = prefix[: len(history) * self.unit]
        cap = len(seq) + max_new_nt
        end = cap
        if not stop_codon and self.lengths.size:
            end = min(cap, max(len(seq) + self.unit, int(rng.choice(self.lengths))))
        while len(seq) + self.unit <= end:
            code = self._next(history, rng)
            history.append(code)
            seq += self._text(code)
            if stop_codon:
                cut = len(seq) - len(seq) % 3
                if cut >= 3 and seq[cut - 3 : cut] in STOP_CODONS:
                    return seq[:cut], "stop_codon"
        return seq, "length_cap" if end == cap else "end"
