"""The layer probe (dnalm.evaluation.layer_probe) on a known case: a tiny model built by hand
from real torch modules whose hidden state carries the label at one layer only. Every layer's
state is a per-token function of the token (so mean-pooled, it sees base composition, which
the two classes share), except layer K, which adds the count of CpG steps along one
direction: the classes differ only there. The probe must peak at K and name it."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pandas as pd
import pytest
import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import PreTrainedTokenizerFast
from transformers.modeling_outputs import BaseModelOutput

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation.embed import embed_sequences_grid
from dnalm.evaluation.embeddings import (
    Embeddings,
    LayerEmbeddings,
    write_embeddings,
    write_layer_embeddings,
)
from dnalm.evaluation.layer_probe import add_best_layers, layer_table, probe_layers
from dnalm.evaluation.probe import assemble_table, probe_embeddings, probe_kmer

VOCAB = ["[PAD]", "[UNK]", "A", "C", "G", "T"]
N_LAYERS, K, DIM = 4, 2, 8


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # lazy: threadpoolctl comes with scikit-learn
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


class PlantedModel(nn.Module):
    """Token embedding, then N_LAYERS linear maps applied token by token (no context); the
    hidden state of layer K alone adds, along a fixed direction, a 1 at each C followed by
    a G (a width-2 convolution over the one-hot tokens)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.embed = nn.Embedding(len(VOCAB), DIM)
        self.blocks = nn.ModuleList(nn.Linear(DIM, DIM) for _ in range(N_LAYERS))
        self.cpg = nn.Conv1d(len(VOCAB), 1, kernel_size=2, bias=False)
        self.direction = nn.Parameter(torch.randn(DIM, generator=g))
        with torch.no_grad():
            self.embed.weight.copy_(torch.randn(len(VOCAB), DIM, generator=g))
            for block in self.blocks:
                block.weight.copy_(torch.randn(DIM, DIM, generator=g) / DIM**0.5)
                block.bias.zero_()
            self.cpg.weight.zero_()
            self.cpg.weight[0, VOCAB.index("C"), 0] = 1.0
            self.cpg.weight[0, VOCAB.index("G"), 1] = 1.0
            self.cpg.bias = None

    def forward(self, input_ids, attention_mask=None, output_hidden_states=True):
        h = self.embed(input_ids)  # (B, T, C)
        onehot = nn.functional.one_hot(input_ids, len(VOCAB)).float().transpose(1, 2)
        cpg = (self.cpg(nn.functional.pad(onehot, (0, 1))) > 1.5).float()  # (B, 1, T)
        states = [h]
        for i, block in enumerate(self.blocks, start=1):
            h = block(h)
            carried = cpg.transpose(1, 2) * self.direction if i == K else 0.0
            states.append(h + carried)
        return BaseModelOutput(last_hidden_state=states[-1], hidden_states=tuple(states))


def _tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")


def _table(n_per_class: int = 60, seed: int = 0) -> pd.DataFrame:
    """Two classes with the same base composition: blocks of CG, AT, TA (class "cpg") or of
    GC, AT, TA (class "gpc"), 8-20 blocks long (so batches are padded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, pair in (("cpg", "CG"), ("gpc", "GC")):
        for i in range(n_per_class):
            blocks = rng.choice([pair, "AT", "TA"], size=int(rng.integers(8, 21)))
            split = "train" if i < 2 * n_per_class // 3 else "test"
            rows.append((f"{label}{i}", "".join(blocks), split, label))
    return pd.DataFrame(rows, columns=["id", "sequence", "split", "label"])


def _embed(tmp_path, poolings=("mean", "max", "last")):
    df = _table()
    main, _, _, cube, picked = embed_sequences_grid(
        PlantedModel().eval(), _tokenizer(), df["sequence"].tolist(), layers="all",
        poolings=list(poolings), batch_size=16, ids=df["id"].tolist(), model_name="planted",
    )  # fmt: skip
    meta = {"model": "planted", "regime": "pretrained", "objective": "mlm", "layer": -1}
    cols = [df[c].to_numpy(dtype=str) for c in ("id", "label", "split")]
    npz = write_layer_embeddings(
        tmp_path / "layers.npz",
        LayerEmbeddings(*cols, cube, np.asarray(picked), np.asarray(poolings), meta),
    )
    main_npz = write_embeddings(
        tmp_path / "main.npz",
        Embeddings(*cols, main, np.zeros(len(df), np.int32), {**meta, "pooling": "mean"}),
    )
    return df, npz, main_npz


def test_the_layer_probe_peaks_at_the_planted_layer(tmp_path):
    _, npz, _ = _embed(tmp_path)
    m = probe_layers(npz, tmp_path / "layers.json", cv_folds=3)
    assert m["layers"] == list(range(N_LAYERS + 1))
    acc = {(r["layer"], r["pooling"]): r["accuracy"] for r in m["rows"]}
    for pooling in ("mean", "max"):  # both read the CpG steps of layer K
        curve = [acc[(layer, pooling)] for layer in m["layers"]]
        assert int(np.argmax(curve)) == K, (pooling, curve)
        assert curve[K] >= 0.9  # the planted layer separates the classes
        assert max(a for i, a in enumerate(curve) if i != K) <= 0.75  # the others: no signal
    assert m["best"]["logreg"]["layer"] == K
    assert m["best"]["logreg"]["pooling"] in ("mean", "max")
    assert (tmp_path / "layers.json").is_file()


def test_layer_table_probe_table_column_and_figure(tmp_path):
    # lazy: the figure module imports matplotlib when it draws
    from dnalm.report.probe_plots import plot_layer_probe

    df, npz, main_npz = _embed(tmp_path, poolings=("mean", "last"))
    probe_layers(npz, tmp_path / "layers.json", cv_folds=3)
    probe_kmer(df, tmp_path / "kmer.json", k=2, cv_folds=3)
    table = layer_table(
        [tmp_path / "layers.json"], [tmp_path / "kmer.json"], tmp_path / "t.tsv", n_boot=200
    )
    rows = table[table["regime"] == "pretrained"]
    assert len(rows) == (N_LAYERS + 1) * 2
    assert rows["best"].sum() == 1
    best = rows[rows["best"]].iloc[0]
    assert (int(best["layer"]), best["pooling"]) == (K, "mean")
    assert (rows["ci95_low"] <= rows["accuracy"]).all()
    assert (rows["accuracy"] <= rows["ci95_high"]).all()
    assert rows["best_baseline"].eq("2-mer frequencies").all()
    # the 2-mer counts see CpG steps too: its difference to the planted layer is small
    assert np.isfinite(rows["delta_vs_best_baseline"]).all()
    saved = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert list(saved["metric"].unique()) == ["accuracy over test fragments"]

    probe_embeddings(main_npz, tmp_path / "main.json", cv_folds=3)
    probe = add_best_layers(
        assemble_table([tmp_path / "main.json", tmp_path / "kmer.json"], n_boot=0),
        [tmp_path / "layers.json"],
    )
    planted = probe[probe["model"] == "planted"].iloc[0]
    assert (planted["best_layer"], planted["best_pooling"]) == (K, "mean")
    assert planted["best_layer_accuracy"] == pytest.approx(best["accuracy"])
    assert probe.loc[probe["regime"] == "kmer-baseline", "best_pooling"].eq("").all()

    png, svg = plot_layer_probe(tmp_path / "t.tsv", tmp_path / "layers.png")
    assert png.stat().st_size > 5000
    assert svg.is_file()


class LastOnly(nn.Module):
    """A model whose output has its last layer only (as DNABERT-2's own code)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(VOCAB), DIM)

    def forward(self, input_ids, attention_mask=None, output_hidden_states=True):
        return BaseModelOutput(last_hidden_state=self.embed(input_ids))


def test_a_model_without_per_layer_states_takes_the_last_layer_only():
    seqs = ["ACGT", "GGCCA"]
    with pytest.raises(ConfigError, match=r"probe\.layers: last_only returns no per-layer"):
        embed_sequences_grid(
            LastOnly(), _tokenizer(), seqs, layers="all", poolings=["mean"], model_name="last_only"
        )
    _, _, _, cube, picked = embed_sequences_grid(
        LastOnly(), _tokenizer(), seqs, layers="last", poolings=["mean", "max"]
    )
    assert picked == [-1]
    assert cube.shape == (2, 1, 2, DIM)


def test_not_a_layer_metrics_file_is_named(tmp_path):
    (tmp_path / "x.json").write_text('{"model": "m"}')
    with pytest.raises(InputFormatError, match=r"x.json: not a layer-probe metrics file"):
        layer_table([tmp_path / "x.json"])
