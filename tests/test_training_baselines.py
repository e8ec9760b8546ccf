"""The count baselines every language model is compared with: codon usage, codon bigram and
codon trigram (genomics-lm's rows) and Markov-k, checked against hand-counted values on a
toy corpus of packed segments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dnalm.training.lm_eval import (
    CODON_ALPHA,
    MarkovBaseline,
    baseline_specs,
    labels_function,
)

PAD = 0
VOCAB = 5  # PAD + four "codons" 1..4: four outcomes (the pad token is never a target)
META = {"pad_id": PAD}
ALPHA = 0.01

# Three training segments, packed into two windows (position ids restart per segment):
#   A = 1 2 3   B = 1 2 4   C = 3 2 3
TRAIN_TOK = np.array([[1, 2, 3, 1, 2, 4, 0, 0], [3, 2, 3, 0, 0, 0, 0, 0]])
TRAIN_POS = np.array([[0, 1, 2, 0, 1, 2, 0, 0], [0, 1, 2, 0, 0, 0, 0, 0]])

# Hand counts (S = before the segment start):
#   unigram: 1:2  2:3  3:3  4:1  (total 9)
#   bigram:  S->1:2  S->3:1 | 1->2:2 | 2->3:2  2->4:1 | 3->2:1
#   trigram: (S,S)->1:2 (S,S)->3:1 | (S,1)->2:2 | (1,2)->3:1 (1,2)->4:1 | (S,3)->2:1 | (3,2)->3:1


def p(count: float, total: float) -> float:
    return (count + ALPHA) / (total + ALPHA * 4)


# Test: one window of two segments, 1 2 3 2 | 2 3. Causal targets are every token with a
# predecessor in its segment: 2, 3, 2 of the first and 3 of the second (whose context is
# (S, 2), never the 2 of the other segment).
TEST_TOK = np.array([[1, 2, 3, 2, 2, 3]])
TEST_POS = np.array([[0, 1, 2, 3, 0, 1]])
EXPECTED = {
    0: [p(3, 9), p(3, 9), p(3, 9), p(3, 9)],
    1: [p(2, 2), p(2, 3), p(1, 1), p(2, 3)],
    # (S,2) was never seen: the uniform 1/4; crossing the boundary would give (3,2)->3
    2: [p(2, 2), p(1, 2), p(0, 0), p(0, 0)],
}


@pytest.mark.parametrize("order", [0, 1, 2])
def test_codon_ngrams_equal_hand_counts(order):
    base = MarkovBaseline(order, VOCAB, ALPHA).fit(TRAIN_TOK, TRAIN_POS, PAD)
    labels = labels_function(META, "gpt", None, 0)
    res = base.evaluate(TEST_TOK, TEST_POS, labels, META, nt_per_tok=3.0)
    expected = -np.mean(np.log(EXPECTED[order]))
    assert res["n_targets"] == 4
    assert math.isclose(res["loss"], expected, rel_tol=1e-12)
    assert math.isclose(res["perplexity"], math.exp(expected), rel_tol=1e-12)
    # bits per nucleotide: nats -> bits over 3 nt per codon
    assert math.isclose(res["bits_per_nt"], expected / math.log(2) / 3, rel_tol=1e-12)


def test_trigram_context_does_not_cross_a_segment_boundary():
    """The last target's trigram context is (start, 2): p = 1/4. Had the context run on from
    the previous segment, it would be (3, 2) -> 3, seen once: p = 1.01 / 1.04."""
    base = MarkovBaseline(2, VOCAB, ALPHA).fit(TRAIN_TOK, TRAIN_POS, PAD)
    labels = labels_function(META, "gpt", None, 0)
    last = base.evaluate(TEST_TOK[:, 4:], TEST_POS[:, 4:], labels, META, 3.0)
    assert math.isclose(last["loss"], -math.log(0.25), rel_tol=1e-12)


def test_add_one_smoothing_is_the_default_and_alpha_must_be_positive():
    base = MarkovBaseline(1, VOCAB).fit(TRAIN_TOK, TRAIN_POS, PAD)
    labels = labels_function(META, "gpt", None, 0)
    res = base.evaluate(TEST_TOK[:, :2], TEST_POS[:, :2], labels, META, 3.0)
    assert math.isclose(res["loss"], -math.log((2 + 1) / (2 + 4)), rel_tol=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        MarkovBaseline(1, VOCAB, 0.0)


def test_baseline_rows_per_tokenizer():
    cfg = {"baseline_order": None, "baseline_alpha": None}
    codon = baseline_specs("codon", 69, 10**6, 5, cfg)
    assert codon == [
        (0, CODON_ALPHA, "codon_usage_unigram"),
        (1, CODON_ALPHA, "codon_bigram"),
        (2, CODON_ALPHA, "codon_trigram"),
    ]
    (order, alpha, name), *rest = baseline_specs("nucleotide", 10, 10**6, 5, cfg)
    assert not rest
    assert (alpha, name) == (1.0, f"markov_order{order}")
    assert order >= 1
    fixed = baseline_specs("codon", 69, 10**6, 5, {"baseline_order": 1, "baseline_alpha": 0.5})
    assert fixed == [(1, 0.5, "codon_bigram")]
