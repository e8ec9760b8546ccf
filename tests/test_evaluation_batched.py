"""Batched scoring (dnalm.evaluation.inference.score_many, dnalm score) and VEP
(dnalm.evaluation.vep.pair_scores / score_variants): many windows to a forward pass, padded,
equal to the one-window-at-a-time scores within 1e-5, for every causal architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnalm.evaluation import inference as inf
from dnalm.evaluation import vep
from dnalm.evaluation.variants import Variant
from dnalm.kinds.archs import ARCHS
from tests.support.tiny_models import model_dir

CAUSAL = [a.name for a in ARCHS if a.objective == "gpt"]


def one_at_a_time(lm, ids):
    """Per-token log-likelihoods, one window per forward pass (the sliding window of the
    module docstring: context-long windows, stride context/2)."""
    out = np.full(len(ids), np.nan)
    ctx, stride = lm.context, max(1, lm.context // 2)
    done, start = 1, 0
    while done < len(ids):
        window = ids[start : start + ctx]
        with torch.no_grad():
            logp = torch.log_softmax(inf.token_logits(lm, window), -1)
        for t in range(max(done, start + 1), start + len(window)):
            out[t] = float(logp[t - start - 1, ids[t]])
        done = start + len(window)
        start += stride
    return out


def forward_counter(model):
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    return calls


def random_seqs(n, rng, lo=3, hi=70):
    return ["".join(rng.choice(list("ACGT"), int(rng.integers(lo, hi)))) for _ in range(n)]


@pytest.mark.parametrize("arch", CAUSAL)
def test_batched_scores_equal_one_window_at_a_time(arch, tmp_path):
    lm = inf.LoadedModel.from_folder(model_dir(tmp_path, arch))  # context 24
    seqs = [lm.encode(s) for s in random_seqs(8, np.random.default_rng(0), hi=60)]
    calls = forward_counter(lm.model)
    got = inf.score_many(lm, seqs, batch_size=64)
    n_windows = len(calls)
    assert n_windows == 1  # every window of the 8 sequences in one forward pass
    for ids, ll in zip(seqs, got, strict=True):
        want = one_at_a_time(lm, ids)
        assert np.array_equal(np.isnan(ll), np.isnan(want))
        np.testing.assert_allclose(ll, want, atol=1e-5, rtol=0)
        assert np.isnan(ll[0])
        assert np.isfinite(ll[1:]).all()
    np.testing.assert_allclose(inf.score_ids(lm, seqs[0]), got[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("arch", "window"), [("opt", 50), ("mamba", 50), ("llama", 20), ("mamba", 20)]
)
def test_batched_vep_equals_one_variant_at_a_time(arch, window, tmp_path):
    lm = inf.LoadedModel.from_folder(model_dir(tmp_path, arch, context=32))
    rng = np.random.default_rng(1)
    contig = "".join(rng.choice(list("ACGT"), 300))
    variants = []
    for i, pos in enumerate(rng.choice(np.arange(1, 301), 10, replace=False)):
        ref = contig[pos - 1]
        alt = ref if i == 0 else str(rng.choice([b for b in "ACGT" if b != ref]))
        variants.append(Variant("c1", int(pos), f"v{i}", ref, alt, i + 1))
    calls = forward_counter(lm.model)
    got = vep.score_variants(lm, {"c1": contig}, variants, window, "clip", rc_average=True)
    if window == 50:
        # 9 changed SNVs x 2 strands x (REF, ALT) x 3 windows (51 tokens, context 32): 108
        # windows, one forward pass each one at a time
        assert len(calls) == 2
    else:
        # within the context: the tokens before the change once, then REF and ALT from
        # there, per group of pairs of one shape (36 forward passes one at a time)
        assert len(calls) <= 15
    assert got[0][0] == 0.0  # ALT = REF
    for v, (score, strands, (start, end)) in zip(variants, got, strict=True):
        ref = contig[start:end]
        alt = ref[: v.pos - 1 - start] + v.alt + ref[v.pos - start :]
        want = []
        for r, a, eos in ((ref, alt, end == len(contig)), (rc(ref), rc(alt), start == 0)):
            lr = one_at_a_time(lm, lm.encode(r, eos=eos))
            la = one_at_a_time(lm, lm.encode(a, eos=eos))
            want.append(float(np.nansum(la) - np.nansum(lr)))
        np.testing.assert_allclose(strands, want, atol=1e-5, rtol=0)
        assert abs(score - np.mean(want)) < 1e-5


@pytest.mark.parametrize("arch", ["opt", "mamba"])
def test_vep_runs_a_window_shared_by_several_alleles_once(arch, tmp_path):
    """Three ALT alleles at one site share their REF window: it runs through the model
    once, not once per allele (rows of the forward passes: the distinct REF windows and
    the ALT windows; attention models run the shared start once per REF window)."""
    lm = inf.LoadedModel.from_folder(model_dir(tmp_path, arch, context=32))
    rng = np.random.default_rng(2)
    contig = "".join(rng.choice(list("ACGT"), 300))
    sites = [100] * 3 + [150]
    alts = [b for b in "ACGT" if b != contig[99]] + [next(b for b in "ACGT" if b != contig[149])]
    variants = [
        Variant("c1", pos, f"v{i}", contig[pos - 1], alt, i + 1)
        for i, (pos, alt) in enumerate(zip(sites, alts, strict=True))
    ]
    rows = []
    lm.model.register_forward_pre_hook(
        lambda _m, _a, kw: rows.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    got = vep.score_variants(lm, {"c1": contig}, variants, 20)
    shared_start = 2 if arch == "opt" else 0  # the 2 REF windows' first tokens
    assert sum(rows) == shared_start + 2 + 4, rows
    for v, (score, _, (start, end)) in zip(variants, got, strict=True):
        ref = contig[start:end]
        alt = ref[: v.pos - 1 - start] + v.alt + ref[v.pos - start :]
        want = np.nansum(one_at_a_time(lm, lm.encode(alt, eos=False)))
        want -= np.nansum(one_at_a_time(lm, lm.encode(ref, eos=False)))
        assert abs(score - want) < 1e-5


def rc(seq):
    return seq[::-1].translate(str.maketrans("ACGT", "TGCA"))
