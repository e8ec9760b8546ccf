"""dnalm.multimodal: the DNA+text tokenizer, the BPE-to-base embedder and the model folder."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.multimodal.corpus import build_pairs, render, summarise
from dnalm.multimodal.embedding import BaseEncoder, DnaTokenEmbedder, base_map
from dnalm.multimodal.evaluate import fit_product_sentence, frequent_product_ranking, retrieval
from dnalm.multimodal.model import DNATextForMaskedLM, build_config, register
from dnalm.multimodal.tokenizer import DNATextTokenizer, train_wordpiece
from dnalm.tokenization.build import build_tokenizer

TEXTS = [
    "dna repair protein of the cell",
    "ribosomal protein l2 binds rna",
    "hypothetical protein of unknown function",
    "dna polymerase iii subunit alpha",
] * 4


@pytest.fixture(scope="module")
def tok() -> DNATextTokenizer:
    rng = random.Random(0)
    seqs = ["".join(rng.choice("ACGT") for _ in range(400)) for _ in range(40)]
    dna = build_tokenizer({"type": "bpe", "vocab_size": 96}, seqs)
    return DNATextTokenizer(train_wordpiece(TEXTS, 300), dna)


@pytest.mark.parametrize(
    "sentence",
    [
        "<dna>ACGTTGCAAC</dna> dna repair protein",
        "ribosomal protein l2 <dna>GGGTACCA</dna>",
        "<dna>ACGT</dna>",
        "dna polymerase <dna></dna> subunit alpha",
        "the cell <dna>ACGTNNAC</dna> binds rna <dna>TTTTGA</dna> protein",
    ],
)
def test_round_trip_and_offsets(tok, sentence):
    enc = tok.encode(sentence)
    ids, mod = enc["input_ids"], enc["modality_mask"]
    assert tok.decode(ids) == sentence
    assert ids[0] == tok.cls_id
    assert ids[-1] == tok.sep_id
    assert (enc["attention_mask"] == 1).all()
    assert len(mod) == len(ids)
    # DNA ids are exactly the shifted DNA tokenizer's ids of each span, in order
    spans = [s.split("</dna>")[0] for s in sentence.split("<dna>")[1:]]
    want = np.concatenate([tok.dna.encode(s).astype(np.int64) for s in spans] + [np.zeros(0, int)])
    assert np.array_equal(ids[mod == 1], want + tok.offset)
    assert (ids[mod == 0] < tok.offset).all()
    assert (ids == tok.open_id).sum() == (ids == tok.close_id).sum() == len(spans)


def test_empty_dna_gives_only_tags(tok):
    ids = tok.encode("<dna></dna>", add_special_tokens=False)["input_ids"]
    assert ids.tolist() == [tok.open_id, tok.close_id]


def test_unknown_character_inside_dna_names_the_position(tok):
    with pytest.raises(InputFormatError, match=r"'X' at position 15"):
        tok.encode("protein <dna>ACXG</dna>", name="s1")
    with pytest.raises(InputFormatError, match="never closed"):
        tok.encode("protein <dna>ACG")
    with pytest.raises(InputFormatError, match="without <dna>"):
        tok.encode("protein </dna>")
    # outside DNA any character is text
    assert tok.encode("protein X-1")["modality_mask"].sum() == 0


def test_batch_path_equals_single_and_save_load(tok, tmp_path):
    sents = ["<dna>ACGTAC</dna> protein", "dna repair", "<dna>GGA</dna><dna>TTA</dna>"]
    batch = tok.encode_batch(sents)
    for s, b in zip(sents, batch, strict=True):
        one = tok.encode(s)
        assert all(np.array_equal(one[k], b[k]) for k in one)
    again = DNATextTokenizer.load(tok.save(tmp_path / "tok"))
    assert again.offset == tok.offset
    assert again.vocab_size == tok.vocab_size
    assert np.array_equal(again.encode(sents[0])["input_ids"], batch[0]["input_ids"])


@pytest.mark.parametrize("trainable", [False, True])
def test_bpe_to_base_map_reproduces_each_token(tok, trainable):
    tokens = tok.dna_token_strings()
    emb = DnaTokenEmbedder(tokens, 16, max_bpe_len=max(map(len, tokens)), trainable_map=trainable)
    specials = set(tok.dna_special_ids())
    got = emb.map.token_bases()
    for i, t in enumerate(tokens):
        assert got[i] == ("" if i in specials else t)
    with pytest.raises(ConfigError, match="max_bpe_len"):
        base_map(tokens, 1)


@pytest.mark.parametrize("positions", ["alibi", "rotary"])
def test_base_encoder_is_translation_equivariant_not_order_blind(positions):
    torch.manual_seed(0)
    enc = BaseEncoder(16, 2, 2, positions).eval()
    x = torch.randn(1, 5, 16)
    pad = torch.randn(1, 3, 16)
    keep = torch.ones(1, 5, dtype=torch.bool)
    shifted_keep = torch.cat([torch.zeros(1, 3, dtype=torch.bool), keep], 1)
    with torch.no_grad():
        out = enc(x, keep)
        shifted = enc(torch.cat([pad, x], 1), shifted_keep)[:, 3:]
        flipped = enc(x.flip(1), keep).flip(1)
        order = [1, 0, 2, 3, 4]
        swapped = enc(x[:, order], keep)[:, order]
    assert torch.allclose(out, shifted, atol=1e-5)  # same bases, moved: same outputs
    assert not torch.allclose(out, swapped, atol=1e-3)  # another order: different
    # symmetric ALiBi sees |i - j| only, so reading the token backwards mirrors the output;
    # rotary sees the signed offset and tells the two directions apart
    assert torch.allclose(out, flipped, atol=1e-5) == (positions == "alibi")


def _model(tok, **arch):
    cfg = build_config(
        tok.dna_token_strings(),
        tok.offset,
        {"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1, **arch},
        64,
    )
    torch.manual_seed(0)
    return DNATextForMaskedLM(cfg).eval()


def test_saved_model_reloads_in_a_fresh_process(tok, tmp_path):
    register()
    model = _model(tok, base_positions="rotary", pooling="last", trainable_map=True)
    batch = tok.pad(tok.encode_batch(["<dna>ACGTAC</dna> protein", "dna repair <dna>GGA</dna>"]))
    batch = {k: torch.tensor(v) for k, v in batch.items()}
    with torch.no_grad():
        want = model(**batch).logits.numpy()
    model.save_pretrained(tmp_path / "m")
    np.savez(tmp_path / "batch.npz", **{k: v.numpy() for k, v in batch.items()})
    code = (
        "import sys, numpy as np, torch\n"
        "from transformers import AutoModelForMaskedLM\n"
        "from dnalm.modeling.loader import register_model_types\n"
        "register_model_types()\n"
        # the same thread count as here: the sums of a matmul split the same way
        "torch.set_num_threads(int(sys.argv[4]))\n"
        "m = AutoModelForMaskedLM.from_pretrained(sys.argv[1]).eval()\n"
        "b = {k: torch.tensor(v) for k, v in np.load(sys.argv[2]).items()}\n"
        "with torch.no_grad():\n"
        "    np.save(sys.argv[3], m(**b).logits.numpy())\n"
        "print(type(m).__name__)\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "m"),
            str(tmp_path / "batch.npz"),
            str(tmp_path / "got.npy"),
            str(torch.get_num_threads()),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "DNATextForMaskedLM" in out.stdout
    assert np.array_equal(np.load(tmp_path / "got.npy"), want)


def test_corpus_follows_splits_and_skips_textless_cds(tmp_path):
    table = tmp_path / "s.tsv"
    table.write_text(
        "sample\tcds_id\tgene\tproduct\tstatus\n"
        "s\ta\tdnaA\tchromosomal replication initiator\tkept\n"
        "s\tb\t\t\tkept\n"
        "s\tc\trpsL\t30S ribosomal protein S12\tkept\n"
        "s\td\tx\ty\tpseudo\n"
    )
    fastas = {}
    for split, recs in {"train": ["a", "b"], "validation": [], "test": ["c", "d"]}.items():
        p = tmp_path / f"{split}.fa"
        p.write_text("".join(f">{r} desc\nacgtacgt\n" for r in recs))
        fastas[split] = p
    pairs = build_pairs(["s"], [table], {"s": fastas}, {"s": "Escherichia coli"}, max_dna_nt=6)
    assert pairs[["cds_id", "split"]].values.tolist() == [["a", "train"], ["c", "test"]]
    assert (pairs["sequence"] == "ACGTAC").all()
    assert all("<dna>ACGTAC</dna>" in t and "Escherichia coli" in t for t in pairs["text"])
    assert summarise(pairs)["pairs"].sum() == 2
    assert "chromosomal replication initiator" in render(pairs.iloc[0].to_dict(), "A")


def test_frequent_product_baseline_ranks_by_training_count():
    ranked = frequent_product_ranking(["b", "a", "b", "c", "b", "a", "z"], ["a", "b", "c", "d"])
    assert ranked == ["b", "a", "c", "d"]  # d never in training: last (ties by name)


def test_retrieval_reports_the_frequent_product_baseline(tok):
    """Also: an empty product (no tokens, so a mean log-prob of 0 if it were scored) must
    not be a candidate, or it would win every query."""
    import pandas as pd

    rng = random.Random(1)

    def frame(products):
        seqs = ["".join(rng.choice("ACGT") for _ in range(30)) for _ in products]
        return pd.DataFrame({"product": products, "sequence": seqs})

    # training prior: "dna repair protein" most frequent, then "hypothetical protein"; CDS
    # without a product (the most frequent of all) are no candidates and no queries
    train = frame(
        [""] * 9
        + ["dna repair protein"] * 5
        + ["hypothetical protein"] * 3
        + ["ribosomal protein l2"]
    )
    test = frame(
        [""] * 4
        + ["hypothetical protein"] * 3
        + ["dna repair protein"] * 2
        + ["ribosomal protein l2"]
    )
    out = retrieval(_model(tok), tok, train, test, max_candidates=3, max_queries=6, max_len=64)
    assert out["retrieval_queries"] == 6
    assert out["retrieval_candidates"] == 3
    # the same ranking for every query: top-1 is right only for the 2 "dna repair" queries
    assert out["train_freq_top1_acc"] == pytest.approx(2 / 6)
    assert out["train_freq_top5_acc"] == 1.0
    assert out["chance_top1_acc"] == pytest.approx(1 / 3)
    assert 0 <= out["model_top1_acc"] <= out["model_top5_acc"] == 1.0
    assert 0 <= out["model_pmi_top1_acc"] <= out["model_pmi_top5_acc"] == 1.0


def test_retrieval_sentence_cuts_its_dna_to_fit_max_len(tok):
    seq = "ACGTTGCAACGGTACCATTGACGTAGCTAGCTAGGATCCA" * 3
    full = fit_product_sentence(tok, seq, "dna repair protein", 10_000)
    cut = fit_product_sentence(tok, seq, "dna repair protein", 24)
    assert len(full) > 24
    assert len(cut) == 24
    close = int(np.flatnonzero(cut == tok.close_id)[0])
    tail = len(cut) - close
    assert np.array_equal(cut[close:], full[-tail:])  # the product part is whole
    assert np.array_equal(cut[:close], full[:close])  # the DNA lost only its last tokens
    with pytest.raises(ConfigError, match=r"dnatext\.train\.max_len"):
        fit_product_sentence(tok, seq, "dna repair protein", 5)


@pytest.mark.parametrize(
    ("block", "ok"),
    [
        ({"enabled": True}, True),  # max_dna_nt and the rest from the schema defaults
        ({"enabled": True, "max_dna_nt": None}, True),  # null: whole CDS
        ({"enabled": True, "max_dna_nt": 120, "model": {"hidden_size": 32}}, True),
        ({"enabled": True, "max_dna_nt": 0}, False),
        ({"enabled": True, "model": {"pooling": "max"}}, False),
        ({"enabled": True, "train": {"stpes": 10}}, False),
    ],
)
def test_dnatext_schema_block(block, ok):
    from pathlib import Path

    from snakemake.utils import validate

    schema = Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"
    config = {"samples": "x", "dnatext": block}
    if ok:
        validate(config, str(schema))  # snakemake's validator, filling in the defaults
        assert config["dnatext"]["train"]["steps"] == 200
        assert config["dnatext"]["max_dna_nt"] == block.get("max_dna_nt", 480)
    else:
        with pytest.raises(Exception, match="dnatext"):
            validate(config, str(schema))


def test_train_mlm_runs_on_the_selected_device(tok):
    """The model and every batch of the DNA+text loop are on the device asked for by name
    (dnatext.device): "auto" (the CPU here), "cpu", and the meta device (no data: the first
    forward is where the batch is checked)."""
    from dnalm.core.device import select_device
    from dnalm.multimodal.train import Vocab, train_mlm

    rows = [e["input_ids"] for e in tok.encode_batch(TEXTS[:8])]
    cfg = {"steps": 2, "batch_size": 2, "max_len": 32}
    for device in ("auto", "cpu", "meta"):
        model, seen = _model(tok), []
        want = select_device(device).type

        def look(module, args, kwargs, seen=seen, model=model):
            seen.append((kwargs["input_ids"].device.type, next(model.parameters()).device.type))
            if kwargs["input_ids"].device.type == "meta":
                raise StopIteration  # meta tensors have no values: stop before the loss

        model.register_forward_pre_hook(look, with_kwargs=True)
        if device == "meta":
            with pytest.raises(StopIteration):
                train_mlm(model, rows, Vocab.of_dnatext(tok), cfg, device=device)
        else:
            train_mlm(model, rows, Vocab.of_dnatext(tok), cfg, device=device)
        assert seen, device
        assert set(seen) == {(want, want)}, (device, seen)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_dnatext_stage_device_is_checked_first(tmp_path):
    """dnatext.device: cuda on a machine without CUDA stops the stage before any work, with
    the key and the fix; the default is the CPU."""
    from dnalm.multimodal.pipeline import run, stage_device

    assert stage_device({}) == torch.device("cpu")
    assert stage_device({"device": "auto"}).type in {"cpu", "mps"}
    with pytest.raises(ConfigError, match=r"dnatext\.device: .*cuda.*set dnatext\.device: cpu"):
        run(tmp_path / "pairs.tsv", tmp_path / "tok", {"device": "cuda", "train": {}}, tmp_path)


def test_text_vocabulary_is_the_same_in_every_process():
    """The WordPiece vocabulary built from one corpus is identical across processes (whatever
    the hash seed): tokenizers' own trainer broke ties in hash order, so the ids, and every
    DNA+text number after them, changed from run to run."""
    code = (
        "import json, random, sys\n"
        "from dnalm.multimodal.tokenizer import train_wordpiece\n"
        "random.seed(0)\n"
        "words = 'gene protein kinase membrane transport subunit binding domain family "
        "dna rna polymerase alpha beta'.split()\n"
        "texts = [' '.join(random.choice(words) for _ in range(8)) for _ in range(300)]\n"
        "tok = train_wordpiece(texts, 300)\n"
        "print(json.dumps(sorted(tok.get_vocab().items())))\n"
    )
    outs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.add(proc.stdout.strip().splitlines()[-1])
    assert len(outs) == 1
    vocab = dict(json.loads(outs.pop()))
    assert [vocab[s] for s in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")] == [0, 1, 2, 3, 4]
    assert "kinase" in vocab
    assert "##k" in vocab
