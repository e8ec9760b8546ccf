"""Per-sequence properties of natural and generated sequences, and the natural reference set.

* GC: the fraction of G+C among the A/C/G/T letters; GC3 the same at third codon positions
  (frame from the sequence's first base).
* ORF validity (:func:`orf_check`): the sequence is a whole number of codons, at least
  ``MIN_ORF_CODONS`` long, starts with ATG (or with the start codon its prefix began with:
  bacterial GTG/TTG starts of held-out CDS count), ends with an in-frame stop codon
  (TAA/TAG/TGA) and has no stop codon before it.
* The natural reference set (:func:`choose_held_out`): a seeded sample of the held-out (test
  split) sequences of the model's corpus. Its first ``n_prefix`` sequences give the prefixes;
  all ``n_prefix + n_free`` of them are the natural set, each cut to the same length cap a
  generated sequence has (prefix_nt + max_new_nt nt), so natural and generated sequences are
  compared within the same window: a natural CDS longer than the cap loses its stop codon,
  just as a generation that reaches the cap has none.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta_files

log = logging.getLogger(__name__)

STOP_CODONS = frozenset({"TAA", "TAG", "TGA"})
#: shortest valid ORF: start codon, one sense codon, stop codon
MIN_ORF_CODONS = 3
_NOT_ACGT = re.compile("[^ACGT]")


def clean(seq: str) -> str:
    """Upper case, U -> T, every other letter outside ACGT -> N."""
    return _NOT_ACGT.sub("N", seq.upper().replace("U", "T"))


def gc_fraction(seq: str) -> float:
    """G+C over A/C/G/T letters (NaN when there are none)."""
    s = seq.upper()
    acgt = sum(s.count(b) for b in "ACGT")
    return (s.count("G") + s.count("C")) / acgt if acgt else float("nan")


def gc3_fraction(seq: str) -> float:
    """GC at third codon positions, frame from the first base (NaN without a whole codon)."""
    return gc_fraction(seq[2 : len(seq) - len(seq) % 3 : 3])


def codons(seq: str) -> list[str]:
    """In-frame codons from the first base (a trailing partial codon is dropped)."""
    s = seq.upper()
    return [s[i : i + 3] for i in range(0, len(s) - 2, 3)]


def orf_check(seq: str, starts: Iterable[str] = ("ATG",)) -> tuple[bool, str]:
    """(valid, reason): reason is "ok" or what is wrong first: "not_whole_codons", "short",
    "start" (first codon not among `starts`), "no_stop" (last codon not a stop),
    "internal_stop"."""
    s = seq.upper()
    if len(s) % 3:
        return False, "not_whole_codons"
    if len(s) < 3 * MIN_ORF_CODONS:
        return False, "short"
    cods = codons(s)
    if cods[0] not in set(starts):
        return False, "start"
    if cods[-1] not in STOP_CODONS:
        return False, "no_stop"
    if any(c in STOP_CODONS for c in cods[1:-1]):
        return False, "internal_stop"
    return True, "ok"


@dataclass
class Record:
    """One sequence of a set: id, sequence, kind (prefix | free | natural), the id of the
    held-out sequence whose prefix it continues (or ""), why it ended."""

    id: str
    seq: str
    kind: str
    prefix_id: str = ""
    stop: str = ""


def read_sequences(paths: Sequence[str | os.PathLike]) -> list[tuple[str, str]]:
    """(id, cleaned sequence) of every record of the FASTA files, in order; ids are made
    unique by the file's position when two files share one (samples are separate files)."""
    return [(sid, clean(seq)) for _, sid, seq, _ in read_fasta_files(paths)]


def prefix_length(prefix_nt: int, unit: int, cds: bool) -> int:
    """`prefix_nt` rounded down to whole tokens (and whole codons on a CDS corpus)."""
    step = math.lcm(unit, 3) if cds else unit
    n = prefix_nt - prefix_nt % step
    if n < step:
        raise ConfigError(
            f"generate.prefix_nt {prefix_nt} is shorter than one unit ({step} nt: whole "
            f"tokens{' and codons' if cds else ''}); raise it"
        )
    return n


def choose_held_out(
    records: Sequence[tuple[str, str]],
    n: int,
    prefix_nt: int,
    seed: int,
    cds: bool,
    where: str,
) -> list[tuple[str, str]]:
    """A seeded sample of `n` held-out records, in random order, long enough for a prefix
    (and, for CDS, a whole number of codons without N in the prefix). Fewer when fewer
    qualify (with a warning); InputFormatError naming `where` when none does."""
    ok = [
        (sid, s)
        for sid, s in records
        if len(s) > prefix_nt and "N" not in s[:prefix_nt] and (not cds or len(s) % 3 == 0)
    ]
    if not ok:
        raise InputFormatError(
            f"{where}: none of the {len(records)} held-out sequences is longer than the "
            f"{prefix_nt}-nt prefix{' and a whole number of codons' if cds else ''}; lower "
            "generate.prefix_nt or check the test split"
        )
    if len(ok) < n:
        log.warning("%s: only %d held-out sequences qualify (wanted %d)", where, len(ok), n)
    pick = np.random.default_rng(seed).permutation(len(ok))[: min(n, len(ok))]
    return [ok[i] for i in pick]  # random order: prefix and free roles are random too


def properties(rec: Record, source: str, cds: bool) -> dict:
    """The per-sequence row of samples.tsv."""
    starts = {"ATG"}
    if rec.kind in ("prefix", "natural", "control"):
        starts.add(rec.seq[:3].upper())
    valid, why = orf_check(rec.seq, starts) if cds else (False, "")
    return {
        "source": source,
        "id": rec.id,
        "kind": rec.kind,
        "prefix_id": rec.prefix_id,
        "length": len(rec.seq),
        "gc": round(gc_fraction(rec.seq), 5),
        "gc3": round(gc3_fraction(rec.seq), 5),
        "valid_orf": int(valid) if cds else "",
        "orf_check": why,
        "stop": rec.stop,
    }
