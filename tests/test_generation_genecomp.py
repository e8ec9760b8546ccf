"""Gene completion on known cases: a copy of the training gene recovers everything and is
memorised, a random sampler recovers little, a frame shift is seen, the recovery of a hand
example, the prompt cut in frame, and one tiny model through the model completer."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from dnalm.core.errors import InputFormatError
from dnalm.generation import genecomp as gc
from dnalm.generation.metrics import KmerIndex

SETTINGS = {
    "prompt_fractions": [0.1, 0.25, 0.5],
    "n_genes": 10,
    "n_samples_per_gene": 3,
    "max_new_nt": 3000,
    "temperature": 1.0,
    "seed": 0,
}
SENSE = [
    a + b + c
    for a in "ACGT"
    for b in "ACGT"
    for c in "ACGT"
    if a + b + c not in {"TAA", "TAG", "TGA", "ATG"}
]


def random_gene(rng, codons: int) -> str:
    return "ATG" + "".join(rng.choice(SENSE, codons - 2)) + "TAA"


def genes_and_training(n: int = 6, seed: int = 1):
    rng = np.random.default_rng(seed)
    held = [gc.Gene("s", f"g{i}", random_gene(rng, 60 + 10 * i), 11) for i in range(n)]
    other = [random_gene(rng, 80) for _ in range(5)]
    return held, other


def test_copying_the_training_gene_recovers_everything_and_is_memorised(tmp_path):
    held, other = genes_and_training()
    train = other + [g.seq for g in held]  # the held-out genes leaked into training
    df = gc.complete_genes(
        "nearest_gene", gc.NearestGene(train), held, train, SETTINGS, tmp_path / "c.tsv"
    )
    assert len(df) == len(held) * 3  # one deterministic copy per gene and fraction
    assert (df["recovery"] == 1.0).all(), df["recovery"].tolist()
    assert (df["kmer31_share"] == 1.0).all()
    assert (df["memorised"] == 1).all()
    assert (df["stop_plausible"] == 1).all()
    assert (df["frame_shift"] == 0).all()
    back = gc.read_continuations(tmp_path / "c.tsv")
    assert back["recovery"].tolist() == df["recovery"].tolist()


def test_a_random_sampler_recovers_far_less_and_is_not_memorised(tmp_path):
    held, other = genes_and_training()
    train = other + [g.seq for g in held]
    rand = gc.markov_completer(train, order=0, unit=1)
    df = gc.complete_genes("markov", rand, held, train, SETTINGS, tmp_path / "m.tsv")
    assert len(df) == len(held) * 3 * 3
    assert df["recovery"].mean() < 0.25, df["recovery"].describe()
    assert df["memorised"].sum() == 0


def test_recovery_matches_a_hand_computed_alignment():
    judge = gc.Judge()
    # MKV against MKLV: M K - V, 3 identical of the 4 true residues
    assert judge.identities("MKV", "MKLV") == 3
    truth = "AAAAAGCTGGTTTAA"  # K K L V stop
    cont = "AAAAAGGTTTAA"  # K K V stop: one codon lost
    row = gc.judge(cont, truth, 11, None, judge)
    assert row["recovery"] == pytest.approx(3 / 4)
    assert row["ends_in_stop"] == 1
    assert row["protein_aa"] == 3
    assert row["true_protein_aa"] == 4
    assert row["stop_plausible"] == 0  # 3 of 4 residues: 25% short
    # a non-standard code: TGA is Trp in table 4, so the stop comes later
    prot, ends = gc.translate("TGGTGAAAATAA", 4)
    assert (prot, ends) == ("WWK", True)
    assert gc.translate("TGGTGAAAATAA", 11) == ("W", True)


def test_a_deleted_base_is_a_frame_shift_and_a_copy_is_not():
    rng = np.random.default_rng(3)
    gene = random_gene(rng, 120)
    rest = gene[60:]
    judge = gc.Judge()
    assert gc.judge(rest, rest, 11, None, judge)["frame_shift"] == 0
    shifted = rest[:30] + rest[31:]
    assert gc.judge(shifted, rest, 11, None, judge)["frame_shift"] == 1


def test_the_prompt_is_cut_in_frame_and_in_whole_tokens():
    assert gc.prompt_nt(300, 0.1) == 30
    assert gc.prompt_nt(301, 0.25) == 75
    assert gc.prompt_nt(300, 0.25, unit=6) == 72  # whole codons and whole 6-mers
    assert gc.prompt_nt(90, 0.01) == 3  # at least a codon
    assert gc.budget_nt(300, 10_000) == 363  # +20% and a codon
    assert gc.budget_nt(300, 100) == 99


def test_genetic_code_comes_from_the_header_and_a_missing_one_is_named(tmp_path):
    path = tmp_path / "test.fa.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(">a [gene=x] [transl_table=4]\nATGAAATAA\n>b [gene=y]\nATGTAA\n")
    with pytest.raises(InputFormatError, match=r"test.fa.gz:3: CDS 'b' has no \[transl_table"):
        gc.read_genes(path, "s")
    with gzip.open(path, "wt") as fh:
        fh.write(">a [gene=x] [transl_table=4]\nATGAAATAA\n")
    assert gc.read_genes(path, "s")[0].table == 4
    with pytest.raises(InputFormatError, match="none of the 1 held-out CDS"):
        gc.choose_genes(gc.read_genes(path, "s"), 3, 0, str(path))


def test_summary_gives_each_source_and_fraction_a_bootstrap_interval(tmp_path):
    held, other = genes_and_training()
    train = other + [g.seq for g in held]
    index = KmerIndex(train)
    gc.complete_genes(
        "nearest_gene", gc.NearestGene(train), held, train, SETTINGS, tmp_path / "n.tsv",
        index=index,
    )  # fmt: skip
    rand = gc.markov_completer(train, order=0, unit=1)
    gc.complete_genes("markov", rand, held, train, SETTINGS, tmp_path / "m.tsv", index=index)
    out = gc.summary_table(
        {"nearest_gene": tmp_path / "n.tsv", "markov": tmp_path / "m.tsv"}, tmp_path / "s.tsv"
    )
    assert len(out) == 6
    assert set(out["sample"]) == {"all"}
    near = out[out["source"] == "nearest_gene"]
    assert (near["recovery"] == 1.0).all()
    assert (near["recovery_ci95_low"] == 1.0).all()
    mark = out[out["source"] == "markov"]
    assert (mark["recovery_ci95_high"] < near["recovery_ci95_low"].min()).all()
    assert (mark["recovery_ci95_low"] <= mark["recovery"]).all()
    assert (mark["n_genes"] == len(held)).all()
    assert (mark["n_continuations"] == 18).all()
    assert pd.read_csv(tmp_path / "s.tsv", sep="\t").shape == out.shape


def test_a_tiny_model_completes_genes_seeded(tmp_path):
    from dnalm.evaluation.inference import load_lm
    from dnalm.generation.genecomp_model import model_completer
    from tests.support.tiny_models import model_dir

    lm = load_lm(model_dir(tmp_path / "m", "llama", context=64))
    held, other = genes_and_training(n=2)
    settings = {**SETTINGS, "prompt_fractions": [0.5], "n_samples_per_gene": 2}
    complete = model_completer(lm, 1, 1.0)
    a = gc.complete_genes("tiny", complete, held, other, settings, tmp_path / "a.tsv")
    b = gc.complete_genes("tiny", complete, held, other, settings, tmp_path / "b.tsv")
    assert a["continuation"].tolist() == b["continuation"].tolist()  # seeded
    assert len(a) == 4
    assert (a["recovery"] < 0.5).all()
    for (_, row), g in zip(a.iterrows(), [held[0], held[0], held[1], held[1]], strict=True):
        assert row["continuation_nt"] <= gc.budget_nt(len(g.seq) - row["prompt_nt"], 3000)


def test_the_figure_draws_every_source(tmp_path):
    from dnalm.report.genecomp_plots import plot_gene_completion
    from tests.test_report_figures import assert_figure

    held, other = genes_and_training()
    train = other + [g.seq for g in held]
    index = KmerIndex(train)
    tables = {}
    for name in gc.BASELINES:
        tables[name] = tmp_path / f"{name}.tsv"
        complete = gc.baseline_completer(name, train, 3)
        gc.complete_genes(name, complete, held, train, SETTINGS, tables[name], index=index)
    gc.summary_table(tables, tmp_path / "s.tsv")
    png = tmp_path / "fig.png"
    texts, _ = assert_figure(plot_gene_completion(tmp_path / "s.tsv", png), png)
    assert {"markov", "codon_trigram", "nearest_gene", "amino-acid recovery"} <= set(texts)
