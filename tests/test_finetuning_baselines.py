"""dnalm.modeling.heads and dnalm.finetuning.baselines: head shapes and masking, the token->base
mapping,
encodings and augmentations, the generic training loop, the one-hot CNN and k-mer
baselines on small synthetic tables, and both baselines on the real shared tasks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from dnalm.core.alphabet import (
    encode_sequences,
    kmer_names,
    one_hot,
    one_hot_encode,
    reverse_complement_codes,
)
from dnalm.core.alphabet import (
    kmer_frequencies_sparse as kmer_frequencies,
)
from dnalm.core.config import CNNTrainConfig
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta
from dnalm.core.metrics import METRICS_JSON_KEYS
from dnalm.finetuning.baselines import train_onehot_cnn
from dnalm.finetuning.kmer_baseline import run_kmer_baseline
from dnalm.modeling.cnn import OneHotCNN, OneHotCNNClassifier, count_params
from dnalm.modeling.heads import (
    PerBaseRegressionHead,
    SequenceClassificationHead,
    base_to_token_from_offsets,
    pool,
    tokens_to_bases,
)
from dnalm.training.augment import random_reverse_complement, shift_crop
from dnalm.training.fit import ArrayBatches, fit

# ----------------------------------------------------------------------------- heads


def test_per_base_head_shape_and_params():
    head = PerBaseRegressionHead(embed_dim=48)
    h = torch.randn(3, 17, 48)  # (B, T, E)
    assert head(h).shape == (3, 17)
    # LayerNorm 2E, Conv1d E*128*11 + 128, Linear 128 + 1
    assert count_params(head)[1] == 2 * 48 + 48 * 128 * 11 + 128 + 128 + 1
    with pytest.raises(ValueError, match="odd"):
        PerBaseRegressionHead(8, kernel_size=10)


def test_per_base_head_mask_makes_padding_irrelevant():
    torch.manual_seed(0)
    head = PerBaseRegressionHead(8, hidden_dim=16, kernel_size=5).eval()
    h = torch.randn(2, 12, 8)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[1, 7:] = False
    h2 = h.clone()
    h2[1, 7:] = 100.0 * torch.randn(5, 8)  # different garbage in the padding
    a, b = head(h, mask), head(h2, mask)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-5)
    assert torch.allclose(a[0], b[0], atol=1e-5)
    # without the mask the garbage leaks into the real positions next to the padding
    assert not torch.allclose(head(h)[1, :7], head(h2)[1, :7], atol=1e-3)


def test_tokens_to_bases_gathers_covering_token():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3).requires_grad_()
    idx = torch.tensor([[1, 1, 1, 2, 2, 2, -1], [0, 0, 3, 3, 3, -1, -1]])  # (B, L)
    out = tokens_to_bases(hidden, idx)  # (B, L, E)
    assert out.shape == (2, 7, 3)
    for b in range(2):
        for i in range(7):
            t = int(idx[b, i])
            expected = hidden[b, t] if t >= 0 else torch.zeros(3)
            assert torch.equal(out[b, i], expected)
    out.sum().backward()
    # token 1 of sequence 0 feeds 3 bases, token 0 none, token 3 none
    assert hidden.grad[0, :, 0].tolist() == [0.0, 3.0, 3.0, 0.0]
    assert hidden.grad[1, :, 0].tolist() == [2.0, 0.0, 0.0, 3.0]
    with pytest.raises(ValueError, match="indices"):
        tokens_to_bases(hidden, torch.tensor([[4], [0]]))


def test_base_to_token_from_offsets():
    # CLS, three 3-mers ... the last token covers a 2-base tail, then SEP
    offsets = [(0, 0), (0, 3), (3, 6), (6, 8), (0, 0)]
    assert base_to_token_from_offsets(offsets, 9).tolist() == [1, 1, 1, 2, 2, 2, 3, 3, -1]
    # overlapping 3-mers over 5 bases: each base takes the first k-mer covering it
    assert base_to_token_from_offsets([(0, 3), (1, 4), (2, 5)], 5).tolist() == [0, 0, 0, 1, 2]
    with pytest.raises(ValueError, match="outside"):
        base_to_token_from_offsets([(0, 6)], 5)


def test_pooling_ignores_pads():
    torch.manual_seed(1)
    h = torch.randn(2, 6, 4)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    h2 = h.clone()
    h2[1, 3:] = 1e3  # pad states that would dominate mean and max
    for mode in ("mean", "max", "last", "cls"):
        assert torch.allclose(pool(h, mask, mode), pool(h2, mask, mode)), mode
    assert torch.allclose(pool(h, mask, "mean")[1], h[1, :3].mean(0))
    assert torch.allclose(pool(h, mask, "max")[1], h[1, :3].max(0).values)
    assert torch.equal(pool(h, mask, "last")[1], h[1, 2])
    assert torch.equal(pool(h, mask, "last")[0], h[0, 5])
    assert torch.equal(pool(h, mask, "cls"), h[:, 0])
    assert torch.allclose(pool(h, None, "mean"), h.mean(1))
    with pytest.raises(ValueError, match="pooling"):
        pool(h, mask, "sum")


def test_sequence_classification_head():
    head = SequenceClassificationHead(4, 3, pooling="mean").eval()
    h = torch.randn(5, 9, 4)
    mask = torch.ones(5, 9, dtype=torch.bool)
    mask[:, 6:] = False
    logits = head(h, mask)
    assert logits.shape == (5, 3)
    assert torch.allclose(logits, head.out(h[:, :6].mean(1)), atol=1e-6)
    assert count_params(head)[1] == 4 * 3 + 3


# ----------------------------------------------------------------------------- encoding


def test_encoding_and_one_hot():
    codes, lengths = encode_sequences(["ACGTN", "acg"])
    assert codes.tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 4, 4]]
    assert lengths.tolist() == [5, 3]
    x = one_hot_encode(["ACGTN"])[0]
    assert x.tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    with pytest.raises(InputFormatError, match="'X'"):
        encode_sequences(["ACXT"])
    rc = reverse_complement_codes(torch.as_tensor(encode_sequences(["AACGN"])[0]))
    assert rc.tolist() == encode_sequences(["NCGTT"])[0].tolist()


def test_onehot_cnn_parameter_count():
    model = OneHotCNN()
    trainable, total = count_params(model)
    # first conv 4*128*11 + 128; head LayerNorm 2*128, conv 128*128*11 + 128, linear 128 + 1
    expected = (4 * 128 * 11 + 128) + 2 * 128 + (128 * 128 * 11 + 128) + (128 + 1)
    print(f"one-hot CNN (per-base) parameters: {total:,}")
    assert trainable == total == expected == 186_497
    x = one_hot(torch.randint(0, 5, (2, 40)))
    assert model(x).shape == (2, 40)
    clf = OneHotCNNClassifier(3)
    assert count_params(clf)[1] == (4 * 128 * 11 + 128) + 128 * 3 + 3
    assert clf(x).shape == (2, 3)
    assert OneHotCNNClassifier(1)(x).shape == (2, 1)


# ----------------------------------------------------------------------------- augmentation


def test_shift_crop_keeps_targets_aligned():
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 4, (64, 50))
    batch = {"codes": codes, "y": codes.float() * 10, "mask": torch.ones(64, 50, dtype=torch.bool)}
    out = shift_crop(batch, 10, gen)
    assert out["codes"].shape == out["y"].shape == out["mask"].shape == (64, 30)
    assert torch.equal(out["y"], out["codes"].float() * 10)  # moved together
    # each row is a contiguous slice of the original at offset 0..20, and offsets vary
    offsets = set()
    for b in range(64):
        found = [s for s in range(21) if torch.equal(codes[b, s : s + 30], out["codes"][b])]
        assert found
        offsets.update(found)
    assert len(offsets) > 5
    with pytest.raises(ConfigError):
        shift_crop(batch, 25, gen)


def test_reverse_complement_augmentation_reverses_targets():
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 4, (32, 12))
    y = torch.arange(12.0).expand(32, 12)
    out = random_reverse_complement({"codes": codes, "y": y}, gen, per_base=True)
    flipped = out["y"][:, 0] == 11
    assert 0 < int(flipped.sum()) < 32
    assert torch.equal(out["codes"][flipped], reverse_complement_codes(codes[flipped]))
    assert torch.equal(out["codes"][~flipped], codes[~flipped])
    labels = torch.arange(32)
    out = random_reverse_complement({"codes": codes, "y": labels}, gen, per_base=False)
    assert torch.equal(out["y"], labels)


# ----------------------------------------------------------------------------- fit


def _motif_table(n: int, length: int, seed: int, motif: str = "GATTACA") -> pd.DataFrame:
    """Synthetic classification: half the sequences carry the motif at a random place."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        s = list(rng.choice(list("ACGT"), length))
        label = "motif" if i % 2 else "background"
        if label == "motif":
            at = rng.integers(0, length - len(motif))
            s[at : at + len(motif)] = motif
        split = ("train", "train", "train", "validation", "test")[i % 5]
        rows.append({"id": f"s{i}", "sequence": "".join(s), "split": split, "label": label})
    return pd.DataFrame(rows)


def _per_base_table(n: int, length: int, seed: int) -> pd.DataFrame:
    """Synthetic per-base task: every base of a 'TATA' site scores 5, other bases 0."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        s = "".join(rng.choice(list("ACGT"), length))
        at = int(rng.integers(0, length - 4))
        s = s[:at] + "TATA" + s[at + 4 :]
        t = np.zeros(length, np.float32)
        for j in range(length - 3):
            if s[j : j + 4] == "TATA":
                t[j : j + 4] = 5.0
        split = ("train", "train", "train", "validation", "test")[i % 5]
        rows.append({"id": f"w{i}", "sequence": s, "split": split, "targets": t})
    return pd.DataFrame(rows)


def test_fit_early_stopping_restores_best(monkeypatch):
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    w = torch.randn(8)
    data = {"x": x, "y": x @ w}
    train = ArrayBatches({k: v[:192] for k, v in data.items()}, 32, shuffle=True, seed=0)
    val = ArrayBatches({k: v[192:] for k, v in data.items()}, 64)

    def forward(model, batch):
        return model(batch["x"]).squeeze(-1)  # (B,)

    def loss_fn(pred, batch):
        return torch.nn.functional.mse_loss(pred, batch["y"])

    model = torch.nn.Linear(8, 1)
    res = fit(
        model,
        train,
        val,
        loss_fn,
        forward=forward,
        max_epochs=60,
        patience=2,
        lr=0.3,  # large: the validation loss bounces, so early stopping triggers
        weight_decay=0.0,
        progress=False,
    )
    assert res.stopped_early
    assert len(res.curves) == res.epochs_run < 60
    best_row = min(res.curves, key=lambda r: r["val_loss"])
    assert res.best_epoch == best_row["epoch"]
    # the model holds the best epoch's weights, not the last ones
    with torch.no_grad():
        val_loss = loss_fn(forward(model, {"x": x[192:]}), {"y": data["y"][192:]}).item()
    assert val_loss == pytest.approx(best_row["val_loss"], rel=1e-4)
    assert res.curves[-1]["val_loss"] > best_row["val_loss"]
    # eval_every / max_steps: evaluations every 3 steps, stop after 7 steps
    res = fit(
        torch.nn.Linear(8, 1),
        train,
        val,
        loss_fn,
        forward=forward,
        eval_every=3,
        max_steps=7,
        patience=99,
        progress=False,
    )
    assert [r["step"] for r in res.curves] == [3, 6, 7]
    assert res.steps == 7


def test_train_onehot_cnn_per_base_outputs(tmp_path):
    torch.manual_seed(0)
    df = _per_base_table(200, 40, seed=0)
    cfg = {"max_epochs": 6, "batch_size": 16, "lr": 5e-3, "channels": 16, "max_shift": 4}
    rec = train_onehot_cnn(df, tmp_path, config=cfg, task="toy")
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [
        "checkpoints", "curves.csv", "metrics.json", "model.safetensors", "predictions.npz"
    ]  # fmt: skip
    loaded = json.loads((tmp_path / "metrics.json").read_text())
    assert list(loaded)[: len(METRICS_JSON_KEYS)] == list(METRICS_JSON_KEYS)
    assert loaded["tokenizer"] == "onehot"
    assert loaded["regime"] == "baseline"
    assert loaded["n_test"] == 40
    assert loaded["kind"] == "per_base_regression"
    assert loaded["trainable_params"] == count_params(OneHotCNN(16))[0]
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert list(curves.columns) == [
        "epoch",
        "step",
        "train_loss",
        "val_loss",
        "val_metric",
        "elapsed_s",
        "lr",
    ]
    assert len(curves) == rec["fit"]["epochs_run"]
    assert (np.diff(curves["lr"]) < 0).all()  # the default cosine decay
    pred = np.load(tmp_path / "predictions.npz", allow_pickle=False)
    assert pred["predictions"].shape == pred["targets"].shape == (40, 40)
    assert pred["ids"].tolist() == df.loc[df.split == "test", "id"].tolist()
    # the saved test metrics are those of the saved predictions
    r = stats.pearsonr(pred["targets"].ravel(), pred["predictions"].ravel()).statistic
    assert loaded["metrics"]["pearson_r"] == pytest.approx(r, abs=1e-5)
    assert loaded["metrics"]["pearson_r"] > 0.5  # a 4-bp site is easy to find


def test_train_onehot_cnn_classifier_without_validation(tmp_path):
    df = _motif_table(300, 60, seed=1)
    df.loc[df.split == "validation", "split"] = "train"
    cfg = CNNTrainConfig(max_epochs=8, channels=32, lr=1e-2, batch_size=32, reverse_complement=True)
    rec = train_onehot_cnn(df, tmp_path, config=cfg)
    assert rec["n_validation"] == 24  # 10% of the 240 train rows carved off
    pred = pd.read_csv(tmp_path / "predictions.tsv", sep="\t")
    assert list(pred.columns) == ["id", "label", "predicted", "p_background", "p_motif"]
    assert np.allclose(pred[["p_background", "p_motif"]].sum(axis=1), 1.0, atol=1e-5)
    assert rec["metrics"]["labels"] == ["background", "motif"]
    assert rec["metrics"]["accuracy"] == pytest.approx(np.mean(pred.label == pred.predicted))
    assert rec["metrics"]["accuracy"] > 0.7


def test_train_onehot_cnn_is_seeded(tmp_path):
    df = _motif_table(100, 30, seed=4)
    cfg = {"max_epochs": 2, "channels": 8, "batch_size": 16, "reverse_complement": True}
    a = train_onehot_cnn(df, tmp_path / "a", config=cfg)
    b = train_onehot_cnn(df, tmp_path / "b", config=cfg)
    train_onehot_cnn(df, tmp_path / "c", config={**cfg, "seed": 1})
    pa, pb, pc = (pd.read_csv(tmp_path / x / "predictions.tsv", sep="\t") for x in "abc")
    assert a["metrics"] == b["metrics"]
    assert pa.equals(pb)
    assert not np.allclose(pa["p_motif"], pc["p_motif"])


def test_train_onehot_cnn_reruns_resume_and_changed_settings_start_over(tmp_path, caplog):
    """Like the fine-tuning runs, the CNN checkpoints after each validation: a rerun with the
    same settings picks up the finished run (no more training), changed settings start over."""
    df = _motif_table(100, 30, seed=4)
    cfg = {"max_epochs": 3, "channels": 8, "batch_size": 16}
    first = train_onehot_cnn(df, tmp_path, config=cfg)
    assert first["fit"]["resumed_from_step"] is None
    again = train_onehot_cnn(df, tmp_path, config=cfg)
    assert again["fit"]["resumed_from_step"] == first["fit"]["steps"]
    assert again["metrics"] == first["metrics"]
    with caplog.at_level("WARNING", logger="dnalm"):
        other = train_onehot_cnn(df, tmp_path, config={**cfg, "lr": 1e-2})
    assert "settings changed" in caplog.text
    assert "lr" in caplog.text
    assert other["fit"]["resumed_from_step"] is None
    assert other["metrics"] != first["metrics"]
    # other training rows, same count and settings (a smaller max_train_examples drawn
    # elsewhere, a rebuilt task table): start over rather than reuse the finished run
    caplog.clear()
    with caplog.at_level("WARNING", logger="dnalm"):
        new = train_onehot_cnn(_motif_table(100, 30, seed=5), tmp_path, config={**cfg, "lr": 1e-2})
    assert "settings changed" in caplog.text
    assert "data" in caplog.text
    assert new["fit"]["resumed_from_step"] is None


def test_train_onehot_cnn_rejects_bad_tables(tmp_path):
    df = _per_base_table(10, 20, seed=2)
    with pytest.raises(InputFormatError, match="label"):
        train_onehot_cnn(df.drop(columns="targets"), tmp_path, kind="classification")
    bad = df.copy()
    bad.loc[0, "targets"] = np.zeros(5, np.float32)
    with pytest.raises(InputFormatError, match="row w0: 5 targets for a 20-bp sequence"):
        train_onehot_cnn(bad, tmp_path)
    with pytest.raises(ConfigError, match="unknown one-hot CNN setting"):
        train_onehot_cnn(df, tmp_path, config={"learning_rate": 1})
    assert not (tmp_path / "metrics.json").exists()


# ----------------------------------------------------------------------------- k-mers


def test_kmer_frequencies_hand_and_naive():
    assert kmer_names(2)[:5] == ["AA", "AC", "AG", "AT", "CA"]
    names = kmer_names(2)
    x = kmer_frequencies(["ACGTA", "ACNGT", "NN"], 2).toarray()
    assert x.shape == (3, 16)
    assert {names[j]: v for j, v in enumerate(x[0]) if v} == {
        "AC": 0.25,
        "CG": 0.25,
        "GT": 0.25,
        "TA": 0.25,
    }
    assert {names[j]: v for j, v in enumerate(x[1]) if v} == {"AC": 0.5, "GT": 0.5}
    assert not x[2].any()
    rng = np.random.default_rng(0)
    seqs = [
        "".join(rng.choice(list("ACGTN"), int(rng.integers(5, 40)), p=[0.24] * 4 + [0.04]))
        for _ in range(30)
    ]
    for k in (3, 5):
        names = kmer_names(k)
        got = kmer_frequencies(seqs, k).toarray()
        for i, s in enumerate(seqs):
            c = Counter(s[j : j + k] for j in range(len(s) - k + 1) if "N" not in s[j : j + k])
            total = sum(c.values())
            expected = np.array([c[n] / total if total else 0.0 for n in names])
            assert np.allclose(got[i], expected, atol=1e-6)


def test_kmer_baseline_classification_and_regression(tmp_path):
    df = _motif_table(400, 50, seed=3, motif="GGGCGGGCGG")
    rec = run_kmer_baseline(df, tmp_path / "clf", k=3, task="toy")
    assert rec["model"] == "kmer_logreg"
    assert rec["tokenizer"] == "kmer3"
    assert rec["trainable_params"] == 64 + 1  # binary: one coefficient row
    assert rec["metrics"]["accuracy"] > 0.75
    sel = pd.read_csv(tmp_path / "clf" / "selection.csv")
    assert list(sel.columns) == ["C", "validation_macro_f1"]
    assert len(sel) == 6
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == [
        "metrics.json",
        "predictions.tsv",
        "selection.csv",
    ]
    # sequence regression: label = GC fraction, learnable from 3-mer frequencies
    reg = df.drop(columns="label").copy()
    reg["label"] = [(s.count("G") + s.count("C")) / len(s) for s in reg["sequence"]]
    reg.loc[reg.split == "validation", "split"] = "train"  # -> 5-fold CV on train
    rec = run_kmer_baseline(reg, tmp_path / "reg", k=3, kind="regression")
    assert rec["model"] == "kmer_ridge"
    assert rec["selection_metric"] == "5-fold CV on train"
    assert rec["metrics"]["pearson_r"] > 0.9
    with pytest.raises(ConfigError, match="cannot predict per base"):
        run_kmer_baseline(_per_base_table(10, 20, 0), tmp_path / "pb", k=3)


# ----------------------------------------------------------------------------- real data


def _tf_binding_table(root: Path, n_train: int, n_val: int, n_test: int, seed: int = 0):
    """The DNA-LLM TF-binding windows as a task table. Windows are sorted by start and cut
    into contiguous 80/10/10 blocks (each cut moved past any window overlapping the previous
    block, so no two overlapping windows straddle splits), then subsampled per split."""
    d = root / "tasks" / "tf_binding"
    seqs = pd.read_csv(d / "chr22_sequences.txt.gz", sep="\t")
    scores = pd.read_csv(d / "chr22_scores.txt.gz", sep="\t", dtype=np.float32)
    assert list(scores.columns) == list(seqs["window_name"])
    parts = seqs["window_name"].str.split("_", expand=True)
    start, end = parts[1].astype(int).to_numpy(), parts[2].astype(int).to_numpy()
    order = np.argsort(start, kind="stable")
    cuts = []
    for frac in (0.8, 0.9):
        c = int(frac * len(order))
        while c < len(order) and start[order[c]] <= end[order[:c]].max():
            c += 1
        cuts.append(c)
    split = np.empty(len(order), dtype=object)
    split[order[: cuts[0]]] = "train"
    split[order[cuts[0] : cuts[1]]] = "validation"
    split[order[cuts[1] :]] = "test"
    targets = scores.to_numpy().T  # (N, 300)
    df = pd.DataFrame({"id": seqs["window_name"], "sequence": seqs["sequence"], "split": split})
    df["targets"] = list(targets)
    rng = np.random.default_rng(seed)
    keep = np.concatenate(
        [
            rng.choice(np.flatnonzero(split == s), n, replace=False)
            for s, n in (("train", n_train), ("validation", n_val), ("test", n_test))
        ]
    )
    return df.iloc[np.sort(keep)].reset_index(drop=True), (start, end, split)


def test_tf_binding_split_has_no_overlap_across_blocks(shared_data):
    df, (start, end, split) = _tf_binding_table(shared_data, 10, 10, 10)
    assert len(split) == 23_139
    for a in ("train", "validation", "test"):
        for b in ("train", "validation", "test"):
            if a < b:
                sa, ea = start[split == a], end[split == a]
                sb, eb = start[split == b], end[split == b]
                # blocks are contiguous in position: one ends before the other starts
                assert ea.max() < sb.min() or eb.max() < sa.min(), (a, b)
    assert df["targets"].map(len).eq(300).all()


def _chipseq_table(root: Path, seed: int = 0) -> pd.DataFrame:
    """Oct4 vs Mafk peaks: the provided train files (10% carved as validation, seeded) and
    the provided 200-sequence test split."""
    d = root / "tasks" / "chipseq_oct4_vs_mafk"
    rows = []
    for label in ("oct4", "mafk"):
        for name, split in ((f"{label}_train.fa.gz", "train"), (f"{label}_test.fa", "test")):
            for header, seq, _ in read_fasta(d / name):
                rows.append(
                    {
                        "id": f"{label}:{header.split()[0]}",
                        "sequence": seq.upper(),
                        "split": split,
                        "label": label,
                    }
                )
    df = pd.DataFrame(rows)
    train = np.flatnonzero(df["split"] == "train")
    rng = np.random.default_rng(seed)
    df.loc[rng.choice(train, len(train) // 10, replace=False), "split"] = "validation"
    return df


def _beats_chance(metrics: dict) -> float:
    """One-sided binomial p-value of the test accuracy against the higher chance level."""
    chance = max(metrics["chance_majority"], metrics["chance_uniform"])
    k = round(metrics["accuracy"] * metrics["n"])
    return stats.binomtest(k, metrics["n"], chance, alternative="greater").pvalue


def test_kmer_logreg_beats_chance_on_chipseq(shared_data, tmp_path):
    df = _chipseq_table(shared_data)
    assert (df["split"] == "test").sum() == 200
    rec = run_kmer_baseline(df, tmp_path, k=4, kind="classification")
    m = rec["metrics"]
    print(
        "oct4 vs mafk, 4-mer logistic regression: test accuracy "
        f"{m['accuracy']:.3f} (C {rec['chosen']['C']})"
    )
    assert m["n"] == 200
    assert m["chance_uniform"] == 0.5
    assert _beats_chance(m) < 1e-3


def test_standardizing_per_base_head_equalises_feature_scales():
    """head_norm: standardize scales every feature to unit variance over the real positions
    (pads excluded), and evaluation uses the running statistics."""
    torch.manual_seed(0)
    head = PerBaseRegressionHead(3, hidden_dim=4, kernel_size=3, norm="standardize")
    scales = torch.tensor([100.0, 1.0, 0.01])
    hidden = torch.randn(4, 50, 3) * scales + torch.tensor([5.0, -2.0, 0.3])
    mask = torch.ones(4, 50)
    mask[:, 40:] = 0
    hidden[:, 40:] = 1e6  # pads must not move the statistics
    z = head.norm(hidden, mask)
    real = z[:, :40].reshape(-1, 3)
    assert torch.allclose(real.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(real.std(0), torch.ones(3), atol=1e-2)
    for _ in range(60):  # running statistics converge to the batch statistics
        head.norm(hidden, mask)
    head.eval()
    assert torch.allclose(head.norm(hidden, mask)[:, :40], z[:, :40], atol=1e-2)
    assert head(hidden, mask).shape == (4, 50)
    with pytest.raises(ValueError, match="norm must be one of"):
        PerBaseRegressionHead(3, norm="batch")
