"""Model presets, parameter counts, packed-window attention masks, masking, data order and
checkpoint state (dnalm.modeling.models, dnalm.training.lm_data, dnalm.training.checkpoint)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from dnalm.core.errors import ConfigError
from dnalm.modeling.models import (
    build_model,
    count_parameters,
    forward_logits,
    packed_attention_mask,
    resolve_arch,
)
from dnalm.training import checkpoint as ckpt
from dnalm.training.lm_data import (
    IGNORE_INDEX,
    BatchSchedule,
    Masker,
    causal_labels,
    epoch_permutation,
)
from tests.support.lm_corpus import BOS, EOS, MASK, PAD, VOCAB, save_tokenizer

SPECIAL = {
    "pad_id": PAD,
    "unk_id": 1,
    "bos_id": BOS,
    "eos_id": EOS,
    "sep_id": None,
    "mask_id": MASK,
}


def test_seed_preset_matches_the_dna_llm_seed_configuration():
    arch = resolve_arch("gpt", "seed")
    assert (arch["n_layer"], arch["n_head"], arch["d_model"], arch["context"]) == (4, 4, 384, 300)
    assert arch["dropout"] == 0.2
    assert arch["bias"] is False
    assert arch["tie_embeddings"]
    vocab = 69  # 64 codons + 5 specials
    model = build_model("gpt", arch, vocab, SPECIAL)
    d, layers = 384, 4
    # no linear biases; LayerNorm weight+bias (2 per block + final); OPT's 2 offset rows
    expected = layers * (4 * d * d + 2 * d * 4 * d) + (2 * layers + 1) * 2 * d
    expected += vocab * d + (300 + 2) * d
    counts = count_parameters(model)
    assert counts["total"] == expected
    assert 7.1e6 < counts["total"] < 7.3e6
    assert not any(
        name.endswith(".bias") and "layer_norm" not in name for name, _ in model.named_parameters()
    )
    assert model.lm_head.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()


def test_unknown_preset_key_and_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="unknown gpt preset"):
        resolve_arch("gpt", "huge")
    with pytest.raises(ConfigError, match="unknown model override 'layers'"):
        resolve_arch("gpt", "tiny", {"layers": 3})
    with pytest.raises(ConfigError, match="not divisible"):
        resolve_arch("mlm", "tiny", {"n_head": 3})
    with pytest.raises(ConfigError, match="unknown objective"):
        resolve_arch("t5", "tiny")


def _packed_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(5, 10, (2, 12), generator=g)
    positions = torch.tensor(
        [[0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2], [0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 0, 0]]
    )
    return tokens, positions


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_changing_one_cds_leaves_the_others_logits_unchanged(objective, impl):
    torch.manual_seed(0)
    model = build_model(
        objective,
        resolve_arch(objective, "tiny", {"attn_implementation": impl}),
        len(VOCAB),
        SPECIAL,
    ).eval()
    tokens, positions = _packed_batch()
    with torch.no_grad():
        ref = forward_logits(model, tokens, positions)
        changed = tokens.clone()
        changed[0, 5:9] = torch.tensor([5, 6, 7, 8])  # second CDS of window 0
        changed[0, 5:9] = torch.where(changed[0, 5:9] == tokens[0, 5:9], 9, changed[0, 5:9])
        out = forward_logits(model, changed, positions)
    assert torch.allclose(out[0, :5], ref[0, :5], atol=1e-6, rtol=0)
    assert torch.allclose(out[0, 9:], ref[0, 9:], atol=1e-6, rtol=0)
    assert not torch.allclose(out[0, 5:9], ref[0, 5:9])  # the changed CDS itself did change
    assert torch.allclose(out[1], ref[1], atol=1e-6, rtol=0)  # other windows untouched


def test_plain_opt_call_would_leak_across_cds_which_is_why_we_build_the_mask():
    torch.manual_seed(0)
    model = build_model("gpt", resolve_arch("gpt", "tiny"), len(VOCAB), SPECIAL).eval()
    tokens, positions = _packed_batch()
    changed = tokens.clone()
    changed[0, 0] = 5 if tokens[0, 0] != 5 else 6
    with torch.no_grad():
        a = model(input_ids=tokens, position_ids=positions).logits
        b = model(input_ids=changed, position_ids=positions).logits
    assert not torch.allclose(a[0, 5:], b[0, 5:])


def test_mask_is_causal_for_gpt_and_bidirectional_within_a_cds_for_mlm():
    positions = torch.tensor([[0, 1, 2, 0, 1]])
    causal = packed_attention_mask(positions, True, "sdpa", torch.float32)[0, 0]
    bidir = packed_attention_mask(positions, False, "sdpa", torch.float32)[0, 0]
    assert causal.dtype == torch.bool
    assert causal.shape == (5, 5)
    assert causal[2, 0]
    assert not causal[0, 2]
    assert not causal[3, 2]
    assert bidir[0, 2]
    assert bidir[2, 0]
    assert not bidir[3, 2]
    assert not bidir[2, 3]
    eager = packed_attention_mask(positions, True, "eager", torch.float32)[0, 0]
    assert eager[2, 0] == 0
    assert eager[0, 2] == torch.finfo(torch.float32).min


def test_saved_model_loads_with_auto_classes_and_tokenizer_offline(tmp_path):
    for objective, auto in (("gpt", AutoModelForCausalLM), ("mlm", AutoModelForMaskedLM)):
        torch.manual_seed(1)
        model = build_model(objective, resolve_arch(objective, "tiny"), len(VOCAB), SPECIAL).eval()
        folder = tmp_path / objective
        model.save_pretrained(folder)
        save_tokenizer(folder)
        loaded = auto.from_pretrained(folder).eval()
        tokens, positions = _packed_batch()
        with torch.no_grad():
            assert torch.allclose(
                forward_logits(model, tokens, positions),
                forward_logits(loaded, tokens, positions),
                atol=1e-6,
            )
        tok = AutoTokenizer.from_pretrained(folder)
        assert tok("ACGT")["input_ids"] == [BOS, 5, 6, 7, 8, EOS]
        assert len(tok) == model.config.vocab_size


def test_causal_labels_skip_sequence_starts_and_padding():
    tokens = torch.tensor([[2, 5, 6, 3, 2, 7, 0, 0]])
    positions = torch.tensor([[0, 1, 2, 3, 0, 1, 0, 0]])
    labels = causal_labels(tokens, positions, PAD)
    assert labels.tolist() == [[IGNORE_INDEX, 5, 6, 3, IGNORE_INDEX, 7, IGNORE_INDEX, IGNORE_INDEX]]


def _meta():
    return {"vocab_size": len(VOCAB), **SPECIAL}


def test_masker_rates_never_select_specials_and_is_a_function_of_seed_epoch_window():
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 10, (400, 64))
    tokens[:, 0], tokens[:, -1], tokens[:, 30:34] = BOS, EOS, PAD
    windows = np.arange(400)
    masker = Masker(_meta(), seed=3)
    inputs, labels = masker(tokens, windows, salt=0)
    sel = labels != IGNORE_INDEX
    maskable = tokens >= 5
    assert not sel[~maskable].any()
    rate = sel.sum() / maskable.sum()
    assert 0.14 < rate < 0.16
    assert np.array_equal(labels[sel], tokens[sel])
    masked = inputs[sel] == MASK
    kept = inputs[sel] == tokens[sel]
    assert 0.77 < masked.mean() < 0.83
    assert 0.09 < (kept.mean()) < 0.15  # 10% kept + random draws equal to the original
    assert set(np.unique(inputs[sel][~masked])) <= set(range(5, 10))
    assert np.array_equal(inputs[~sel], tokens[~sel])
    again = masker(tokens[::-1], windows[::-1], salt=0)
    assert np.array_equal(again[1][::-1], labels)  # per window, not per batch layout
    other_epoch = masker(tokens, windows, salt=1)[1]
    assert not np.array_equal(other_epoch, labels)


def test_span_masking_for_overlapping_kmers_masks_runs_of_k():
    tokens = np.full((200, 60), 7)
    masker = Masker(_meta(), seed=0, span=6)
    _, labels = masker(tokens, np.arange(200), salt=0)
    sel = labels != IGNORE_INDEX
    assert 0.12 < sel.mean() < 0.2
    for row in sel:
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, row.astype(int), 0])))[::2]
        inner = list(runs)
        assert all(r >= 6 for r in inner[:-1]) or not inner  # runs cut only at the end


def test_masker_requires_a_mask_token():
    with pytest.raises(ConfigError, match="no mask token"):
        Masker({**_meta(), "mask_id": None}, seed=0)


def test_batch_schedule_is_deterministic_and_layout_independent():
    a = BatchSchedule(100, micro_batch=4, grad_accum=2, world_size=1, seed=5)
    b = BatchSchedule(100, micro_batch=4, grad_accum=1, world_size=2, seed=5)
    for step in (0, 3, 11, 12, 30):
        assert np.array_equal(a.windows(step).ravel(), b.windows(step).ravel())
    epoch0 = np.concatenate([a.windows(s).ravel() for s in range(a.steps_per_epoch)])
    assert len(set(epoch0.tolist())) == len(epoch0) == 96
    assert np.array_equal(epoch_permutation(5, 1, 100), epoch_permutation(5, 1, 100))
    assert not np.array_equal(epoch_permutation(5, 1, 100), epoch_permutation(5, 2, 100))
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        BatchSchedule(7, 4, 1, 2, 0)


def test_checkpoint_state_loads_with_weights_only_and_restores_rng(tmp_path):
    torch.manual_seed(0)
    model = build_model("gpt", resolve_arch("gpt", "tiny"), len(VOCAB), SPECIAL)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.randint(5, 10, (2, 8))).logits.sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    rng = ckpt.capture_rng()
    expected = (torch.rand(3), np.random.random(2))
    state = {
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": [rng],
        "step": 7,
        "curves": [{"step": 1, "val_loss": None}],
    }
    folder = ckpt.save_checkpoint(tmp_path, 7, model, state, best=True)
    loaded = ckpt.load_state(folder)  # weights_only=True inside
    assert loaded["step"] == 7
    ckpt.restore_rng(loaded["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.random(2), expected[1])
    fresh = build_model("gpt", resolve_arch("gpt", "tiny"), len(VOCAB), SPECIAL)
    ckpt.load_weights(folder, fresh)
    for (n, p), (_, q) in zip(model.named_parameters(), fresh.named_parameters(), strict=True):
        assert torch.equal(p, q), n
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    opt2.load_state_dict(loaded["optimizer"])
    assert ckpt.last_checkpoint(tmp_path) == folder == ckpt.best_checkpoint(tmp_path)
    ckpt.save_checkpoint(tmp_path, 9, model, {**state, "step": 9}, best=False)
    assert ckpt.last_checkpoint(tmp_path).name == "step-00000009"
    assert ckpt.best_checkpoint(tmp_path) == folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [
        "step-00000007",
        "step-00000009",
    ]
