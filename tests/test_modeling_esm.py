"""The esm architecture (EsmForMaskedLM, the Nucleotide Transformer v1 class) and its traps:
the NT-v1 preset has NT-v1's shape; absolute positions follow ESM's own pad_id + 1 numbering,
so the model sees the same positions with and without position ids; a 4-D packed mask does
not reach the embedding layer, a 2-D padding mask still does; token_dropout is off; rotary
positions keep packed segments apart too; fine-tuning finds its blocks."""

from __future__ import annotations

import pytest
import torch
from transformers import EsmConfig

from dnalm.core.config import FinetuneTrainConfig
from dnalm.core.errors import ConfigError
from dnalm.finetuning import finetune as ft
from dnalm.modeling import models as dm
from dnalm.modeling.archs import esm as esm_builder
from dnalm.modeling.task_model import FinetuneModel, transformer_blocks
from tests.support.lm_corpus import BOS, EOS, MASK, PAD, VOCAB

SPECIAL = {"pad_id": PAD, "bos_id": BOS, "eos_id": EOS, "mask_id": MASK}
ATOL = 1e-5


def _tiny(overrides=None, special=SPECIAL):
    torch.manual_seed(0)
    spec = dm.resolve_arch("mlm", "tiny", overrides or {}, "esm")
    return dm.build_model("mlm", spec, len(VOCAB), special).eval()


def test_nt_v1_preset_has_the_shape_of_nucleotide_transformer_500m_human_ref():
    spec = dm.resolve_arch("mlm", "nt_v1_500m", {}, "esm")
    # NT-v1 numbers its tokens from pad 1, so with its vocabulary the table has 1002 rows
    config = dm.build_config("mlm", spec, 4105, {"pad_id": 1, "mask_id": 2})
    assert isinstance(config, EsmConfig)
    got = (
        config.num_hidden_layers,
        config.num_attention_heads,
        config.hidden_size,
        config.intermediate_size,
        config.max_position_embeddings,
    )
    assert got == (24, 20, 1280, 5120, 1002)
    assert config.position_embedding_type == "absolute"
    assert not config.tie_word_embeddings
    assert (config.hidden_dropout_prob, config.attention_probs_dropout_prob) == (0.0, 0.0)
    assert config.emb_layer_norm_before is False
    assert config.token_dropout is False  # NT-v1 has it on; see modeling/archs/esm.py
    assert config.mask_token_id == 2
    assert dm.model_context(config) == 1000
    # a config as NT-v1 checkpoints ship it (no dnalm keys) gets the same context
    assert (
        dm.model_context(EsmConfig(vocab_size=4105, pad_token_id=1, max_position_embeddings=1002))
        == 1000
    )


def test_absolute_positions_start_after_the_padding_row():
    model = _tiny()
    assert model.config.max_position_embeddings == 512 + PAD + 1
    assert dm.model_context(model) == 512
    tokens = torch.randint(5, len(VOCAB), (1, 20))
    # ESM numbers an unpadded sequence pad + 1, pad + 2, ...: what forward_logits passes
    kwargs = esm_builder.forward_kwargs(model, torch.arange(20)[None], "sdpa", torch.float32)
    torch.testing.assert_close(kwargs["position_ids"], torch.arange(20)[None] + PAD + 1)
    with torch.no_grad():
        ours = dm.forward_logits(model, tokens, torch.arange(20)[None])
        plain = model(input_ids=tokens).logits
    torch.testing.assert_close(ours, plain, atol=ATOL, rtol=0)
    # a model whose pad id is not 0: still the same positions either way
    other = _tiny(special={**SPECIAL, "pad_id": 3})
    assert other.config.max_position_embeddings == 512 + 4
    with torch.no_grad():
        ours = dm.forward_logits(other, tokens, torch.arange(20)[None])
        plain = other(input_ids=tokens).logits
    torch.testing.assert_close(ours, plain, atol=ATOL, rtol=0)


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_windows_with_padding_and_rotary_positions(impl):
    for positions_kind in ("absolute", "rotary"):
        over = {"attn_implementation": impl, "position_embedding_type": positions_kind}
        model = _tiny(over)
        n1, n2, pad = 11, 7, 4
        tokens = torch.randint(5, len(VOCAB), (1, n1 + n2 + pad))
        tokens[0, n1 + n2 :] = PAD
        pos = torch.cat([torch.arange(n1), torch.arange(n2), torch.zeros(pad, dtype=torch.long)])
        with torch.no_grad():
            packed = dm.forward_logits(model, tokens, pos[None])[0]
            alone1 = dm.forward_logits(model, tokens[:, :n1], torch.arange(n1)[None])[0]
            seg2 = tokens[:, n1 : n1 + n2]
            alone2 = dm.forward_logits(model, seg2, torch.arange(n2)[None])[0]
            plain2 = model(input_ids=seg2).logits[0]
        torch.testing.assert_close(packed[:n1], alone1, atol=ATOL, rtol=0)
        torch.testing.assert_close(packed[n1 : n1 + n2], alone2, atol=ATOL, rtol=0)
        torch.testing.assert_close(alone2, plain2, atol=ATOL, rtol=0)
        if positions_kind == "rotary":
            assert not hasattr(model.esm.embeddings, "position_embeddings")
            assert model.config.max_position_embeddings == 512


def test_a_padding_mask_still_reaches_the_embeddings():
    # fine-tuning and embedding pass a 2-D padding mask and no position ids: right padding
    # changes nothing for the real tokens
    model = _tiny()
    tokens = torch.randint(5, len(VOCAB), (1, 12))
    padded = torch.cat([tokens, torch.full((1, 5), PAD)], dim=1)
    mask = torch.cat([torch.ones(1, 12), torch.zeros(1, 5)], dim=1).long()
    dm.forward_logits(model, tokens, torch.arange(12)[None])  # installs the embedding hook
    with torch.no_grad():
        a = model.esm(input_ids=tokens).last_hidden_state
        b = model.esm(input_ids=padded, attention_mask=mask).last_hidden_state[:, :12]
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_refused_and_bad_overrides():
    with pytest.raises(ConfigError, match="'bias' does not apply to esm: ESM has biases"):
        dm.resolve_arch("mlm", "tiny", {"bias": False}, "esm")
    with pytest.raises(ConfigError, match="'activation' does not apply to esm"):
        dm.resolve_arch("mlm", "tiny", {"activation": "relu"}, "esm")
    with pytest.raises(ConfigError, match="position_embedding_type must be one of absolute"):
        dm.resolve_arch("mlm", "tiny", {"position_embedding_type": "alibi"}, "esm")
    with pytest.raises(ConfigError, match="only applies to esm, not bert"):
        dm.resolve_arch("mlm", "tiny", {"position_embedding_type": "rotary"}, "bert")
    with pytest.raises(ConfigError, match="padding token"):
        dm.build_model("mlm", dm.resolve_arch("mlm", "tiny", {}, "esm"), 10, {"pad_id": None})


@pytest.mark.parametrize("regime", ["partial", "lora"])
def test_partial_freezing_and_lora_find_the_esm_modules(regime):
    model = _tiny()
    blocks = transformer_blocks(model.base_model)
    assert blocks is model.esm.encoder.layer
    cfg = FinetuneTrainConfig.from_dict({"regime": regime, "freeze_layers": 1})
    fm = FinetuneModel(model, "classification", 2, cfg)
    ft.apply_regime(fm, cfg)
    trainable = {n for n, p in fm.named_parameters() if p.requires_grad}
    if regime == "partial":
        assert not any(".encoder.layer.0." in n or "embeddings" in n for n in trainable)
        assert any(".encoder.layer.1." in n for n in trainable)
    else:
        lora = {n for n in trainable if "lora_" in n}
        assert any(".attention.self.query.lora_A" in n for n in lora)
        assert any(".attention.self.value.lora_A" in n for n in lora)
        assert not any(".key." in n for n in lora)
        assert all(n.startswith("head.") or "lora_" in n for n in trainable)
