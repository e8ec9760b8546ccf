"""Gene completion: does a causal model know genes? (torch-free; the model's sampling is
:func:`dnalm.generation.genecomp_model.run_model`).

A held-out CDS (the test split of a sample) is cut into a prompt, its first 10/25/50% (the
``prompt_fractions``), cut in frame: rounded down to whole codons, and to whole tokens of the
model's tokenizer (:func:`prompt_nt`). A sampler continues the prompt
``n_samples_per_gene`` times (seeded), up to the true remaining length plus a margin of 20%
and one codon (:func:`budget_nt`, capped at ``max_new_nt``). Each continuation is read up to
its first in-frame stop codon of the sample's genetic code (``[transl_table=N]`` of the CDS
header, written by the CDS stage) and judged against the true remaining part of the gene:

* ``recovery``: % amino-acid recovery: the residues of the continuation's protein identical
  to the aligned residue of the true remaining protein, over the length of the true remaining
  protein (global alignment, Biopython's ``PairwiseAligner`` with BLOSUM62, gap open -10,
  extend -0.5: EMBOSS needle's defaults). A perfect copy scores 1; an empty continuation 0.
* ``stop_plausible``: the continuation ends in an in-frame stop codon and its protein length
  is within ±20% of the true remaining protein's (``LENGTH_TOLERANCE``). 20% because
  orthologous bacterial proteins mostly differ in length by less than that, while a sampler
  that stops at random (a stop codon is 3 of 64 codons) ends far outside it.
* ``frame_shift``: the continuation carries the gene in a shifted frame: the translation of
  its frame +1 or +2 (read through stop codons, ``*``) has a local alignment (Smith-Waterman,
  BLOSUM62, the same gap scores) with the true remaining protein that scores at least
  ``FRAME_SHIFT_SCORE`` (50; codon-trigram continuations against unrelated S. pyogenes
  proteins score a median 23, a 99th percentile 38 and at most 48 of 300 pairs, so 50 needs
  real similarity). A copy with one base deleted or inserted is frame-shifted; a copy in
  frame is not.
* ``kmer31_share``: the share of the continuation's 31-mers (either strand) found in the
  training CDS (:class:`dnalm.generation.metrics.KmerIndex`); ``memorised`` when at least
  95% are (NaN and not memorised when it is shorter than 31 nt).

Baselines, each a sampler beside the models: the Markov chain over bases (order
``generate.markov_order``) and the codon trigram of the generation stage
(:class:`dnalm.generation.markov.MarkovSampler`), both fitted to the training CDS; and
``nearest_gene``, which copies a training gene: the training CDS sharing the most 12-mers
with the prompt, on the diagonal (offset) most of them share, continued from the prompt's end
as it is (:class:`NearestGene`; the one with the longest common prefix when none shares a
12-mer).

One row per continuation (:data:`CONTINUATION_COLUMNS`, :func:`write_continuations`); the
summary (:func:`summary_table`) gives each sample, source and prompt fraction the mean of
every metric over genes (each gene the mean of its continuations) with a percentile bootstrap
interval over genes (:func:`dnalm.core.stats.bootstrap`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dnalm.core.alphabet import N_CODE, encode_sequences
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, read_fasta
from dnalm.core.stats import accuracy_stats, bootstrap
from dnalm.generation.markov import MarkovSampler
from dnalm.generation.metrics import MEMO_THRESHOLD, KmerIndex
from dnalm.generation.sequences import clean

log = logging.getLogger(__name__)

#: the stop of a continuation is plausible within this fraction of the true protein length
LENGTH_TOLERANCE = 0.2
#: local-alignment score (BLOSUM62) of a shifted frame that counts as a frame shift
FRAME_SHIFT_SCORE = 50.0
#: shortest held-out CDS taken (codons, stop included): the 10% prompt is >= 3 codons
MIN_GENE_CODONS = 30
#: k of the nearest-gene baseline's prompt matching
NEAREST_K = 12
BASELINES = ("markov", "codon_trigram", "nearest_gene")
METRICS = ("recovery", "stop_plausible", "frame_shift", "kmer31_share", "memorised")
CONTINUATION_COLUMNS = [
    "sample",
    "gene",
    "source",
    "prompt_fraction",
    "replicate",
    "gene_nt",
    "prompt_nt",
    "continuation_nt",
    "protein_aa",
    "true_protein_aa",
    "ends_in_stop",
    *METRICS,
    "continuation",
]
_TABLE = re.compile(r"\[transl_table=(\d+)\]")


@dataclass(frozen=True)
class Gene:
    """A held-out CDS: sample, id, sequence (upper case, N for other letters), genetic code."""

    sample: str
    id: str
    seq: str
    table: int


def read_genes(path: str | os.PathLike, sample: str) -> list[Gene]:
    """The CDS of one split FASTA with their genetic code (``[transl_table=N]`` in the
    header, as the CDS stage writes it); InputFormatError naming the file, line and record
    when a header lacks it."""
    out = []
    for header, seq, line in read_fasta(path):
        m = _TABLE.search(header)
        sid = header.split()[0] if header.split() else f"line{line}"
        if m is None:
            raise InputFormatError(
                f"{path}:{line}: CDS {sid!r} has no [transl_table=N] tag in its header, so "
                "its genetic code is unknown; gene completion reads the split FASTAs the CDS "
                "stage writes (results/splits/{sample}/), add the tag to a FASTA of your own"
            )
        out.append(Gene(sample, sid, clean(seq), int(m.group(1))))
    return out


def stop_codons(table: int) -> frozenset[str]:
    from Bio.Data import CodonTable  # lazy: Biopython stays out of the DAG build

    try:
        return frozenset(CodonTable.unambiguous_dna_by_id[table].stop_codons)
    except KeyError:
        raise ConfigError(f"genetic code {table} is not an NCBI translation table") from None


def whole_gene(g: Gene) -> bool:
    """A CDS gene completion can judge: whole codons, no N, at least MIN_GENE_CODONS codons,
    ending in a stop codon of its code and without one before."""
    s = g.seq
    if len(s) % 3 or "N" in s or len(s) < 3 * MIN_GENE_CODONS:
        return False
    stops = stop_codons(g.table)
    cods = [s[i : i + 3] for i in range(0, len(s), 3)]
    return cods[-1] in stops and not any(c in stops for c in cods[:-1])


def choose_genes(genes: Sequence[Gene], n: int, seed: int, where: str) -> list[Gene]:
    """A seeded sample of `n` whole held-out genes (:func:`whole_gene`), fewer with a
    warning when fewer qualify; InputFormatError naming `where` when none does."""
    ok = [g for g in genes if whole_gene(g)]
    if not ok:
        raise InputFormatError(
            f"{where}: none of the {len(genes)} held-out CDS is a whole gene of at least "
            f"{MIN_GENE_CODONS} codons ending in its only in-frame stop; gene completion needs "
            "one (check the sample's test split, or leave the sample out of "
            "gene_completion.samples)"
        )
    if len(ok) < n:
        log.warning("%s: only %d held-out CDS qualify (wanted %d)", where, len(ok), n)
    pick = np.random.default_rng(seed).permutation(len(ok))[: min(n, len(ok))]
    return [ok[i] for i in sorted(pick)]


def prompt_nt(gene_nt: int, fraction: float, unit: int = 1) -> int:
    """The prompt of a gene of `gene_nt` nt: `fraction` of it rounded down to whole codons
    and whole tokens of `unit` nt (lcm(3, unit)), at least one such step and leaving at least
    one codon to complete."""
    step = math.lcm(3, unit)
    n = int(fraction * gene_nt) // step * step
    return min(max(n, step), (gene_nt - 3) // step * step)


def budget_nt(remaining_nt: int, max_new_nt: int) -> int:
    """What a sampler may add after the prompt: the true remaining length plus 20% and one
    codon (so a stop at the plausible maximum fits), in whole codons, at most `max_new_nt`."""
    margin = 3 * math.ceil(LENGTH_TOLERANCE * remaining_nt / 3) + 3
    return max(3, min(remaining_nt + margin, max_new_nt) // 3 * 3)


def translate(seq: str, table: int) -> tuple[str, bool]:
    """(protein up to the first in-frame stop codon of `table`, whether there was one)."""
    from Bio.Seq import Seq  # lazy: Biopython stays out of the DAG build

    stops = stop_codons(table)
    s = seq.upper()
    for i in range(0, len(s) - 2, 3):
        if s[i : i + 3] in stops:
            return str(Seq(s[:i]).translate(table=table)), True
    return str(Seq(s[: len(s) - len(s) % 3]).translate(table=table)), False


def _read_through(seq: str, table: int) -> str:
    from Bio.Seq import Seq  # lazy: Biopython stays out of the DAG build

    s = seq.upper()
    return str(Seq(s[: len(s) - len(s) % 3]).translate(table=table))


class Judge:
    """The aligners of :func:`judge` (built once: Biopython loads BLOSUM62 from disk)."""

    def __init__(self):
        from Bio.Align import PairwiseAligner, substitution_matrices  # lazy: as above

        blosum = substitution_matrices.load("BLOSUM62")
        self.global_ = PairwiseAligner(
            mode="global", substitution_matrix=blosum, open_gap_score=-10, extend_gap_score=-0.5
        )
        self.local = PairwiseAligner(
            mode="local", substitution_matrix=blosum, open_gap_score=-10, extend_gap_score=-0.5
        )

    def identities(self, protein: str, truth: str) -> int:
        """Identical aligned residues of the best global alignment."""
        if not protein or not truth:
            return 0
        return int(self.global_.align(protein, truth)[0].counts().identities)

    def shifted_score(self, continuation: str, truth: str, table: int) -> float:
        """The best local-alignment score of the frame +1 and +2 translations."""
        if not truth:
            return 0.0
        scores = [
            self.local.score(p, truth)
            for p in (_read_through(continuation[f:], table) for f in (1, 2))
            if p
        ]
        return float(max(scores, default=0.0))


def judge(
    continuation: str,
    true_rest: str,
    table: int,
    index: KmerIndex | None,
    judge_: Judge,
) -> dict:
    """The metrics of one continuation (the nt after the prompt) against the gene's true
    remaining part (module docstring)."""
    truth, _ = translate(true_rest, table)
    protein, ends = translate(continuation, table)
    cut = continuation[: 3 * len(protein) + (3 if ends else 0)]
    share = index.containment(cut) if index is not None else float("nan")
    plausible = ends and abs(len(protein) - len(truth)) <= LENGTH_TOLERANCE * len(truth)
    return {
        "continuation_nt": len(cut),
        "protein_aa": len(protein),
        "true_protein_aa": len(truth),
        "ends_in_stop": int(ends),
        "recovery": judge_.identities(protein, truth) / len(truth) if truth else float("nan"),
        "stop_plausible": int(plausible),
        "frame_shift": int(judge_.shifted_score(cut, truth, table) >= FRAME_SHIFT_SCORE),
        "kmer31_share": share,
        "memorised": int(bool(np.nan_to_num(share, nan=0.0) >= MEMO_THRESHOLD)),
        "continuation": cut,
    }


# ------------------------------------------------------------------------------ samplers

#: a sampler: (prompts, budgets in nt, continuations per prompt, seed) -> per prompt, its
#: continuations (the nt after the prompt)
Completer = Callable[[Sequence[str], Sequence[int], int, int], list[list[str]]]


def _kmer_table(seqs: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, gene index, position) of every forward A/C/G/T k-mer of `seqs`, by code."""
    codes, genes, pos = [], [], []
    for g, s in enumerate(seqs):
        c, p = forward_kmers(s, k)
        codes.append(c)
        genes.append(np.full(len(c), g, np.int64))
        pos.append(p)
    if not codes:
        return (np.zeros(0, np.int64),) * 3
    c, g, p = np.concatenate(codes), np.concatenate(genes), np.concatenate(pos)
    order = np.argsort(c, kind="stable")
    return c[order], g[order], p[order]


def forward_kmers(seq: str, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(2-bit codes, start positions) of the forward k-mers of `seq` without N."""
    x, _ = encode_sequences([clean(seq)])
    c = x[0].astype(np.int64)
    n = len(c) - k + 1
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    code = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    for j in range(k):
        part = c[j : j + n]
        bad |= part == N_CODE
        code = code * 4 + np.minimum(part, 3)
    return code[~bad], np.arange(n)[~bad]


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings."""
    n = min(len(a), len(b))
    diff = np.flatnonzero(
        np.frombuffer(a[:n].encode(), np.uint8) != np.frombuffer(b[:n].encode(), np.uint8)
    )
    return int(diff[0]) if len(diff) else n


class NearestGene:
    """The "copy the nearest training gene" baseline (module docstring)."""

    def __init__(self, train: Sequence[str], k: int = NEAREST_K):
        self.train, self.k = list(train), k
        self.codes, self.gene, self.pos = _kmer_table(self.train, k)

    def source(self, prompt: str) -> tuple[int, int]:
        """(training gene, where its copy of the prompt's end is) for `prompt`."""
        q, qpos = forward_kmers(prompt, self.k)
        lo = np.searchsorted(self.codes, q, "left")
        hi = np.searchsorted(self.codes, q, "right")
        hits = [(self.gene[a:b], self.pos[a:b] - p) for a, b, p in zip(lo, hi, qpos, strict=True)]
        if hits and any(len(h[0]) for h in hits):
            genes = np.concatenate([h[0] for h in hits])
            offsets = np.concatenate([h[1] for h in hits])
            pairs, counts = np.unique(np.stack([genes, offsets], 1), axis=0, return_counts=True)
            g, off = pairs[int(np.argmax(counts))]
            start = len(prompt) + int(off)
            return int(g), max(0, round(start / 3) * 3)
        common = [_common_prefix(prompt, t) for t in self.train]
        return int(np.argmax(common)), len(prompt)

    def __call__(self, prompts, budgets, n, seed) -> list[list[str]]:
        out = []
        for prompt, budget in zip(prompts, budgets, strict=True):
            g, start = self.source(prompt)
            out.append([self.train[g][start : start + budget]])  # deterministic: one copy
        return out


def markov_completer(train: Sequence[str], order: int, unit: int) -> Completer:
    """The Markov (unit 1) or codon-trigram (unit 3, order 2) sampler of the generation
    stage, fitted to `train`, as a completer (ends at a standard stop codon or the budget)."""
    sampler = MarkovSampler(order, unit).fit(train)

    def complete(prompts, budgets, n, seed) -> list[list[str]]:
        rng = np.random.default_rng(seed)
        out = []
        for prompt, budget in zip(prompts, budgets, strict=True):
            reps = []
            for _ in range(n):
                seq, _stop = sampler.sample(prompt, budget, rng, stop_codon=True)
                reps.append(seq[len(prompt) :])
            out.append(reps)
        return out

    return complete


# ---------------------------------------------------------------------------- the job


def held_out_genes(tests: Mapping[str, str | os.PathLike], settings: Mapping) -> list[Gene]:
    """The chosen genes of every sample ({sample: its test split FASTA}), in sample order."""
    genes = []
    for sample, path in tests.items():
        genes += choose_genes(
            read_genes(path, sample), int(settings["n_genes"]), int(settings["seed"]), str(path)
        )
    return genes


def read_training(paths: Sequence[str | os.PathLike]) -> list[str]:
    return [clean(seq) for p in paths for _, seq, _ in read_fasta(p)]


def complete_genes(
    source: str,
    complete: Completer,
    genes: Sequence[Gene],
    train: Sequence[str],
    settings: Mapping,
    out_tsv: str | os.PathLike,
    *,
    unit: int = 1,
    index: KmerIndex | None = None,
) -> pd.DataFrame:
    """Prompt `complete` with every gene at every prompt fraction, judge each continuation
    and write one row per continuation to `out_tsv` (atomically). `settings`: the
    gene_completion section (checked by dnalm.plan)."""
    n, seed = int(settings["n_samples_per_gene"]), int(settings["seed"])
    index = index if index is not None else KmerIndex(train)
    judge_ = Judge()
    rows = []
    for fraction in settings["prompt_fractions"]:
        cuts = [prompt_nt(len(g.seq), float(fraction), unit) for g in genes]
        prompts = [g.seq[:c] for g, c in zip(genes, cuts, strict=True)]
        budgets = [
            budget_nt(len(g.seq) - c, int(settings["max_new_nt"]))
            for g, c in zip(genes, cuts, strict=True)
        ]
        found = complete(prompts, budgets, n, seed)
        for g, c, conts in zip(genes, cuts, found, strict=True):
            for r, cont in enumerate(conts):
                rows.append(
                    {
                        "sample": g.sample,
                        "gene": g.id,
                        "source": source,
                        "prompt_fraction": float(fraction),
                        "replicate": r,
                        "gene_nt": len(g.seq),
                        "prompt_nt": c,
                        **judge(cont, g.seq[c:], g.table, index, judge_),
                    }
                )
    df = pd.DataFrame(rows, columns=CONTINUATION_COLUMNS)
    write_continuations(df, out_tsv)
    for fraction, part in df.groupby("prompt_fraction"):
        log.info(
            "%s, prompt %.0f%%: recovery %.3f, plausible stop %.3f, frame shift %.3f, "
            "31-mer share %.3f (%d continuations)",
            source,
            100 * fraction,
            part["recovery"].mean(),
            part["stop_plausible"].mean(),
            part["frame_shift"].mean(),
            part["kmer31_share"].mean(),
            len(part),
        )
    return df


def baseline_completer(name: str, train: Sequence[str], markov_order: int) -> Completer:
    """The completer of baseline `name` (:data:`BASELINES`) fitted to `train`."""
    if name == "markov":
        return markov_completer(train, markov_order, 1)
    if name == "codon_trigram":
        return markov_completer(train, 2, 3)
    if name == "nearest_gene":
        return NearestGene(train)
    raise ConfigError(f"unknown gene-completion baseline {name!r}; one of {list(BASELINES)}")


def run_source(
    source: str,
    make: Callable[[list[str]], Completer],
    samples: Sequence[str],
    splits: Mapping[str, Sequence[str | os.PathLike]],
    settings: Mapping,
    out_tsv: str | os.PathLike,
    unit: int = 1,
) -> pd.DataFrame:
    """One job: the held-out genes of `samples` (``splits["test"]``, in sample order), the
    training CDS of all of them (``splits["train"]``: the baselines' counts, the nearest
    genes and the 31-mer index), the completer `make(train)` and its table."""
    genes = held_out_genes(dict(zip(samples, splits["test"], strict=True)), settings)
    train = read_training(splits["train"])
    log.info("%s: %d held-out genes, %d training CDS", source, len(genes), len(train))
    return complete_genes(source, make(train), genes, train, settings, out_tsv, unit=unit)


def write_continuations(df: pd.DataFrame, out_tsv: str | os.PathLike) -> None:
    with atomic_write(out_tsv) as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")


def read_continuations(path: str | os.PathLike) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t")
    missing = [c for c in CONTINUATION_COLUMNS if c not in df.columns]
    if missing:
        raise InputFormatError(
            f"{path}: not a gene completion table (missing columns {missing}); rerun the rule "
            "that wrote it"
        )
    return df


# --------------------------------------------------------------------------- summary

SUMMARY_COLUMNS = ["sample", "source", "kind", "prompt_fraction", "n_genes", "n_continuations"]


def mean_interval(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, ...]:
    """(mean, 95% low, 95% high) of per-gene values, a percentile bootstrap over genes
    (NaN values are left out)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return (math.nan, math.nan, math.nan)
    iv = bootstrap(accuracy_stats(v), "accuracy", n_boot=n_boot, seed=seed)
    return iv.estimate, iv.low, iv.high


def summary_table(
    tables: Mapping[str, str | os.PathLike],
    out_tsv: str | os.PathLike,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per sample (and ``all``: every gene of every sample), source and prompt
    fraction: every metric's mean over genes with its bootstrap interval (`tables`: source ->
    its continuations table)."""
    parts = [read_continuations(p) for p in tables.values()]
    df = pd.concat(parts, ignore_index=True)
    per_gene = (
        df.groupby(["sample", "source", "prompt_fraction", "gene"], sort=False)[list(METRICS)]
        .mean()
        .reset_index()
    )
    counts = df.groupby(["sample", "source", "prompt_fraction"], sort=False).size()
    samples = list(dict.fromkeys(per_gene["sample"]))
    scopes = [("all", per_gene)] + (
        [(s, per_gene[per_gene["sample"] == s]) for s in samples] if len(samples) > 1 else []
    )
    rows = []
    for scope, part in scopes:
        for (source, fraction), grp in part.groupby(["source", "prompt_fraction"], sort=False):
            n_cont = int(sum(counts.get((s, source, fraction), 0) for s in set(grp["sample"])))
            row = {
                "sample": scope,
                "source": source,
                "kind": source if source in BASELINES else "model",
                "prompt_fraction": fraction,
                "n_genes": len(grp),
                "n_continuations": n_cont,
            }
            for m in METRICS:
                est, lo, hi = mean_interval(grp[m].to_numpy(), n_boot, seed)
                row.update({m: est, f"{m}_ci95_low": lo, f"{m}_ci95_high": hi})
            rows.append(row)
    out = pd.DataFrame(rows)
    with atomic_write(out_tsv) as fh:
        out.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    return out
