"""Small benchmark suites in each suite's exact on-disk layout, built at test time from the
shared genomes and tasks (../shared/data), never committed:

- a Genomic Benchmarks coordinates set (``metadata.yaml`` naming a reference genome URL,
  ``train/<class>.csv.gz`` and ``test/<class>.csv.gz`` with ``id,region,start,end,strand``),
  its windows cut from yeast chromosome IV on both strands; the reference is the chromosome
  renamed ``IV`` as in an Ensembl FASTA, with ``extra_processing: ENSEMBL_HUMAN_GENOME`` (so
  the regions are ``chrIV``, as in the human sets);
- an NT-downstream set (``<task>/train.parquet``, ``test.parquet``: sequence, name, label,
  task) and a GUE set (``<task>/train.csv``, ``dev.csv``, ``test.csv``: sequence,label) from
  the Oct4-vs-Mafk ChIP-seq peaks.

Each builder also returns the reference answer, computed here independently of dnalm (the
FASTA read and sliced by hand, reverse complement by a table of this file).
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pandas as pd

_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def revcomp(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


def read_fasta_by_hand(path: Path) -> dict[str, str]:
    """{first word of the header: sequence} of a (gzipped) FASTA."""
    opener = gzip.open if path.suffix == ".gz" else open
    records: dict[str, list[str]] = {}
    name = None
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                name = line[1:].split()[0]
                records[name] = []
            elif name is not None:
                records[name].append(line.strip())
    return {k: "".join(v) for k, v in records.items()}


def yeast_reference(shared: Path) -> tuple[bytes, str]:
    """(the gzipped FASTA of yeast chrIV renamed ``IV`` as Ensembl names it, its sequence)."""
    seq = read_fasta_by_hand(shared / "fasta_gff" / "sacCer3_chrIV.fa.gz")["chrIV"]
    lines = [">IV dna:chromosome chromosome:R64-1-1:IV:1:1531933:1 REF"]
    lines += [seq[i : i + 60] for i in range(0, len(seq), 60)]
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0), seq


def genomic_benchmarks_set(
    folder: Path,
    genome_url: str,
    chrom_seq: str,
    n: dict[str, int] | None = None,
    length: int = 200,
    seed: int = 0,
) -> dict[str, dict]:
    """Write a two-class coordinates set under `folder` (classes ``positive``: windows of
    the first half of the chromosome, ``negative``: of the second half) and return the
    expected items: ``<class>_<split>_<id>`` -> {sequence (upper case), label, split,
    strand}."""
    rng = random.Random(seed)
    n = n or {"train": 40, "test": 20}
    half = len(chrom_seq) // 2
    expected = {}
    for cls, lo in (("positive", 0), ("negative", half)):
        for split, count in n.items():
            rows = []
            for i in range(count):
                start = rng.randrange(lo, lo + half - length)
                end = start + length
                strand = "+" if i % 2 == 0 else "-"
                rows.append({"id": i, "region": "chrIV", "start": start, "end": end,
                             "strand": strand})  # fmt: skip
                seq = chrom_seq[start:end]
                seq = revcomp(seq) if strand == "-" else seq
                expected[f"{cls}_{split}_{i}"] = {
                    "sequence": seq.upper(),
                    "label": cls,
                    "split": split,
                    "strand": strand,
                }
            path = folder / split / f"{cls}.csv.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            csv = pd.DataFrame(rows).to_csv(index=False)
            path.write_bytes(gzip.compress(csv.encode(), mtime=0))
    meta = "classes:\n"
    for cls in ("negative", "positive"):
        meta += (
            f"  {cls}:\n    extra_processing: ENSEMBL_HUMAN_GENOME\n    type: fa.gz\n"
            f"    url: {genome_url}\n"
        )
    (folder / "metadata.yaml").write_text(meta + "version: 0\n")
    return expected


def chipseq_items(shared: Path, n_train: int = 60, n_dev: int = 20, n_test: int = 40):
    """Oct4 (label 1) and Mafk (label 0) peaks: {split: [(name, sequence, label)]}."""
    base = shared / "tasks" / "chipseq_oct4_vs_mafk"
    out: dict[str, list] = {"train": [], "dev": [], "test": []}
    for name, label in (("oct4", 1), ("mafk", 0)):
        train = list(read_fasta_by_hand(base / f"{name}_train.fa.gz").items())
        test = list(read_fasta_by_hand(base / f"{name}_test.fa").items())
        out["train"] += [(k, s, label) for k, s in train[:n_train]]
        out["dev"] += [(k, s, label) for k, s in train[n_train : n_train + n_dev]]
        out["test"] += [(k, s, label) for k, s in test[:n_test]]
    return out


def nt_downstream_set(folder: Path, items: dict[str, list], task: str = "chip") -> None:
    """``folder/train.parquet`` and ``test.parquet`` as the NT downstream Hub dataset
    lays them out (columns sequence, name, label, task)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        rows = [
            {"sequence": s, "name": k, "label": lab, "task": task} for k, s, lab in items[split]
        ]
        pd.DataFrame(rows).to_parquet(folder / f"{split}.parquet", index=False)


def gue_set(folder: Path, items: dict[str, list], dev: bool = True) -> None:
    """``folder/train.csv``, ``dev.csv`` (unless `dev` is false), ``test.csv`` with the
    header ``sequence,label`` as GUE writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev", "test") if dev else ("train", "test"):
        rows = [{"sequence": s, "label": lab} for _, s, lab in items[split]]
        pd.DataFrame(rows).to_csv(folder / f"{split}.csv", index=False)


def mutate(seq: str, share: float, seed: int = 0) -> str:
    """`seq` with round(share * len) positions, chosen at random, changed to another base."""
    rng = random.Random(seed)
    out = list(seq)
    for i in rng.sample(range(len(seq)), round(share * len(seq))):
        out[i] = rng.choice([b for b in "ACGT" if b != out[i].upper()])
    return "".join(out)


def leaky_corpus(
    path: Path,
    background: dict[str, str],
    planted: dict[str, str],
    reverse: set[str] = frozenset(),
) -> None:
    """A pretraining-corpus FASTA at `path`: the `background` records, then each `planted`
    sequence (a suite's test item, copied, or near-copied by the caller) inside 300 bp of
    flanking background, reverse complemented for the names in `reverse`."""
    flank = "".join(background.values())[:300]
    lines = [f">{k}\n{v}" for k, v in background.items()]
    for name, seq in planted.items():
        seq = revcomp(seq) if name in reverse else seq
        lines.append(f">planted_{name}\n{flank[:150]}{seq}{flank[150:]}")
    path.write_text("\n".join(lines) + "\n")
