"""The DNA alphabet as text, in pure Python: the base letters, IUPAC, the ambiguity codes,
reverse complement and k-mer names. :mod:`dnalm.core.alphabet` re-exports all of them beside
its NumPy encodings; this module is the part that needs no NumPy, so that what only reads
and writes sequences as strings (CDS extraction, the ``dnalm cds`` command) starts without
importing it. The rules are described in :mod:`dnalm.core.alphabet`."""

from __future__ import annotations

BASES = "ACGT"
#: every accepted nucleotide letter (upper case; lower case is accepted too)
IUPAC = "ACGTURYSWKMBDHVN"
#: IUPAC ambiguity codes, read as N by every stage
AMBIGUITY = "RYSWKMBDHV"

_RC_TABLE = str.maketrans("ACGTURYSWKMBDHVNacgturyswkmbdhvn", "TGCAAYRSWMKVHDBNtgcaayrswmkvhdbn")


def reverse_complement(seq: str) -> str:
    """Reverse complement of a DNA/RNA string over the IUPAC alphabet (case kept; U -> A).
    Characters outside IUPAC are left as they are (callers that validate reject them)."""
    return seq.translate(_RC_TABLE)[::-1]


def kmer_names(k: int) -> list[str]:
    """All 4^k k-mers in lexicographic A<C<G<T order (index = base-4 value); the column order
    of :func:`~dnalm.core.alphabet.kmer_frequencies` and
    :func:`~dnalm.core.alphabet.kmer_frequencies_sparse`."""
    names = [""]
    for _ in range(k):
        names = [n + b for n in names for b in BASES]
    return names
