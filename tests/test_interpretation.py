"""Attribution and motifs (dnalm.interpretation): ISM, gradient x input and integrated
gradients on models whose answer is known, the bound-vs-unbound AUROC, the motif score, the
seqlet clustering on planted motifs, and whole runs on a one-hot CNN and a fine-tuned
codon GPT."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from dnalm.core.alphabet import encode_sequences, one_hot
from dnalm.core.errors import ConfigError
from dnalm.core.metrics import auroc
from dnalm.interpretation import attribution as attr
from dnalm.interpretation import motifs
from dnalm.interpretation.run import InterpretSettings, interpret_run
from tests.test_finetuning_finetune import FAST, class_table, make_model_dir, per_base_table


class OnePosition(nn.Module):
    """Reads only base `pos`: out = w . x[pos] (a sequence-regression model, (B, 1))."""

    def __init__(self, pos: int, w) -> None:
        super().__init__()
        self.pos = pos
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float32))

    def forward(self, x, mask=None):
        return (x[:, self.pos] * self.w).sum(-1, keepdim=True)


class Linear(nn.Module):
    """out = sum(W * x): a linear one-hot model."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x, mask=None):
        return (x * self.weight).sum((1, 2)).unsqueeze(1)


def _inputs(seqs):
    codes, lengths = encode_sequences(seqs)
    mask = np.arange(codes.shape[1])[None] < lengths[:, None]
    return codes, mask, np.zeros(len(seqs), np.int64)


def test_ism_of_a_one_position_model_is_nonzero_only_there():
    w = [0.5, -1.0, 2.0, 0.25]
    model = attr.OneHotScalar(OnePosition(5, w), "regression")
    codes, mask, cls = _inputs(["ACGTACGTAC", "TTTTTCTTTT"])
    delta = attr.ism(attr.onehot_scorer(model), codes, mask, cls, batch_size=7)
    assert delta.shape == (2, 10, 4)
    others = np.delete(delta, 5, axis=1)
    assert np.all(others == 0)
    for i in range(2):
        ref = codes[i, 5]
        expected = np.array(w) - w[ref]
        np.testing.assert_allclose(delta[i, 5], expected, atol=1e-6)
        assert np.count_nonzero(delta[i, 5]) == 3  # the three substitutions, not the ref
    track, hyp = attr.ism_track(delta)
    assert np.flatnonzero(track[0]).tolist() == [5]
    np.testing.assert_allclose(hyp.sum(-1), 0, atol=1e-6)


def test_gradient_x_input_and_ig_of_a_linear_model_equal_weight_times_input():
    torch.manual_seed(0)
    weight = torch.randn(12, 4)
    model = attr.OneHotScalar(Linear(weight), "regression")
    codes, mask, cls = _inputs(["ACGTTGCAACGT", "GGGGCCCCAATT"])
    expected = one_hot(codes) * weight.numpy()[None]
    for method in ("grad_x_input", "ig"):
        got = attr.onehot_gradients(model, codes, mask, cls, method, steps=8)
        np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ConfigError, match="unknown gradient method"):
        attr.onehot_gradients(model, codes, mask, cls, "deeplift")


def test_scalar_output_per_kind():
    out = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[True, True, True, False]])
    assert attr.scalar_output(out, "per_base_regression", mask, torch.tensor([0])).item() == 2.0
    logits = torch.tensor([[1.0, 3.0], [0.0, -2.0]])
    got = attr.scalar_output(logits, "classification", mask, torch.tensor([1, 1]))
    np.testing.assert_allclose(got.numpy(), [1.0, -1.0])


def test_token_attribution_is_spread_evenly_over_its_bases():
    tok_attr = np.array([[9.0, 6.0, 3.0, 7.0]])  # BOS, two 3-mers, EOS
    base_index = np.array([[1, 1, 1, 2, 2, 2, -1]])  # a 7-bp sequence, 1-base tail
    got = attr.tokens_to_base_attribution(tok_attr, base_index)
    np.testing.assert_allclose(got, [[2, 2, 2, 1, 1, 1, 0]])
    assert got.sum() == pytest.approx(9.0)  # the two tokens' total is kept


def test_auroc_on_known_cases():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([1, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.5)  # ties: mid-ranks
    assert np.isnan(auroc([1, 2], [1, 1]))
    track = np.array([[0.1, -5.0, 4.0, 0.2, 9.0], [0.0, 0.0, -1.0, 0.5, 0.0]])
    targets = np.array([[0, 7.1, 8.0, 0, 0], [0, 0, 6.5, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)  # the 9.0 is padding
    got = motifs.bound_auroc(track, targets, mask)
    # |attr| of bound bases 5, 4, 1 beat every one of the 6 unbound (max 0.5): AUROC 1
    assert got["auroc_pooled"] == pytest.approx(1.0)
    assert got["auroc_window_mean"] == pytest.approx(1.0)
    assert (got["n_bound_bases"], got["n_bases"]) == (3, 9)
    got = motifs.bound_auroc(np.ones_like(track), targets, mask)  # all tied
    assert got["auroc_pooled"] == pytest.approx(0.5)


def test_motif_similarity_finds_the_reverse_strand_and_offset():
    oct4 = motifs.consensus_matrix("ATGCAAAT")
    rc_in_context = motifs.consensus_matrix("GGATTTGCATCC")  # revcomp of ATGCAAAT inside
    r, off, rc = motifs.pwm_similarity(rc_in_context, oct4)
    assert r == pytest.approx(1.0)
    assert rc
    assert off == 2
    mafk = motifs.consensus_matrix("TGCTGAC")
    assert motifs.pwm_similarity(mafk, oct4)[0] < 0.6
    assert motifs.random_null(oct4, 8) < 0.9
    with pytest.raises(ConfigError, match="not A/C/G/T/N"):
        motifs.consensus_matrix("ATGX")


def test_seqlet_clustering_recovers_a_planted_motif_on_both_strands():
    rng = np.random.default_rng(3)
    seqs, tracks = [], []
    for i in range(60):
        s = list(rng.choice(list("ACGT"), 60))
        p = int(rng.integers(5, 45))
        site = "ATGCAAAT" if i % 2 else "ATTTGCAT"  # half on the reverse strand
        s[p : p + 8] = site
        t = rng.normal(0, 0.05, 60)
        t[p : p + 8] += 1.0
        seqs.append("".join(s))
        tracks.append(t)
    codes, mask, _ = _inputs(seqs)
    seqlets = motifs.find_seqlets(np.array(tracks), codes, mask, width=10, per_sequence=1)
    assert len(seqlets) >= 5
    clusters = motifs.cluster_seqlets(seqlets, codes, width=10, join=0.5, min_seqlets=5)
    assert clusters
    rows = motifs.compare_motifs(clusters, {"OCT4": "ATGCAAAT", "MAFK": "TGCTGAC"}, n_top=1)
    by = {r["known"]: r for r in rows}
    assert by["OCT4"]["similarity"] > 0.85, rows
    assert by["OCT4"]["similarity"] > by["MAFK"]["similarity"]
    assert by["OCT4"]["similarity"] > by["OCT4"]["null_p95"]


def test_settings_are_checked():
    with pytest.raises(ConfigError, match=r"interpret\.methods"):
        InterpretSettings.from_dict({"methods": ["saliency"]})
    with pytest.raises(ConfigError, match="unknown setting"):
        InterpretSettings.from_dict({"n_window": 3})
    with pytest.raises(ConfigError, match="n_windows"):
        InterpretSettings.from_dict({"n_windows": 0})


def test_run_on_a_onehot_cnn(tmp_path):
    from safetensors.torch import save_file

    from dnalm.modeling.cnn import OneHotCNN

    run = tmp_path / "onehot_cnn"
    run.mkdir()
    torch.manual_seed(0)
    net = OneHotCNN(channels=8, kernel_size=5, dropout=0.0)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, run / "model.safetensors")
    cfg = {"channels": 8, "kernel_size": 5, "dropout": 0.0}
    (run / "metrics.json").write_text(json.dumps({"kind": "per_base_regression", "config": cfg}))
    df = per_base_table(n=60, length=30)
    out = tmp_path / "out"
    summary = interpret_run(run, df, out, {"n_windows": 4, "ig_steps": 4}, task_name="t")
    assert list(summary["method"]) == ["ism", "grad_x_input", "ig"]
    assert (summary["n_windows"] == 4).all()
    assert summary["auroc_pooled"].between(0, 1).all()
    with np.load(out / "attributions.npz") as z:
        assert z["ism_delta"].shape == (4, 30, 4)
        assert z["ig"].shape == z["targets"].shape == (4, 30)
        assert np.abs(z["ism"]).sum() > 0
        assert ((z["targets"] > 0).any(1) & (z["targets"] == 0).any(1)).all()
    assert pd.read_csv(out / "summary.tsv", sep="\t").shape[0] == 3
    from dnalm.report.attribution_plots import plot_attribution_tracks, plot_auroc

    png = plot_attribution_tracks(out / "attributions.npz", tmp_path / "tracks.png", 2)[0]
    assert png.stat().st_size > 0
    assert plot_auroc(summary, tmp_path / "auroc.png")[0].stat().st_size > 0


@pytest.fixture(scope="module")
def codon_run(tmp_path_factory):
    from dnalm.finetuning import finetune as ft

    root = tmp_path_factory.mktemp("codon")
    model = make_model_dir(root / "m", "gpt", {"type": "codon"})
    run = root / "run"
    settings = {**FAST, "regime": "full", "max_epochs": 1, "max_shift": 0}
    ft.finetune(model, class_table(n=80, length=40), run, settings, task_name="t")
    return run


def test_run_on_a_finetuned_codon_model_projects_tokens_to_bases(codon_run, tmp_path):
    df = class_table(n=80, length=40)
    out = tmp_path / "out"
    settings = {"n_windows": 4, "ig_steps": 4, "min_seqlets": 1}
    summary = interpret_run(codon_run, df, out, settings, task_name="t")
    assert set(summary["class"]) == {"at", "gc"}
    from dnalm.report.attribution_plots import plot_motif_similarity

    assert plot_motif_similarity(summary, tmp_path / "motifs.png")[0].stat().st_size > 0
    assert (summary["model_family"] == "token").all()
    with np.load(out / "attributions.npz") as z:
        # 40 bp in codons: 13 tokens cover 39 bases, the last base none
        assert z["mask"][:, :39].all()
        assert not z["mask"][:, 39].any()
        assert np.all(z["ism_delta"][:, 39] == 0)
        assert np.all(z["ig"][:, 39] == 0)
        assert np.abs(z["ism_delta"]).sum() > 0
        for m in ("grad_x_input", "ig"):
            t = z[m][:, :39].reshape(4, 13, 3)
            np.testing.assert_allclose(t, t[..., :1].repeat(3, -1), rtol=1e-5)  # even spread
            assert np.abs(z[m]).sum() > 0
