"""Variants for zero-shot variant-effect scoring (:mod:`dnalm.evaluation.vep`): VCF in and
out, the contigs they sit on, simulated coding SNVs and two count-model baseline scores.

**VCF reading** (:func:`read_vcf`; plain or gzip). ``##`` meta lines and the ``#CHROM``
line are kept for the output copy; every data line needs the eight fixed columns (CHROM POS
ID REF ALT QUAL FILTER INFO), POS a positive integer. Policy, per ALT allele:

* an SNV (REF one of A/C/G/T, ALT one of A/C/G/T, either case) is scored;
* a multi-allelic line (``ALT=C,G``) is split: each SNV allele is scored on its own row,
  and the VCF copy carries one score per allele (INFO ``Number=A``, ``.`` for an allele
  that was skipped);
* everything else is skipped and counted, with one warning per kind at the end:
  ``indel`` (REF or ALT longer than one base), ``symbolic`` (``<DEL>``, ``*``, breakends),
  ``no_alt`` (ALT ``.``), ``ambiguous`` (an N or other IUPAC code in REF or ALT).

Malformed lines (fewer than 8 columns, POS not a positive integer, empty REF, a data line
before ``#CHROM``) are an :class:`InputFormatError` naming the file and line. So are, once
the contigs are read (:func:`check_variants`), a CHROM that is not in the FASTA, a POS past
the contig's end and a REF that does not match the genome base (case-insensitive).

**Simulation** (:func:`simulate_coding_snvs`): every single-base substitution in the
codons of a set of coding sequences, the first (start) codon and the last (stop) codon
excluded, is classed with the CDS's genetic code (Biopython's unambiguous tables) as
``synonymous`` (same amino acid), ``missense`` (another amino acid) or ``nonsense`` (a stop
codon); codons with an ambiguous base are skipped. ``n`` of each class are drawn without
replacement with a seeded generator (all of a class when it has fewer). The CDS sequences
themselves are the contigs (CHROM = the CDS id, POS 1-based in the CDS), so the reading
frame is the contig's first base.

**Baselines** (fitted on training sequences, so they are scores a model must beat):
:class:`CodonUsage` (log frequency of the alternative codon minus that of the reference
codon, in-frame from the contig start, add-one smoothing over the 64 codons) and
:class:`NucleotideMarkov` (order-k nucleotide Markov chain, add-one smoothing: log
likelihood of the alternative minus the reference sequence over the k+1 positions whose
probability the substitution changes).
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from dnalm.core.alphabet import BASES
from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write, open_text, read_unique_fasta
from dnalm.core.metrics import auroc

log = logging.getLogger(__name__)

SKIP_KINDS = ("indel", "symbolic", "no_alt", "ambiguous")
CLASSES = ("synonymous", "missense", "nonsense")


@dataclass(frozen=True)
class Variant:
    """One SNV allele of a VCF line (`pos` 1-based; `allele` its index among the line's
    ALT alleles; `line` the VCF line number)."""

    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    line: int
    allele: int = 0


@dataclass
class Vcf:
    path: str
    header: list[str]  # the ## lines and the #CHROM line, without newline
    variants: list[Variant]
    n_alleles: dict[int, int]  # line number -> number of ALT alleles on it
    skipped: Counter


def _allele_kind(ref: str, alt: str) -> str:
    if alt == ".":
        return "no_alt"
    if alt == "*" or alt.startswith("<") or "[" in alt or "]" in alt:
        return "symbolic"
    if len(ref) != 1 or len(alt) != 1:
        return "indel"
    if ref not in BASES or alt not in BASES:
        return "ambiguous"
    return "snv"


def read_vcf(path: str | Path) -> Vcf:
    """The SNV alleles of a VCF (module docstring for the policy)."""
    header: list[str] = []
    variants: list[Variant] = []
    n_alleles: dict[int, int] = {}
    skipped: Counter = Counter()
    seen_chrom_line = False
    with open_text(path) as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.rstrip("\r\n")
            if line.startswith("##"):
                header.append(line)
                continue
            if line.startswith("#"):
                header.append(line)
                seen_chrom_line = True
                continue
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            if not seen_chrom_line:
                raise InputFormatError(f"{where}: data line before the #CHROM header line")
            cols = line.split("\t")
            if len(cols) < 8:
                raise InputFormatError(
                    f"{where}: {len(cols)} tab-separated columns, a VCF data line needs 8 "
                    "(CHROM POS ID REF ALT QUAL FILTER INFO)"
                )
            chrom, pos_text, vid, ref, alts = cols[:5]
            try:
                pos = int(pos_text)
            except ValueError:
                pos = 0
            if pos < 1:
                raise InputFormatError(f"{where}: POS {pos_text!r} is not a positive integer")
            if not ref or ref == ".":
                raise InputFormatError(f"{where}: REF is empty")
            ref = ref.upper()
            alleles = alts.split(",")
            n_alleles[lineno] = len(alleles)
            for i, alt in enumerate(alleles):
                kind = _allele_kind(ref, alt.upper())
                if kind != "snv":
                    skipped[kind] += 1
                    continue
                name = vid if vid != "." else f"{chrom}:{pos}:{ref}>{alt.upper()}"
                variants.append(Variant(chrom, pos, name, ref, alt.upper(), lineno, i))
    if not seen_chrom_line:
        raise InputFormatError(f"{path}: no #CHROM header line; is this a VCF?")
    for kind in SKIP_KINDS:
        if skipped[kind]:
            log.warning(
                "%s: skipped %d %s allele(s) (only SNVs are scored)", path, skipped[kind], kind
            )
    return Vcf(str(path), header, variants, n_alleles, skipped)


def load_contigs(
    fasta: str | Path, names: set[str] | None = None, seen: list[str] | None = None
) -> dict[str, str]:
    """Upper-case sequences of a FASTA (plain or gzip) by first header word; only `names`
    when given (the rest are streamed past). Every record's name is appended to `seen` when
    given. Two records of one name are refused (naming both lines)."""
    out = {}
    for name, seq, _line in read_unique_fasta(fasta):
        if seen is not None:
            seen.append(name)
        if names is None or name in names:
            out[name] = seq.upper()
    return out


def _chr_prefix_twin(chrom: str, names: Sequence[str]) -> str | None:
    """The FASTA's name for `chrom` with a "chr" prefix added or removed, if it has one."""
    have = set(names)
    low = chrom.lower()
    twins = [chrom[3:]] if low.startswith("chr") else [f"chr{chrom}", f"Chr{chrom}"]
    return next((t for t in twins if t and t in have), None)


def missing_contig_message(chrom: str, fasta: str | Path, names: Sequence[str]) -> str:
    """Why `chrom` is not found: the FASTA's contig names (the first ten) and, when adding
    or removing "chr" would match one, that fix."""
    if not names:
        return f"contig {chrom!r} is not in {fasta}, which has no records"
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    text = f"contig {chrom!r} is not in {fasta} (its contigs: {shown})"
    twin = _chr_prefix_twin(chrom, names)
    if twin is not None:
        text += (
            f"; the FASTA calls it {twin!r}: the VCF and the FASTA differ by the 'chr' prefix, "
            f"rename the VCF's CHROM (e.g. bcftools annotate --rename-chrs) or the FASTA's "
            f"headers so that they match"
        )
    return text


def check_variants(
    vcf: Vcf, contigs: dict[str, str], fasta: str | Path, names: Sequence[str] | None = None
) -> None:
    """InputFormatError naming the VCF line for an unknown contig (with the FASTA's contig
    names, `names`, default the keys of `contigs`), a position past its end or a REF that
    is not the genome's base."""
    for v in vcf.variants:
        where = f"{vcf.path}:{v.line}"
        seq = contigs.get(v.chrom)
        if seq is None:
            known = list(contigs) if names is None else list(names)
            raise InputFormatError(f"{where}: {missing_contig_message(v.chrom, fasta, known)}")
        if v.pos > len(seq):
            raise InputFormatError(
                f"{where}: POS {v.pos} is past the end of {v.chrom!r} ({len(seq)} bp)"
            )
        if seq[v.pos - 1] != v.ref:
            raise InputFormatError(
                f"{where}: REF {v.ref} does not match the genome: {v.chrom}:{v.pos} is "
                f"{seq[v.pos - 1]} in {fasta} (wrong genome build or 0-based positions?)"
            )


def write_vcf_copy(vcf: Vcf, out: str | Path, scores: dict[Variant, float], key: str) -> None:
    """The input VCF with INFO `key` (Number=A: one score per ALT allele, ``.`` where an
    allele was skipped; lines without any scored allele unchanged)."""
    by_line: dict[int, list[str]] = {}
    for v, s in scores.items():
        row = by_line.setdefault(v.line, ["."] * vcf.n_alleles[v.line])
        row[v.allele] = f"{s:.6g}"
    meta = (
        f'##INFO=<ID={key},Number=A,Type=Float,Description="dnalm zero-shot score: '
        'log-likelihood ratio alt vs ref (dnalm vep)">'
    )
    with open_text(vcf.path) as src, atomic_write(out) as fh:
        wrote_meta = False
        for lineno, raw in enumerate(src, start=1):
            line = raw.rstrip("\r\n")
            if line.startswith("#") and not line.startswith("##") and not wrote_meta:
                fh.write(meta + "\n")
                wrote_meta = True
            if lineno in by_line and not line.startswith("#"):
                cols = line.split("\t")
                field = f"{key}={','.join(by_line[lineno])}"
                cols[7] = field if cols[7] in ("", ".") else f"{cols[7]};{field}"
                line = "\t".join(cols)
            fh.write(line + "\n")


# --------------------------------------------------------------------------- simulation


@dataclass(frozen=True)
class CodingSnv:
    contig: str
    pos: int  # 1-based in the CDS
    ref: str
    alt: str
    klass: str
    ref_codon: str
    alt_codon: str
    ref_aa: str
    alt_aa: str

    @property
    def id(self) -> str:
        return f"{self.contig}:{self.pos}:{self.ref}>{self.alt}"


@cache
def codon_table(code: int) -> dict[str, str]:
    """codon -> amino acid (``*`` for a stop) of an NCBI genetic code."""
    # lazy: Biopython (~0.2 s) loads only when variants are simulated
    from Bio.Data import CodonTable

    table = CodonTable.unambiguous_dna_by_id[int(code)]
    return {**table.forward_table, **dict.fromkeys(table.stop_codons, "*")}


def classify(ref_codon: str, alt_codon: str, code: int) -> tuple[str, str, str] | None:
    """(class, ref amino acid, alt amino acid) of a codon change, ``*`` for a stop; None
    when the reference codon is a stop or either codon has an ambiguous base."""
    aa = codon_table(code)
    if ref_codon not in aa or alt_codon not in aa or aa[ref_codon] == "*":
        return None
    a, b = aa[ref_codon], aa[alt_codon]
    return ("nonsense" if b == "*" else "synonymous" if a == b else "missense"), a, b


def simulate_coding_snvs(cds: list[tuple[str, str, int]], n: int, seed: int) -> list[CodingSnv]:
    """`n` SNVs of each class (module docstring) from (id, sequence, genetic code)
    records, sorted by contig order then position."""
    pools: dict[str, list[tuple[int, int, int]]] = {c: [] for c in CLASSES}
    for ci, (_name, seq, code) in enumerate(cds):
        for c0 in range(3, len(seq) - 3 - len(seq) % 3, 3):
            ref_codon = seq[c0 : c0 + 3]
            for off in range(3):
                for alt in BASES:
                    if alt == ref_codon[off]:
                        continue
                    alt_codon = ref_codon[:off] + alt + ref_codon[off + 1 :]
                    got = classify(ref_codon, alt_codon, code)
                    if got is not None:
                        pools[got[0]].append((ci, c0 + off, BASES.index(alt)))
    rng = np.random.default_rng(seed)
    out = []
    for klass in CLASSES:
        pool = pools[klass]
        if len(pool) < n:
            log.warning("only %d %s SNVs possible (asked for %d): taking all", len(pool), klass, n)
        pick = rng.choice(len(pool), size=min(n, len(pool)), replace=False) if pool else []
        for j in pick:
            ci, p0, a = pool[int(j)]
            name, seq, code = cds[ci]
            c0 = p0 - p0 % 3
            ref_codon = seq[c0 : c0 + 3]
            alt_codon = ref_codon[: p0 - c0] + BASES[a] + ref_codon[p0 - c0 + 1 :]
            k, ra, aa = classify(ref_codon, alt_codon, code)
            out.append(CodingSnv(name, p0 + 1, seq[p0], BASES[a], k, ref_codon, alt_codon, ra, aa))
    order = {name: i for i, (name, _s, _c) in enumerate(cds)}
    return sorted(out, key=lambda s: (order[s.contig], s.pos, s.alt))


SIM_COLUMNS = ("id", "class", "chrom", "pos", "ref", "alt", "ref_codon", "alt_codon",
               "ref_aa", "alt_aa")  # fmt: skip


def write_simulation(snvs: list[CodingSnv], vcf_out: str | Path, tsv_out: str | Path,
                     extra: dict[str, list[float]] | None = None) -> None:  # fmt: skip
    """The simulated SNVs as a VCF (INFO CLASS=...) and a table (SIM_COLUMNS plus the
    `extra` score columns, one value per SNV)."""
    extra = extra or {}
    contigs = list(dict.fromkeys(s.contig for s in snvs))
    with atomic_write(vcf_out) as fh:
        fh.write("##fileformat=VCFv4.2\n##source=dnalm vep simulation\n")
        fh.write('##INFO=<ID=CLASS,Number=1,Type=String,Description="simulated class">\n')
        for c in contigs:
            fh.write(f"##contig=<ID={c}>\n")
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for s in snvs:
            fh.write(f"{s.contig}\t{s.pos}\t{s.id}\t{s.ref}\t{s.alt}\t.\t.\tCLASS={s.klass}\n")
    with atomic_write(tsv_out) as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow([*SIM_COLUMNS, *extra])
        for i, s in enumerate(snvs):
            row = [s.id, s.klass, s.contig, s.pos, s.ref, s.alt, s.ref_codon, s.alt_codon,
                   s.ref_aa, s.alt_aa]  # fmt: skip
            w.writerow(row + [f"{extra[k][i]:.6f}" for k in extra])


# --------------------------------------------------------------------------- baselines


class CodonUsage:
    """Codon-usage log-ratio (module docstring)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def fit(self, seqs) -> CodonUsage:
        for seq in seqs:
            for i in range(0, len(seq) - 2, 3):
                self.counts[seq[i : i + 3]] += 1
        return self

    def logf(self, codon: str) -> float:
        total = sum(self.counts[a + b + c] for a in BASES for b in BASES for c in BASES)
        return math.log((self.counts[codon] + 1) / (total + 64))

    def score(self, seq: str, pos0: int, alt: str) -> float:
        c0 = pos0 - pos0 % 3
        ref = seq[c0 : c0 + 3]
        new = ref[: pos0 - c0] + alt + ref[pos0 - c0 + 1 :]
        return self.logf(new) - self.logf(ref)


class NucleotideMarkov:
    """Order-k nucleotide Markov chain log-likelihood ratio (module docstring)."""

    def __init__(self, k: int = 5) -> None:
        self.k = int(k)
        self.counts: Counter = Counter()  # (k+1)-mer counts
        self.context: Counter = Counter()  # k-mer counts as contexts

    def fit(self, seqs) -> NucleotideMarkov:
        k = self.k
        for seq in seqs:
            for i in range(k, len(seq)):
                word = seq[i - k : i + 1]
                if set(word) <= set(BASES):
                    self.counts[word] += 1
                    self.context[word[:-1]] += 1
        return self

    def _ll(self, seq: str, lo: int, hi: int) -> float:
        k, total = self.k, 0.0
        for i in range(max(lo, k), min(hi, len(seq))):
            word = seq[i - k : i + 1]
            total += math.log((self.counts[word] + 1) / (self.context[word[:-1]] + 4))
        return total

    def score(self, seq: str, pos0: int, alt: str) -> float:
        new = seq[:pos0] + alt + seq[pos0 + 1 :]
        hi = pos0 + self.k + 1
        return self._ll(new, pos0, hi) - self._ll(seq, pos0, hi)


# --------------------------------------------------------------------------- simulation check


def simulate_cds_variants(
    test_fasta: list[str | Path],
    train_fasta: list[str | Path],
    cds_table: str | Path,
    vcf_out: str | Path,
    tsv_out: str | Path,
    n_per_class: int,
    seed: int = 0,
    markov_order: int = 5,
) -> int:
    """Simulated synonymous / missense / nonsense SNVs in the held-out CDS of
    `test_fasta` (the CDS are the contigs; genetic code per CDS from the CDS stage's
    table, column ``genetic_code`` by ``cds_id``), with the two baseline scores fitted on
    `train_fasta` (table columns ``codon_usage`` and ``markov``). Returns the number of
    SNVs."""
    table = pd.read_csv(cds_table, sep="\t", dtype=str)
    missing = {"cds_id", "genetic_code"} - set(table.columns)
    if missing:
        raise InputFormatError(f"{cds_table}: no column(s) {', '.join(sorted(missing))}")
    codes = dict(zip(table["cds_id"], table["genetic_code"], strict=True))
    cds = []
    for path in test_fasta:
        for name, seq in load_contigs(path).items():
            code = codes.get(name)
            if code is None or code in ("", "nan"):
                raise InputFormatError(f"{path}: CDS {name!r} has no genetic_code in {cds_table}")
            cds.append((name, seq, int(float(code))))
    if not cds:
        raise InputFormatError(f"no CDS in {', '.join(map(str, test_fasta))}")
    snvs = simulate_coding_snvs(cds, n_per_class, seed)
    train = [s for path in train_fasta for s in load_contigs(path).values()]
    usage, markov = CodonUsage().fit(train), NucleotideMarkov(markov_order).fit(train)
    seqs = {name: seq for name, seq, _ in cds}
    extra = {
        "codon_usage": [usage.score(seqs[s.contig], s.pos - 1, s.alt) for s in snvs],
        "markov": [markov.score(seqs[s.contig], s.pos - 1, s.alt) for s in snvs],
    }
    write_simulation(snvs, vcf_out, tsv_out, extra)
    return len(snvs)


BASELINES = ("codon_usage", "markov")


def auroc_table(simulated: str | Path, scored: dict[str, str | Path]):
    """AUROC per scorer (each model of `scored`, name -> vep TSV, and the baselines) of
    nonsense vs synonymous and missense vs synonymous: how well a higher score marks the
    synonymous (harmless) SNV, i.e. the AUROC of -score for the damaging class. Columns
    scorer, kind (model | baseline), comparison, auroc, n_damaging, n_synonymous."""
    sim = pd.read_csv(simulated, sep="\t")
    scores = {b: ("baseline", sim.set_index("id")[b]) for b in BASELINES}
    for name, path in scored.items():
        got = pd.read_csv(path, sep="\t").set_index("id")["score"]
        missing = set(sim["id"]) - set(got.index)
        if missing:
            raise InputFormatError(f"{path}: {len(missing)} simulated SNVs not scored")
        scores[name] = ("model", got)
    rows = []
    for name, (kind, s) in scores.items():
        for damaging in ("nonsense", "missense"):
            pair = sim[sim["class"].isin([damaging, "synonymous"])]
            y = (pair["class"] == damaging).to_numpy()
            x = -s.loc[pair["id"]].to_numpy(dtype=float)
            auc = auroc(x, y)
            rows.append([name, kind, f"{damaging}_vs_synonymous", auc, int(y.sum()),
                         int((~y).sum())])  # fmt: skip
    cols = ["scorer", "kind", "comparison", "auroc", "n_damaging", "n_synonymous"]
    return pd.DataFrame(rows, columns=cols)
