"""Generation metrics and the count-model sampler on known cases and real E. coli CDS."""

from __future__ import annotations

import numpy as np
import pytest

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError
from dnalm.core.io import read_fasta
from dnalm.generation import metrics as gm
from dnalm.generation.markov import MarkovSampler
from dnalm.generation.sequences import STOP_CODONS, codons, gc3_fraction, orf_check


@pytest.fixture(scope="module")
def ecoli_cds(shared_data):
    path = shared_data / "cds_fasta/ecoli_highly_expressed_genes.fasta"
    seqs = [s.upper() for _, s, _ in read_fasta(path)]
    assert len(seqs) > 50
    return seqs


def test_jsd_of_a_set_with_itself_is_zero_and_of_disjoint_spectra_one_bit(ecoli_cds):
    for k in gm.KS:
        p = gm.spectrum(ecoli_cds, k)
        assert p.sum() == pytest.approx(1.0, abs=1e-5)
        assert gm.jsd_bits(p, p) == pytest.approx(0.0, abs=1e-9)
    # A-only and C-only sets share no k-mer: JSD = 1 bit (ln 2 in nats)
    for k in (1, 3, 6):
        assert gm.jsd_bits(gm.spectrum(["A" * 50] * 3, k), gm.spectrum(["C" * 50], k)) == (
            pytest.approx(1.0)
        )
    # two halves of real CDS are close but not identical
    half = gm.jsd_bits(gm.spectrum(ecoli_cds[::2], 6), gm.spectrum(ecoli_cds[1::2], 6))
    assert 0 < half < 0.2


def test_pooled_spectrum_counts_no_kmer_across_two_sequences():
    # "AC" + "GT": joined without a separator there would be a CG 2-mer
    p = gm.spectrum(["AC", "GT"], 2)
    names = ["AC", "GT"]
    assert p[[4 * "ACGT".index(n[0]) + "ACGT".index(n[1]) for n in names]].sum() == 1.0


def test_memorisation_flags_an_exact_copy_not_a_shuffled_one(ecoli_cds):
    train, rest = ecoli_cds[:60], ecoli_cds[60:]
    index = gm.KmerIndex(train)
    copy = train[7]
    rng = np.random.default_rng(0)
    shuffled = "".join(rng.permutation(list(copy)))
    rc = reverse_complement(copy)
    cont = [index.containment(s) for s in (copy, rc, shuffled, rest[0])]
    assert cont[0] == 1.0
    assert cont[1] == 1.0
    assert cont[2] < 0.05
    assert list(gm.memorised(cont)) == [True, True, False, False]
    # a copy with one base changed in the middle loses the 31 k-mers over that base
    mid = len(copy) // 2
    mutant = copy[:mid] + ("A" if copy[mid] != "A" else "C") + copy[mid + 1 :]
    n_kmers = len(copy) - 30
    assert index.containment(mutant) == pytest.approx((n_kmers - 31) / n_kmers)
    assert np.isnan(index.containment("ACGT"))  # shorter than 31: no k-mer, not flagged
    assert not gm.memorised([np.nan])[0]


@pytest.mark.parametrize(
    ("seq", "starts", "expected"),
    [
        ("ATGAAATAA", ("ATG",), (True, "ok")),
        ("atgaaacccggg" + "tga", ("ATG",), (True, "ok")),
        ("ATGTAAAAATAA", ("ATG",), (False, "internal_stop")),
        ("ATGAAAA", ("ATG",), (False, "not_whole_codons")),
        ("ATGTAA", ("ATG",), (False, "short")),
        ("GTGAAATAG", ("ATG",), (False, "start")),
        ("GTGAAATAG", ("ATG", "GTG"), (True, "ok")),
        ("ATGAAACCC", ("ATG",), (False, "no_stop")),
    ],
)
def test_orf_validity_on_hand_made_cases(seq, starts, expected):
    assert orf_check(seq, starts) == expected


def test_real_cds_are_valid_orfs_and_gc3(ecoli_cds):
    ok = [orf_check(s, ("ATG", "GTG", "TTG"))[0] for s in ecoli_cds]
    assert np.mean(ok) > 0.95
    assert gc3_fraction("AAGAACAAT") == pytest.approx(2 / 3)


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = np.array([0.0, 1.0, -1.0]), np.array([1.0, 1.0, 0.5])
    sd1, sd2 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.0, 1.5])
    x = rng.normal(mu1, sd1, size=(40_000, 3))
    y = rng.normal(mu2, sd2, size=(40_000, 3))
    # diagonal covariances: |mu1 - mu2|^2 + sum (sd1 - sd2)^2
    expected = ((mu1 - mu2) ** 2).sum() + ((sd1 - sd2) ** 2).sum()
    assert gm.frechet_distance(x, y) == pytest.approx(expected, rel=0.03)
    assert gm.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    # more dimensions than samples: still finite and >= 0
    assert np.isfinite(gm.frechet_distance(x[:5, :2].repeat(3, 1), y[:5, :2].repeat(3, 1)))


def test_set_metrics_of_natural_halves_and_a_random_set(ecoli_cds):
    rng = np.random.default_rng(1)
    natural = ecoli_cds[:40]
    random = ["ATG" + "".join(rng.choice(list("ACGT"), len(s) - 3)) for s in ecoli_cds[40:80]]
    index = gm.KmerIndex(ecoli_cds[:60])
    near = gm.set_metrics(natural[:20], natural[20:], cds=True, index=index)
    far = gm.set_metrics(natural, random, cds=True, index=index)
    assert near["memorised"] == 1.0
    assert far["memorised"] == 0.0
    assert near["valid_orf"] > 0.9 > far["valid_orf"]
    for key in ("jsd_k6", "codon_kl", "gc3_ks"):
        assert near[key] < far[key], key
    assert gm.kl_bits(gm.codon_usage(natural), gm.codon_usage(natural)) == pytest.approx(0.0)


def test_markov_codon_trigram_emits_seen_codons_and_stops_in_frame(ecoli_cds):
    sampler = MarkovSampler(2, unit=3).fit(ecoli_cds[:60])
    seen = {c for s in ecoli_cds[:60] for c in codons(s)}
    rng = np.random.default_rng(0)
    reasons = []
    for s in ecoli_cds[60:70]:
        seq, why = sampler.sample(s[:30], 900, rng, stop_codon=True)
        assert seq.startswith(s[:30])
        assert len(seq) % 3 == 0
        assert set(codons(seq)) <= seen
        if why == "stop_codon":
            assert codons(seq)[-1] in STOP_CODONS
            assert not STOP_CODONS & set(codons(seq)[10:-1])
        reasons.append(why)
    assert "stop_codon" in reasons


def test_markov_nucleotide_sampler_follows_a_deterministic_chain():
    sampler = MarkovSampler(3).fit(["ACGT" * 30])
    seq, why = sampler.sample("ACG", 20, np.random.default_rng(0))
    assert seq == ("ACGT" * 10)[:23]
    assert why == "length_cap"
    # a context never seen backs off to a shorter one
    seq, _ = sampler.sample("AAA", 5, np.random.default_rng(0))
    assert len(seq) == 8
    with pytest.raises(ConfigError, match="markov_order"):
        MarkovSampler(20)
