"""Embeddings (dnalm.evaluation.embed) on tiny models that the tests build and save themselves: a
2-layer BERT and a 2-layer GPT-2 with a WordLevel nucleotide tokenizer, and a workflow-style
OPT folder with a dnalm tokenizer. Nothing is downloaded (HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
from transformers import (
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation.embed import (
    _pool,
    embed_table,
    load_embeddings,
    select_device,
    sidecar_path,
)
from dnalm.evaluation.embeddings import load_layer_embeddings

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "A", "C", "G", "T", "N"]


def _save_tokenizer(folder) -> None:
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    ).save_pretrained(str(folder))


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert")
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=1,
        pad_token_id=0,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertForMaskedLM(config).save_pretrained(str(folder))
    _save_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(2)
    config = GPT2Config(
        vocab_size=len(VOCAB), n_layer=2, n_head=2, n_embd=32, n_positions=64, pad_token_id=0
    )
    GPT2LMHeadModel(config).save_pretrained(str(folder))
    _save_tokenizer(folder)
    return folder


def _embed(*args, **kwargs):
    """embed_table pinned to the CPU (float32), so tolerances hold on a GPU machine too."""
    kwargs.setdefault("device", "cpu")
    return embed_table(*args, **kwargs)


def _table(seqs, splits=None, labels=None) -> pd.DataFrame:
    n = len(seqs)
    return pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "sequence": seqs,
            "split": splits or ["test"] * n,
            "label": labels or [f"sp{i % 2}" for i in range(n)],
        }
    )


SEQS = [
    "ACGTACGTAC",
    "ATGGCGTTTAAACCCGGGTTTAGCATCGATCGATCG",
    "GGGGCCCCAAAA",
    "ATGAAATTTGGGCCCTAA",
    "TTTT",
    "ACGTNACGTTGCA",
]


def _reference(folder, seq: str, layer: int = -1):
    """Hidden states of one unpadded sequence, straight from transformers. -> (T, C)"""
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        out = model(**tok(seq, return_tensors="pt"), output_hidden_states=True)
    return out.hidden_states[layer][0].numpy()


def test_npz_contents_and_sidecar(bert_dir, tmp_path):
    df = _table(SEQS, splits=["train", "train", "validation", "test", "test", "test"])
    out = _embed(bert_dir, df, tmp_path / "e.npz", batch_size=4)
    with np.load(out, allow_pickle=False) as z:
        assert set(z.files) == {"ids", "labels", "split", "embeddings", "n_tokens"}
        assert z["embeddings"].dtype == np.float32
        assert z["embeddings"].shape == (len(SEQS), 32)
        assert z["ids"].tolist() == df["id"].tolist()  # table order restored
        assert z["labels"].tolist() == df["label"].tolist()
        assert z["split"].tolist() == df["split"].tolist()
        # one token per base plus [CLS] and [SEP]
        assert z["n_tokens"].tolist() == [len(s) + 2 for s in SEQS]
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["dim"] == 32
    assert meta["n"] == len(SEQS)
    assert meta["layer"] == -1
    assert meta["layer_index"] == 2
    assert meta["pooling"] == "mean"
    assert meta["regime"] == "pretrained"
    assert meta["objective"] == "mlm"
    assert meta["model_path"] == str(bert_dir.resolve())
    assert meta["n_per_split"] == {"test": 3, "train": 2, "validation": 1}
    assert not list(tmp_path.glob("*.part"))


def test_mean_matches_direct_transformers_call(bert_dir, tmp_path):
    emb = load_embeddings(_embed(bert_dir, _table(SEQS), tmp_path / "e.npz"))
    for i, seq in enumerate(SEQS):
        ref = _reference(bert_dir, seq).mean(0)
        np.testing.assert_allclose(emb.embeddings[i], ref, rtol=1e-4, atol=1e-5)


def test_deterministic(bert_dir, tmp_path):
    a = load_embeddings(_embed(bert_dir, _table(SEQS), tmp_path / "a.npz", batch_size=3))
    b = load_embeddings(_embed(bert_dir, _table(SEQS), tmp_path / "b.npz", batch_size=3))
    np.testing.assert_array_equal(a.embeddings, b.embeddings)


@pytest.mark.parametrize("which", ["bert", "gpt2"])
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_padding_does_not_change_embedding(which, pooling, bert_dir, gpt2_dir, tmp_path):
    folder = bert_dir if which == "bert" else gpt2_dir
    df = _table(SEQS)
    batched = load_embeddings(
        _embed(folder, df, tmp_path / "b.npz", pooling=pooling, batch_size=len(SEQS))
    )
    for i in range(len(SEQS)):
        alone = load_embeddings(
            _embed(folder, df.iloc[[i]], tmp_path / f"a{i}.npz", pooling=pooling)
        )
        np.testing.assert_allclose(batched.embeddings[i], alone.embeddings[0], atol=2e-5)
    # and the sequences really differ in length, so the batch was padded
    assert len(set(batched.n_tokens.tolist())) > 1


def test_cls_last_and_mean_differ(bert_dir, tmp_path):
    df = _table(SEQS)
    mean = load_embeddings(_embed(bert_dir, df, tmp_path / "m.npz")).embeddings
    cls = load_embeddings(_embed(bert_dir, df, tmp_path / "c.npz", pooling="cls"))
    last = load_embeddings(_embed(bert_dir, df, tmp_path / "l.npz", pooling="last"))
    assert cls.meta["pooling"] == "cls"
    assert not np.allclose(mean, cls.embeddings, atol=1e-3)
    assert not np.allclose(cls.embeddings, last.embeddings, atol=1e-3)
    for i in (0, 1):
        ref = _reference(bert_dir, SEQS[i])
        np.testing.assert_allclose(cls.embeddings[i], ref[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(last.embeddings[i], ref[-1], rtol=1e-4, atol=1e-5)


def test_exclude_special_tokens(bert_dir, tmp_path):
    df = _table(SEQS[:2])
    e = load_embeddings(_embed(bert_dir, df, tmp_path / "x.npz", exclude_special_tokens=True))
    ref = _reference(bert_dir, SEQS[0])[1:-1].mean(0)  # drop [CLS] and [SEP]
    np.testing.assert_allclose(e.embeddings[0], ref, rtol=1e-4, atol=1e-5)


def test_layer_selection(bert_dir, tmp_path):
    df = _table(SEQS[:3])
    layers = {
        layer: load_embeddings(
            _embed(bert_dir, df, tmp_path / f"l{layer}.npz", layer=layer)
        ).embeddings
        for layer in (0, 1, -1)
    }
    assert not np.allclose(layers[0], layers[-1], atol=1e-3)
    assert not np.allclose(layers[1], layers[-1], atol=1e-3)
    np.testing.assert_allclose(
        layers[1][0], _reference(bert_dir, SEQS[0], layer=1).mean(0), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(
        layers[-1],
        load_embeddings(_embed(bert_dir, df, tmp_path / "l2.npz", layer=2)).embeddings,
    )
    with pytest.raises(ConfigError, match="layer 3 does not exist"):
        _embed(bert_dir, df, tmp_path / "bad.npz", layer=3)
    assert not (tmp_path / "bad.npz").exists()


def test_random_init_differs_and_is_seeded(bert_dir, tmp_path):
    df = _table(SEQS)
    trained = load_embeddings(_embed(bert_dir, df, tmp_path / "t.npz")).embeddings
    r1 = load_embeddings(_embed(bert_dir, df, tmp_path / "r1.npz", random_init=True, seed=3))
    r1b = load_embeddings(_embed(bert_dir, df, tmp_path / "r1b.npz", random_init=True, seed=3))
    r2 = load_embeddings(_embed(bert_dir, df, tmp_path / "r2.npz", random_init=True, seed=4))
    assert r1.embeddings.shape == trained.shape
    assert not np.allclose(r1.embeddings, trained, atol=1e-3)
    np.testing.assert_array_equal(r1.embeddings, r1b.embeddings)
    assert not np.allclose(r1.embeddings, r2.embeddings, atol=1e-3)
    assert r1.meta["regime"] == "random-init"
    assert r1.meta["seed"] == 3


def test_causal_model_refuses_cls(gpt2_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"probe\.pooling: .* is a causal model"):
        _embed(gpt2_dir, _table(SEQS), tmp_path / "c.npz", pooling="cls")
    meta = load_embeddings(_embed(gpt2_dir, _table(SEQS), tmp_path / "m.npz")).meta
    assert meta["objective"] == "gpt"


def test_truncation_counted(bert_dir, tmp_path):
    df = _table(SEQS)
    e = load_embeddings(_embed(bert_dir, df, tmp_path / "t.npz", max_length=12))
    long = [i for i, s in enumerate(SEQS) if len(s) + 2 > 12]
    assert e.meta["n_truncated"] == len(long)
    assert e.meta["max_length"] == 12
    assert e.n_tokens.max() == 12
    # default limit: the tokenizer's model_max_length (64) and position table (64)
    assert load_embeddings(_embed(bert_dir, df, tmp_path / "d.npz")).meta["max_length"] == 64


def test_splits_filter_and_task_file(bert_dir, tmp_path):
    df = _table(SEQS, splits=["train", "train", "train", "test", "test", "test"])
    path = tmp_path / "data.tsv"
    df.to_csv(path, sep="\t", index=False)
    e = load_embeddings(_embed(bert_dir, path, tmp_path / "e.npz", splits=["test"]))
    assert e.ids.tolist() == ["s3", "s4", "s5"]
    assert e.subset("test").embeddings.shape == (3, 32)


def test_bad_inputs(bert_dir, tmp_path):
    with pytest.raises(InputFormatError, match="missing column"):
        _embed(bert_dir, pd.DataFrame({"id": ["a"], "sequence": ["ACGT"]}), tmp_path / "x.npz")
    dup = _table(SEQS[:2])
    dup["id"] = "same"
    with pytest.raises(InputFormatError, match="duplicate id"):
        _embed(bert_dir, dup, tmp_path / "x.npz")
    with pytest.raises(ConfigError, match="config"):
        _embed(tmp_path / "nowhere", _table(SEQS), tmp_path / "x.npz")
    with pytest.raises(ConfigError, match="pooling"):
        _embed(bert_dir, _table(SEQS), tmp_path / "x.npz", pooling="median")
    assert not (tmp_path / "x.npz").exists()


def test_missing_backbone_weights_is_an_error(bert_dir, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for f in bert_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    weights = load_file(str(folder / "model.safetensors"))
    key = next(k for k in weights if "encoder.layer.1" in k)
    del weights[key]
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(InputFormatError, match="missing from the checkpoint"):
        _embed(folder, _table(SEQS), tmp_path / "x.npz")


def test_workflow_model_folder_with_dnalm_tokenizer(tmp_path):
    """A folder as the pretraining stage writes it: OPT (dnalm.modeling.models) + a dnalm
    overlapping-k-mer tokenizer, whose AutoTokenizer input is space-separated k-mers."""
    tokenizers = pytest.importorskip("dnalm.tokenization.build")
    dmodels = pytest.importorskip("dnalm.modeling.models")
    folder = tmp_path / "model"
    tok = tokenizers.build_tokenizer({"type": "kmer_overlapping", "k": 3})
    tok.save(folder)
    arch = dmodels.resolve_arch("gpt", "tiny", {"context": 64})
    torch.manual_seed(0)
    net = dmodels.build_model("gpt", arch, tok.vocab_size, tok.special_ids)
    net.save_pretrained(str(folder))
    df = _table(SEQS)
    e = load_embeddings(_embed(folder, df, tmp_path / "e.npz"))
    assert e.meta["tokenizer"]["type"] == "kmer_overlapping"
    assert e.meta["objective"] == "gpt"
    # n - k + 1 k-mers plus BOS and EOS: proves the k-mer text path was used
    assert e.n_tokens.tolist() == [len(s) - 3 + 1 + 2 for s in SEQS]
    assert e.embeddings.shape == (len(SEQS), arch["d_model"])
    assert np.isfinite(e.embeddings).all()


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert select_device().type == "cuda"
    else:
        assert select_device().type in {"cpu", "mps"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (bf16 autocast path)")
def test_cuda_bf16_close_to_cpu(bert_dir, tmp_path):
    df = _table(SEQS)
    cpu = load_embeddings(_embed(bert_dir, df, tmp_path / "c.npz")).embeddings
    gpu = load_embeddings(embed_table(bert_dir, df, tmp_path / "g.npz", device="cuda"))
    assert gpu.meta["dtype"] == "bfloat16-autocast"
    assert gpu.embeddings.dtype == np.float32
    cos = (cpu * gpu.embeddings).sum(1) / (
        np.linalg.norm(cpu, axis=1) * np.linalg.norm(gpu.embeddings, axis=1)
    )
    assert cos.min() > 0.99


@pytest.mark.parametrize("which", ["bert", "opt_kmer3"])
def test_rc_average_embedding_is_strand_symmetric(which, bert_dir, tmp_path):
    """With rc_average a sequence and its reverse complement get the same vector (and
    without it they do not), for a per-base WordLevel tokenizer and a workflow folder with
    an overlapping 3-mer tokenizer whose tokens do not line up across strands."""
    from dnalm.core.alphabet import reverse_complement

    folder = bert_dir
    if which == "opt_kmer3":
        tokenizers = pytest.importorskip("dnalm.tokenization.build")
        dmodels = pytest.importorskip("dnalm.modeling.models")
        folder = tmp_path / "model"
        tok = tokenizers.build_tokenizer({"type": "kmer_overlapping", "k": 3})
        tok.save(folder)
        arch = dmodels.resolve_arch("gpt", "tiny", {"context": 64})
        torch.manual_seed(0)
        dmodels.build_model("gpt", arch, tok.vocab_size, tok.special_ids).save_pretrained(
            str(folder)
        )
    seqs = [s for s in SEQS if len(s) >= 6]
    df = _table(seqs + [reverse_complement(s) for s in seqs])
    n = len(seqs)
    rc = load_embeddings(_embed(folder, df, tmp_path / "rc.npz", rc_average=True))
    assert rc.meta["rc_average"] is True
    np.testing.assert_allclose(rc.embeddings[:n], rc.embeddings[n:], rtol=1e-5, atol=1e-6)
    plain = load_embeddings(_embed(folder, df, tmp_path / "plain.npz"))
    assert plain.meta["rc_average"] is False
    assert not np.allclose(plain.embeddings[:n], plain.embeddings[n:], atol=1e-4)
    # the average of the two strands' plain vectors
    np.testing.assert_allclose(
        rc.embeddings[:n], (plain.embeddings[:n] + plain.embeddings[n:]) / 2, atol=1e-5
    )


# ----------------------------------------------------------------------------- layer probe


def test_pooling_variants_against_numpy_on_a_padded_batch():
    """Each pooling of a hand-made (B, T, C) batch with right padding equals its NumPy
    definition over the unmasked positions only: pads never count, even where their values
    are the largest (max) or would shift a mean."""
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    hidden[mask == 0] = 100.0  # pads: huge, so any leak shows
    got = {
        p: _pool(torch.from_numpy(hidden), torch.from_numpy(mask), p).numpy()
        for p in ("mean", "max", "cls", "last")
    }
    for b in range(3):
        real = hidden[b, : mask[b].sum()]
        np.testing.assert_allclose(got["mean"][b], real.mean(0), rtol=1e-6)
        np.testing.assert_array_equal(got["max"][b], real.max(0))
        np.testing.assert_array_equal(got["cls"][b], real[0])
        np.testing.assert_array_equal(got["last"][b], real[-1])


def test_layer_grid_from_one_pass_matches_each_layer_and_pooling(bert_dir, tmp_path):
    """The layer-wise file holds every layer (0 = embedding output) and pooling of each
    sequence, equal to the unpadded hidden states of transformers pooled in NumPy, while the
    main embedding stays the one written without it, bit for bit."""
    df = _table(SEQS)
    plain = load_embeddings(_embed(bert_dir, df, tmp_path / "p.npz", batch_size=4))
    main = load_embeddings(
        _embed(
            bert_dir, df, tmp_path / "m.npz", batch_size=4, layers="all",
            poolings=["mean", "cls", "last", "max"], layers_out=tmp_path / "l.npz",
        )
    )  # fmt: skip
    np.testing.assert_array_equal(main.embeddings, plain.embeddings)
    grid = load_layer_embeddings(tmp_path / "l.npz")
    assert grid.layers.tolist() == [0, 1, 2]  # embedding output + 2 blocks
    assert grid.poolings.tolist() == ["mean", "cls", "last", "max"]
    assert grid.embeddings.shape == (len(SEQS), 3, 4, 32)
    assert grid.ids.tolist() == df["id"].tolist()
    np.testing.assert_array_equal(grid.features(2, "mean"), main.embeddings)
    for i, seq in enumerate(SEQS):
        for layer in (0, 1, 2):
            ref = _reference(bert_dir, seq, layer)  # (T, C), no padding
            want = {"mean": ref.mean(0), "cls": ref[0], "last": ref[-1], "max": ref.max(0)}
            for pooling, vec in want.items():
                np.testing.assert_allclose(
                    grid.features(layer, pooling)[i], vec, rtol=1e-4, atol=2e-5
                )


def test_layer_list_and_its_errors(bert_dir, gpt2_dir, tmp_path):
    df = _table(SEQS[:3])
    _embed(bert_dir, df, tmp_path / "m.npz", layers=[-1, 1], layers_out=tmp_path / "l.npz")
    grid = load_layer_embeddings(tmp_path / "l.npz")
    assert grid.layers.tolist() == [2, 1]
    assert grid.poolings.tolist() == ["mean"]
    with pytest.raises(ConfigError, match=r"probe\.layers: layer\(s\) \[5\] do not exist .* 3"):
        _embed(bert_dir, df, tmp_path / "x.npz", layers=[0, 5], layers_out=tmp_path / "y.npz")
    with pytest.raises(ConfigError, match=r"probe\.layers: .* the same layer"):
        _embed(bert_dir, df, tmp_path / "x.npz", layers=[2, -1], layers_out=tmp_path / "y.npz")
    with pytest.raises(ConfigError, match=r"probe\.pooling: .* is a causal model"):
        _embed(
            gpt2_dir, df, tmp_path / "x.npz", layers="all", poolings=["mean", "cls"],
            layers_out=tmp_path / "y.npz",
        )  # fmt: skip
    assert not (tmp_path / "x.npz").exists()
    assert not (tmp_path / "y.npz").exists()
    # a causal model takes the other poolings
    _embed(
        gpt2_dir, df, tmp_path / "g.npz", layers="all", poolings=["last", "max"],
        layers_out=tmp_path / "gl.npz",
    )  # fmt: skip
    assert load_layer_embeddings(tmp_path / "gl.npz").embeddings.shape[1:3] == (3, 2)


def test_layer_grid_with_reverse_complement_averaging(bert_dir, tmp_path):
    """rc_average: the layer-wise vectors are averaged over both strands too, so the last
    layer's mean is the main embedding, and a sequence and its reverse complement get the
    same layer-wise vectors."""
    seqs = ["ACGTTGCAAGGCT", "AGCCTTGCAACGT", "GGGATTTACC"]  # the second: the first's RC
    df = _table(seqs)
    main = load_embeddings(
        _embed(
            bert_dir, df, tmp_path / "m.npz", rc_average=True, layers="all",
            poolings=["mean", "max"], layers_out=tmp_path / "l.npz",
        )
    )  # fmt: skip
    grid = load_layer_embeddings(tmp_path / "l.npz")
    np.testing.assert_array_equal(grid.features(2, "mean"), main.embeddings)
    np.testing.assert_allclose(grid.embeddings[0], grid.embeddings[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(grid.embeddings[0], grid.embeddings[2], atol=1e-3)
