"""Prokaryotic gene calling with pyrodigal (the Cython binding of Prodigal), for genomes
without annotation (sheet column ``annotate: pyrodigal``).

Modes (``annotate_mode``):

``single``
    Prodigal's normal mode: a :class:`pyrodigal.GeneFinder` is trained on the sample's own
    genome (all contigs together, joined by Prodigal's linkers) with the sheet's genetic code
    (11 when empty), then genes are found on each contig. Training needs at least 20,000 bp
    (Prodigal recommends 100,000 or more); a smaller genome is an error that suggests meta.
``meta``
    Prodigal's metagenomic mode: the 50 pre-trained models shipped with Prodigal, the best
    one chosen per contig; for plasmids, phages and other small genomes. Only the models of
    the sample's genetic code are used (Prodigal has models for codes 11 and 4 only).

Contig ends are open (genes may run off an edge; such calls are partial and the CDS QC drops
them by default) and runs of N are not masked. A circular contig's gene that spans its origin
is not joined (Prodigal treats every sequence as linear).

Each call is a :class:`PredictedGene`: 1-based inclusive ``start``/``end`` on the contig,
``strand``, the coding-strand sequence (upper case, from the start codon through the stop
codon) and Prodigal's score. Its id is ``{contig}_{n}`` (n counts the calls of a contig from
1, left to right), as Prodigal names its calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from dnalm.core.errors import InputFormatError, SampleSheetError
from dnalm.core.letters import reverse_complement
from dnalm.core.log import progress_disabled

log = logging.getLogger(__name__)

MODES: tuple[str, ...] = ("single", "meta")
CALLERS: tuple[str, ...] = ("pyrodigal",)
DEFAULT_CODE = 11


@dataclass(frozen=True)
class PredictedGene:
    contig: str
    index: int  # 1-based rank of the call on its contig
    start: int  # 1-based, inclusive (leftmost base)
    end: int  # 1-based, inclusive (rightmost base)
    strand: str  # "+" or "-"
    partial5: bool  # runs off the contig at its 5' end (no start codon)
    partial3: bool  # runs off the contig at its 3' end (no stop codon)
    start_type: str  # ATG, GTG, TTG or Edge
    score: float
    sequence: str  # coding strand, upper case

    @property
    def gene_id(self) -> str:
        return f"{self.contig}_{self.index}"

    @property
    def stop(self) -> int:
        """1-based coordinate of the last base of the stop codon (end on +, start on -)."""
        return self.end if self.strand == "+" else self.start

    @property
    def location(self) -> str:
        body = f"{self.start}..{self.end}"
        return body if self.strand == "+" else f"complement({body})"


def _finder(mode: str, code: int, seqs: list[str], sample: str):
    import pyrodigal  # lazy: a compiled extension, loaded only when genes are called

    if mode not in MODES:
        raise SampleSheetError(f"sample {sample}: annotate_mode {mode!r} is not one of {MODES}")
    if code not in pyrodigal.TRANSLATION_TABLES:
        raise SampleSheetError(
            f"sample {sample}: genetic_code {code} is not supported by pyrodigal (tables: "
            f"{sorted(pyrodigal.TRANSLATION_TABLES)})"
        )
    if mode == "meta":
        bins = [b for b in pyrodigal.METAGENOMIC_BINS if b.training_info.translation_table == code]
        if not bins:
            codes = sorted({b.training_info.translation_table for b in pyrodigal.METAGENOMIC_BINS})
            raise SampleSheetError(
                f"sample {sample}: annotate_mode meta has no pre-trained models for genetic code "
                f"{code} (only {codes}); use annotate_mode single (trained on the genome)"
            )
        return pyrodigal.GeneFinder(meta=True, metagenomic_bins=pyrodigal.MetagenomicBins(bins))
    total = sum(len(s) for s in seqs)
    if total < pyrodigal.MIN_SINGLE_GENOME:
        raise InputFormatError(
            f"sample {sample}: the genome has {total:,} bp; pyrodigal single mode needs at "
            f"least {pyrodigal.MIN_SINGLE_GENOME:,} bp to train ({pyrodigal.IDEAL_SINGLE_GENOME:,}"
            "+ recommended); set annotate_mode: meta in the sample sheet (pre-trained models "
            "for small genomes such as plasmids and phages)"
        )
    finder = pyrodigal.GeneFinder(meta=False)
    finder.train(*seqs, translation_table=code)
    return finder


def call_genes(
    contigs: Iterable[tuple[str, str]],
    mode: str = "single",
    genetic_code: int | None = None,
    sample: str = "",
) -> list[PredictedGene]:
    """Call genes on every contig of a genome (module docstring). `contigs` yields (name,
    sequence) in any case; `genetic_code` None means 11."""
    from tqdm import tqdm  # lazy: tqdm (~0.1 s) stays out of `dnalm cds` on annotated genomes

    code = DEFAULT_CODE if genetic_code is None else int(genetic_code)
    named = [(name, seq.upper()) for name, seq in contigs]
    if not named:
        raise InputFormatError(f"sample {sample}: no genome sequence to call genes on")
    finder = _finder(mode, code, [s for _, s in named], sample)
    out: list[PredictedGene] = []
    for name, seq in tqdm(
        named, desc=f"{sample}: pyrodigal {mode}", unit=" contigs", disable=progress_disabled()
    ):
        genes = finder.find_genes(seq)
        for i, gene in enumerate(genes, start=1):
            plus = gene.strand == 1
            cds = seq[gene.begin - 1 : gene.end]
            out.append(
                PredictedGene(
                    contig=name,
                    index=i,
                    start=gene.begin,
                    end=gene.end,
                    strand="+" if plus else "-",
                    partial5=bool(gene.partial_begin if plus else gene.partial_end),
                    partial3=bool(gene.partial_end if plus else gene.partial_begin),
                    start_type=gene.start_type,
                    score=round(float(gene.score), 2),
                    sequence=cds if plus else reverse_complement(cds),
                )
            )
    log.info(
        "sample %s: pyrodigal %s mode, genetic code %d: %d genes on %d contigs (%d bp)",
        sample,
        mode,
        code,
        len(out),
        len(named),
        sum(len(s) for _, s in named),
    )
    return out
