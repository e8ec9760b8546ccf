"""Packed-window attention paths (dnalm.modeling.attention): dense sdpa, dense eager and
FlexAttention block masks give the same logits for every architecture built by
dnalm.modeling.models, each packed sequence's logits equal those of the sequence alone, and
flex attention is refused where torch cannot train it (CPU)."""

from __future__ import annotations

import warnings

import pytest
import torch

from dnalm.core.errors import ConfigError
from dnalm.kinds.archs import ARCHS
from dnalm.modeling import attention
from dnalm.modeling import models as dmodels
from tests.support.lm_corpus import BOS, EOS, MASK, PAD, VOCAB

SPECIAL = {"pad_id": PAD, "unk_id": 1, "bos_id": BOS, "eos_id": EOS, "sep_id": None,
           "mask_id": MASK}  # fmt: skip

#: every attention architecture (state-space models have no attention and refuse packing)
ARCHES = [(a.objective, a.name) for a in ARCHS if not a.no_packing and a.name != "modernbert"]

pytestmark = pytest.mark.skipif(not attention.flex_available(), reason="no flex_attention")


def _packed():
    """2 windows x 3 segments of unequal lengths (5/4/7 and 3/9/4 tokens), T = 16."""
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(5, len(VOCAB), (2, 16), generator=g)
    lengths = [(5, 4, 7), (3, 9, 4)]
    positions = torch.cat(
        [torch.arange(n) for n in lengths[0]] + [torch.arange(n) for n in lengths[1]]
    )
    return tokens, positions.view(2, 16), lengths


def _model(objective, impl, arch=None):
    arch = dmodels.resolve_arch(objective, "tiny", {"attn_implementation": impl}, arch)
    torch.manual_seed(0)  # the same weights for every implementation
    return dmodels.build_model(objective, arch, len(VOCAB), SPECIAL).eval()


def _logits(model, tokens, positions):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager flex warns that it is unfused
        return dmodels.forward_logits(model, tokens, positions)


@pytest.mark.parametrize(("objective", "arch"), ARCHES)
def test_dense_sdpa_dense_eager_and_flex_give_the_same_logits(objective, arch):
    tokens, positions, lengths = _packed()
    out = {impl: _logits(_model(objective, impl, arch), tokens, positions)
           for impl in attention.ATTN_IMPLEMENTATIONS}  # fmt: skip
    for impl in ("eager", "flex_attention"):
        torch.testing.assert_close(out[impl], out["sdpa"], atol=2e-5, rtol=1e-5, msg=impl)
    # and each segment sees only itself: packed logits == the segment run alone (with sdpa,
    # shown equal above; flex would recompile for every new length)
    model = _model(objective, "sdpa", arch)
    for row, segs in enumerate(lengths):
        start = 0
        for n in segs:
            alone = _logits(model, tokens[row : row + 1, start : start + n], torch.arange(n)[None])
            torch.testing.assert_close(
                out["flex_attention"][row, start : start + n], alone[0], atol=2e-5, rtol=1e-5
            )
            start += n


def test_modernbert_refuses_flex_attention():
    """Its local/global layer pair would take two block masks; the combination aborted the
    process on CPU in torch 2.13, so it stops at configuration time."""
    with pytest.raises(ConfigError, match="does not apply to modernbert"):
        dmodels.resolve_arch("mlm", "tiny", {"attn_implementation": "flex_attention"}, "modernbert")


def test_block_mask_matches_the_dense_mask():
    _, positions, _ = _packed()
    seg = dmodels.segment_ids(positions)
    for causal in (True, False):
        dense = dmodels.packed_attention_mask(positions, causal, "sdpa", torch.float32)
        block = dmodels.packed_attention_mask(positions, causal, "flex_attention", torch.float32)
        assert type(block).__name__ == "BlockMask"
        assert tuple(block.shape) == (2, 1, 16, 16)
        b, h, q, k = torch.meshgrid(*(torch.arange(n) for n in (2, 1, 16, 16)), indexing="ij")
        assert torch.equal(block.mask_mod(b, h, q, k), dense.expand(2, 1, 16, 16))
        assert seg.shape == (2, 16)


@pytest.mark.parametrize(("objective", "arch"), ARCHES)
def test_flex_training_on_cpu_is_refused_with_the_fix(objective, arch):
    model = _model(objective, "flex_attention", arch).train()
    tokens, positions, _ = _packed()
    with pytest.raises(ConfigError, match=r"cannot train on CPU.*sdpa"):
        dmodels.forward_logits(model, tokens, positions)
    # inference under no_grad, and frozen weights, are fine
    model.requires_grad_(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert dmodels.forward_logits(model, tokens, positions).shape == (2, 16, len(VOCAB))


def test_flex_checks():
    with pytest.raises(ConfigError, match="attention dropout"):
        attention.check_flex_training("flex_attention", "cuda", 0.1)
    attention.check_flex_training("flex_attention", "cuda", 0.0)
    attention.check_flex_training("sdpa", "cpu", 0.1)
    with pytest.raises(ConfigError, match="unknown 'flash'"):
        attention.check_attn_implementation("flash")


@pytest.mark.parametrize(
    ("compile_", "message"),
    [(False, "flex_attention cannot train on CPU"), (True, r"torch\.compile.*fails on CPU")],
)
def test_pretraining_with_flex_on_cpu_stops_with_the_fix(tmp_path, compile_, message):
    from dnalm.training.pretrain import pretrain
    from tests.support.lm_corpus import make_corpus

    corpus = make_corpus(tmp_path / "corpus")
    train = {"max_steps": 2, "micro_batch_size": 4, "eval_interval": 1, "eval_batches": 1,
             "threads": 1, "test_eval": False, "compile": compile_}  # fmt: skip
    with pytest.raises(ConfigError, match=message):
        pretrain(corpus, tmp_path / "m", "gpt", "tiny",
                 {"context": 40, "attn_implementation": "flex_attention"}, train)  # fmt: skip


def test_flex_inside_a_compiled_model_is_refused_on_cpu():
    """pretrain.train.compile + flex: inductor cannot lower flex attention inside a compiled
    model on CPU (torch 2.13), so the combination stops with the reason and the fix."""
    tokens, positions, _ = _packed()
    model = _model("gpt", "flex_attention")
    compiled = torch.compile(model)
    with torch.no_grad(), pytest.raises(ConfigError, match=r"torch\.compile.*fails on CPU"):
        dmodels.forward_logits(model, tokens, positions, module=compiled)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_packed_pretraining_defaults_to_flex_on_cuda_only(device):
    """The default attention of a model entry that sets none: flex attention on CUDA for
    packed windows where the architecture trains with it; sdpa on CPU, for padded windows,
    with attention dropout, and for modernbert (two dense masks)."""
    flex_on = "flex_attention" if device == "cuda" else "sdpa"
    for objective, arch in ARCHES:
        spec = dmodels.resolve_arch(objective, "tiny", {}, arch)
        assert dmodels.default_attention(spec, device, "packed") == flex_on, arch
        assert dmodels.default_attention(spec, device, "padded") == "sdpa", arch
    seed = dmodels.resolve_arch("gpt", "seed", {})  # dropout 0.2: flex would refuse it
    assert dmodels.default_attention(seed, device, "packed") == "sdpa"
    quiet = dmodels.resolve_arch("gpt", "seed", {"attention_dropout": 0.0})
    assert dmodels.default_attention(quiet, device, "packed") == flex_on
    modernbert = dmodels.resolve_arch("mlm", "tiny", {}, "modernbert")
    assert dmodels.default_attention(modernbert, device, "packed") == "sdpa"
