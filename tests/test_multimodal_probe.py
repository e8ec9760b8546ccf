"""The three dnatext-stage models embed species fragments (DNA only) in the probe's format,
and their rows reach the probe table (regime dnatext)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from dnalm.evaluation.embed import load_embeddings
from dnalm.evaluation.probe import assemble_table, probe_embeddings, probe_kmer
from dnalm.multimodal.model import DNATextForMaskedLM, build_config, register
from dnalm.multimodal.probe_embed import MODELS, DnaSentenceTokenizer, embed_dnatext_folder
from dnalm.multimodal.tokenizer import DNATextTokenizer, train_wordpiece
from dnalm.tokenization.build import build_tokenizer

HIDDEN = 16
MAX_LEN = 24  # positions: the 60-nt fragments are cut, so truncation is exercised


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Untrained tiny models of the three kinds, saved as dnalm.multimodal.pipeline does."""
    register()
    rng = random.Random(0)
    dna = build_tokenizer(
        {"type": "bpe", "vocab_size": 64},
        ["".join(rng.choice("ACGT") for _ in range(300)) for _ in range(20)],
    )
    text = train_wordpiece(["dna repair protein", "ribosomal protein l2"] * 4, 100)
    tok = DNATextTokenizer(text, dna, MAX_LEN)
    arch = {"hidden_size": HIDDEN, "num_hidden_layers": 1, "num_attention_heads": 2}
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    models = {
        "dnatext": DNATextForMaskedLM(
            build_config(tok.dna_token_strings(), tok.offset, arch, MAX_LEN)
        ),
        "dna_basewise": DNATextForMaskedLM(build_config(tok.dna_token_strings(), 0, arch, MAX_LEN)),
        "dna_table": BertForMaskedLM(
            BertConfig(
                vocab_size=dna.vocab_size,
                hidden_size=HIDDEN,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=32,
                max_position_embeddings=MAX_LEN,
                pad_token_id=dna.pad_id,
            )
        ),
    }
    for name, model in models.items():
        if name == "dnatext":
            tok.save(root / name / "tokenizer")
        else:
            dna.save(root / name)
        model.save_pretrained(root / name, safe_serialization=True)
    return root, tok


def _table(n_per: int = 12) -> pd.DataFrame:
    rng = random.Random(1)
    rows = []
    for sp, alphabet in (("Aus", "AACGT"), ("Bus", "ACGGT")):
        for i in range(n_per):
            split = "test" if i % 3 == 0 else "train"
            seq = "".join(rng.choice(alphabet) for _ in range(60))
            rows.append((f"{sp}{i}", seq, split, sp))
    return pd.DataFrame(rows, columns=["id", "sequence", "split", "label"])


def test_dna_sentence_tokenizer_wraps_in_tags_and_keeps_the_end(folders):
    _, tok = folders
    hf = DnaSentenceTokenizer(tok)
    full = hf(["ACGTACGTAC" * 6])["input_ids"][0]
    assert full[:2] == [tok.cls_id, tok.open_id]
    assert full[-2:] == [tok.close_id, tok.sep_id]
    assert all(i >= tok.offset for i in full[2:-2])  # DNA tokens only, no text
    cut = hf(["ACGTACGTAC" * 6], truncation=True, max_length=8)["input_ids"][0]
    assert len(cut) == 8
    assert cut[:6] == full[:6]
    assert cut[-2:] == full[-2:]


@pytest.mark.parametrize("name", MODELS)
def test_each_model_embeds_fragments_to_n_by_hidden(folders, tmp_path, name):
    root, _ = folders
    table = _table()
    out = embed_dnatext_folder(root / name, table, tmp_path / f"{name}.npz", batch_size=5)
    emb = load_embeddings(out)
    assert emb.embeddings.shape == (len(table), HIDDEN)
    assert np.isfinite(emb.embeddings).all()
    assert list(emb.ids) == list(table["id"])
    assert emb.meta["regime"] == "dnatext"
    assert emb.meta["model"] == name
    assert emb.meta["n_truncated"] == len(table)  # 60 nt never fits 24 positions
    assert (emb.n_tokens <= MAX_LEN).all()
    # different fragments, different vectors; batching does not change a vector
    assert not np.allclose(emb.embeddings[0], emb.embeddings[1])
    alone = embed_dnatext_folder(root / name, table.iloc[:1], tmp_path / "one.npz")
    np.testing.assert_allclose(load_embeddings(alone).embeddings[0], emb.embeddings[0], atol=1e-5)


def test_probe_table_gets_the_dnatext_rows(folders, tmp_path):
    root, _ = folders
    table = _table()
    metrics = []
    for name in MODELS:
        npz = embed_dnatext_folder(root / name, table, tmp_path / f"{name}.npz")
        probe_embeddings(npz, tmp_path / f"m_{name}.json", cv_folds=2)
        metrics.append(tmp_path / f"m_{name}.json")
    probe_kmer(table, tmp_path / "kmer.json", k=3)
    df = assemble_table([*metrics, tmp_path / "kmer.json"], tmp_path / "probe_table.tsv")
    got = set(zip(df["model"], df["regime"], strict=True))
    assert {(m, "dnatext") for m in MODELS} <= got
    assert "kmer-baseline" in set(df["regime"])
    dt = df[df["regime"] == "dnatext"]
    assert dt["accuracy"].between(0, 1).all()
