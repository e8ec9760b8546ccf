"""Batched sampling with the model's cache (dnalm.generation.sampling.sample_batch): for
every causal architecture, greedy batched output equals the one-at-a-time, uncached loop
token for token (past the context too); filtering applies per row; sampled frequencies
follow the model's distribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnalm.evaluation import inference as inf
from dnalm.generation import sampling as smp
from dnalm.kinds.archs import ARCHS
from tests.support.tiny_models import model_dir

CAUSAL = [a.name for a in ARCHS if a.objective == "gpt"]


def uncached_greedy(lm, ids, max_new_tokens):
    """The one-token-at-a-time loop without a cache: the whole (last `context` tokens of
    the) sequence through the model for every new token."""
    ids = list(ids)
    for _ in range(max_new_tokens):
        token = int(inf.token_logits(lm, ids[-lm.context :])[-1].argmax())
        if token == lm.eos_id:
            return lm.decode(ids), "eos"
        ids.append(token)
    return lm.decode(ids), "length_cap"


@pytest.mark.parametrize("arch", CAUSAL)
def test_greedy_batched_cached_equals_one_at_a_time(arch, tmp_path):
    lm = inf.LoadedModel.from_folder(model_dir(tmp_path, arch, context=16))
    lm.eos_id = None  # a random model may end at once; let every row run past the context
    prefixes = ["ACGTAC", "TTGACA", "GGGCCCAT", "A", "ACGTAC"]
    prompts = [smp.encode_prefix(lm, p) for p in prefixes]
    gen = torch.Generator().manual_seed(0)
    # 24 new tokens: past the context of 16, where the cache gives way to the last window
    got = smp.sample_batch(lm, prompts, 24, 1.0, 1, gen, batch_size=2)
    want = [uncached_greedy(lm, p, 24) for p in prompts]
    assert got == want
    assert len({seq for seq, _ in got}) > 2  # the rows are not one sequence repeated


def test_filtering_applies_to_each_row_of_a_batch():
    torch.manual_seed(3)
    logits = torch.randn(5, 9) * 2
    for top_k, top_p in ((3, None), (None, 0.6), (4, 0.5), (1, 0.99)):
        batch = smp.filter_logits(logits, top_k, top_p)
        for row in range(5):
            alone = smp.filter_logits(logits[row], top_k, top_p)
            assert torch.equal(batch[row], alone)
        kept = torch.isfinite(batch).sum(-1)
        assert (kept >= 1).all()
        if top_k:
            assert (kept <= top_k).all()


def test_batched_samples_follow_the_filtered_distribution(tmp_path):
    lm = inf.LoadedModel.from_folder(model_dir(tmp_path, "opt"))
    ids = smp.encode_prefix(lm, "ACGTTG")
    with torch.no_grad():
        logits = inf.token_logits(lm, ids)[-1] / 0.7
    n = 3000
    for top_k in (None, 3):
        probs = torch.softmax(smp.filter_logits(logits, top_k, None), -1).numpy()
        gen = torch.Generator().manual_seed(11)
        x = torch.tensor([ids] * n)
        first = smp._sample_tokens(lm, x, 1, 0.7, top_k, None, gen)[:, 0].numpy()
        freq = np.bincount(first, minlength=probs.size) / n
        assert np.abs(freq - probs).max() < 0.035  # ~4 standard errors at n=3000
        assert set(np.flatnonzero(freq)) <= set(np.flatnonzero(probs))
        if top_k:
            assert np.count_nonzero(freq) <= top_k


def test_generate_stops_and_reasons_per_row(tmp_path):
    lm = inf.LoadedModel.from_folder(model_dir(tmp_path, "llama", context=64))
    a = smp.generate(lm, "ATG", n=20, max_new_tokens=50, seed=4, stop_codon=True)
    assert a == smp.generate(lm, "ATG", n=20, max_new_tokens=50, seed=4, stop_codon=True)
    assert len(set(a)) > 1
    for s in a:
        assert s.startswith("ATG")
        assert len(s) <= 53
        if len(s) % 3 == 0 and s[-3:] in smp.STOP_CODONS:
            assert not any(s[i : i + 3] in smp.STOP_CODONS for i in range(3, len(s) - 3, 3))
