"""Leakage-free splits: deterministic, identical sequences share a split, fractions hold."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from dnalm.core.errors import ConfigError, DnalmError
from dnalm.core.io import read_fasta, write_fasta
from dnalm.genome.splits import (
    SPLITS,
    check_fractions,
    find_leaks,
    gather_assignments,
    split_of,
    split_paths,
    split_sample,
)

FR = {"train": 0.8, "validation": 0.1, "test": 0.1}


def random_cds(rng: random.Random, n: int) -> list[str]:
    return [
        "ATG" + "".join(rng.choice("ACGT") for _ in range(rng.randrange(30, 300))) for _ in range(n)
    ]


def write_sample(path, seqs):
    with open(path, "w") as fh:
        write_fasta(fh, [(f"cds{i} desc", s) for i, s in enumerate(seqs)])


def test_rule_is_deterministic_and_case_insensitive():
    s = "ATGAAACCCGGGTTTTAA"
    assert split_of(s, 1, FR) == split_of(s.lower(), 1, FR)
    assert {split_of(s, seed, FR) for seed in range(200)} == set(SPLITS)


def test_fractions_are_respected():
    rng = random.Random(0)
    seqs = random_cds(rng, 5000)
    counts = pd.Series([split_of(s, 7, FR) for s in seqs]).value_counts(normalize=True)
    for split, frac in FR.items():
        assert abs(counts[split] - frac) < 0.025


@pytest.mark.parametrize(
    "bad",
    [{"train": 0.9, "test": 0.2}, {"train": 0.0, "validation": 0.5, "test": 0.5}, {"tran": 1.0}],
)
def test_bad_fractions(bad):
    with pytest.raises(ConfigError):
        check_fractions(bad)


def test_no_leakage_across_samples(tmp_path):
    """Two samples sharing 200 identical sequences (and duplicates within one sample): every
    copy lands in the same split, and no test sequence occurs in train."""
    rng = random.Random(1)
    shared = random_cds(rng, 200)
    a = random_cds(rng, 300) + shared + shared[:50]  # duplicates within sample a too
    b = random_cds(rng, 300) + [s.lower() for s in shared]
    tables = []
    for name, seqs in (("a", a), ("b", b)):
        write_sample(tmp_path / f"{name}.fa", seqs)
        out = split_paths(tmp_path / name)
        split_sample(name, tmp_path / f"{name}.fa", out, tmp_path / name / "assign.tsv", 3, FR)
        tables.append(tmp_path / name / "assign.tsv")
    table = gather_assignments(tables, tmp_path / "all.tsv", tmp_path / "summary.tsv")
    assert len(table) == len(a) + len(b)
    assert find_leaks(table).empty
    train = {s.upper() for _, s, _ in read_fasta(tmp_path / "a/train.fa.gz")} | {
        s.upper() for _, s, _ in read_fasta(tmp_path / "b/train.fa.gz")
    }
    test = {s.upper() for _, s, _ in read_fasta(tmp_path / "a/test.fa.gz")} | {
        s.upper() for _, s, _ in read_fasta(tmp_path / "b/test.fa.gz")
    }
    assert test
    assert train
    assert not (train & test)
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    assert summary["n_cds"].sum() == len(a) + len(b)


def test_inconsistent_tables_are_caught(tmp_path):
    seqs = random_cds(random.Random(2), 100)
    write_sample(tmp_path / "a.fa", seqs)
    write_sample(tmp_path / "b.fa", seqs)
    split_sample("a", tmp_path / "a.fa", split_paths(tmp_path / "a"), tmp_path / "a.tsv", 1, FR)
    split_sample("b", tmp_path / "b.fa", split_paths(tmp_path / "b"), tmp_path / "b.tsv", 2, FR)
    with pytest.raises(DnalmError, match="different seeds"):
        gather_assignments([tmp_path / "a.tsv", tmp_path / "b.tsv"], tmp_path / "o", tmp_path / "s")
    assert not (tmp_path / "o").exists()


def test_empty_sample_is_an_error(tmp_path):
    (tmp_path / "e.fa").write_text("")
    with pytest.raises(DnalmError, match=r"sample e: .* holds no CDS"):
        split_sample("e", tmp_path / "e.fa", split_paths(tmp_path / "e"), tmp_path / "e.tsv")
    assert not list((tmp_path).glob("e/*.fa.gz"))


def test_real_cds_no_leak(shared_data, tmp_path):
    fasta = shared_data / "cds_fasta/ecoli_highly_expressed_genes.fasta"
    table = split_sample("ecoli", fasta, split_paths(tmp_path), tmp_path / "a.tsv", 42, FR)
    assert len(table) == 94
    assert find_leaks(table).empty
    got = sum(1 for p in split_paths(tmp_path).values() for _ in read_fasta(p))
    assert got == 94
