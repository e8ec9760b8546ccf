"""The robustness panel on known scorers: an RC-symmetric k-mer scorer correlates exactly,
a tokenizer with a planted phase bug is flagged and a correct one is not, and a tiny model
goes through the model scorer."""

from __future__ import annotations

import gzip
import math
from collections import Counter

import numpy as np
import pytest

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation import robustness as rb

SETTINGS = {
    "n_windows": 40,
    "window_nt": 120,
    "shifts": [1, 2, 3, 4, 5],
    "indel_distances": [0, 10, 40],
    "phase_threshold": 0.02,
    "seed": 0,
}


def windows(n: int = 40, length: int = 128, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        gc = rng.uniform(0.3, 0.7)  # windows differ in composition: scores vary
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        out.append("".join(rng.choice(list("ACGT"), length, p=p)))
    return out


def canonical_kmer_scorer(k: int = 3):
    """log-frequency of each canonical k-mer (a k-mer and its reverse complement count as
    one), summed: symmetric under reverse complement by construction."""
    rng = np.random.default_rng(5)
    table: dict[str, float] = {}

    def canon(kmer):
        return min(kmer, reverse_complement(kmer))

    def score(seqs):
        out = []
        for s in seqs:
            total = 0.0
            for i in range(len(s) - k + 1):
                c = canon(s[i : i + k])
                if c not in table:
                    table[c] = float(np.log(rng.uniform(0.01, 0.1)))
                total += table[c]
            out.append(total)
        return np.array(out)

    return score


def codon_scorer(bug: bool):
    """A non-overlapping 3-mer (codon-tokenizer) unigram scorer. The trailing bases of a
    length that is not a multiple of 3 are scored base by base (correct), or, with the
    planted bug, as an unknown token with a tiny probability."""
    freqs = Counter()
    for w in windows(20, seed=9):
        freqs.update(w[i : i + 3] for i in range(0, len(w) - 2, 3))
    total = sum(freqs.values())

    def score(seqs):
        out = []
        for s in seqs:
            cut = len(s) - len(s) % 3
            v = sum(math.log((freqs[s[i : i + 3]] + 1) / (total + 64)) for i in range(0, cut, 3))
            tail = s[cut:]
            v += -20.0 if (bug and tail) else len(tail) * math.log(0.25)
            out.append(v)
        return np.array(out)

    return score


def test_an_rc_equivariant_scorer_correlates_exactly():
    df = rb.panel("kmer", canonical_kmer_scorer(), windows(), SETTINGS)
    rc = df[df["test"] == "rc"].iloc[0]
    assert rc["value"] == pytest.approx(1.0, abs=1e-12)
    assert rc["mean_abs_change"] == pytest.approx(0.0, abs=1e-12)
    shifts = df[df["test"] == "shift"]
    assert list(shifts["setting"]) == ["1", "2", "3", "4", "5"]
    assert (shifts["value"] > 0.5).all()
    assert (shifts["value"] < 1.0).all()
    assert list(df[df["test"] == "indel"]["setting"]) == ["0", "10", "40"]


def test_a_strand_biased_scorer_does_not_correlate():
    # the G+C of the forward strand's first half against the second half's: reversed by RC
    def score(seqs):
        return np.array([s[: len(s) // 2].count("G") - s[len(s) // 2 :].count("G") for s in seqs])

    df = rb.panel("biased", score, windows(), SETTINGS)
    assert df[df["test"] == "rc"].iloc[0]["value"] < 0.5


def test_a_planted_phase_bug_is_flagged_and_a_correct_tokenizer_is_not():
    bad = rb.panel("bug", codon_scorer(bug=True), windows(), SETTINGS, k=3)
    good = rb.panel("ok", codon_scorer(bug=False), windows(), SETTINGS, k=3)
    flag = {
        name: dict(zip(df["test"], df["flag"], strict=True))
        for name, df in (("b", bad), ("g", good))
    }
    assert flag["b"]["length_spread"] == 1
    assert flag["g"]["length_spread"] == 0
    assert flag["g"]["phase_spread"] == 0
    assert list(bad[bad["test"] == "phase"]["setting"]) == ["0", "1", "2"]
    # without k > 1 there are no phase rows
    assert "phase" not in set(rb.panel("k1", codon_scorer(False), windows(), SETTINGS)["test"])


def test_windows_are_seeded_and_a_short_split_is_named(tmp_path):
    path = tmp_path / "test.fa.gz"
    with gzip.open(path, "wt") as fh:
        fh.writelines(f">s{i}\n{w}\n" for i, w in enumerate(windows(30, length=300)))
    a = rb.choose_windows([path], 10, 120, 8, seed=1)
    assert a == rb.choose_windows([path], 10, 120, 8, seed=1)
    assert len(a) == 10
    assert {len(w) for w in a} == {128}
    with pytest.raises(InputFormatError, match=r"test\.fa\.gz: no held-out sequence is 408 nt"):
        rb.choose_windows([path], 10, 400, 8, seed=1)
    with pytest.raises(ConfigError, match="indel_distances: 60"):
        rb.check_settings({**SETTINGS, "indel_distances": [60]})


def test_a_tiny_model_goes_through_the_score_path(tmp_path):
    from dnalm.evaluation.inference import load_lm
    from tests.support.tiny_models import model_dir

    for objective, arch in (("gpt", "llama"), ("mlm", None)):
        folder = tmp_path / objective
        if arch:
            model_dir(folder, arch, objective, context=160)
        else:
            from dnalm.kinds.archs import default_arch

            model_dir(folder, default_arch("mlm"), "mlm", context=160)
        lm = load_lm(folder)
        settings = {**SETTINGS, "n_windows": 6, "indel_distances": [0]}
        df = rb.panel(objective, rb.lm_scorer(lm), windows(6), settings, n_boot=50)
        assert np.isfinite(df["value"][df["test"] != "rc"]).all()
        rc = df[df["test"] == "rc"].iloc[0]
        assert -1 <= rc["value"] <= 1
        assert rc["mean_abs_change"] > 0  # a random model is not RC-equivariant


def test_the_figure_names_the_flag(tmp_path):
    from dnalm.report.robustness_plots import plot_robustness
    from tests.test_report_figures import assert_figure

    df = rb.panel("bug", codon_scorer(bug=True), windows(), SETTINGS, k=3, n_boot=50)
    png = tmp_path / "r.png"
    texts, _ = assert_figure(plot_robustness(df, png, 0.02), png)
    assert "length mod FLAGGED" in texts
    assert "bug" in texts
