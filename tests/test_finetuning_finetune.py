"""Fine-tuning backbones on task tables: regimes, heads, per-base mapping, bad input.

Model folders are built here the way pretraining writes them (a dnalm tokenizer + an OPT or
BERT model from dnalm.modeling.models, saved side by side); the tasks are small synthetic ones whose
signal a model can learn in seconds."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from dnalm.core.config import FinetuneTrainConfig
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.finetuning import finetune as ft
from dnalm.finetuning.tables import subsample_split
from dnalm.modeling import models as dmodels
from dnalm.modeling.loader import load_model_folder
from dnalm.tokenization import build as dtok

MOTIF = "GATAAG"


def make_model_dir(folder, objective="gpt", tok_spec=None, context=96, seed=7, n_layer=2):
    tok = dtok.build_tokenizer(tok_spec or {"type": "nucleotide"})
    tok.save(folder)
    arch = dmodels.resolve_arch(objective, "tiny", {"context": context, "n_layer": n_layer})
    torch.manual_seed(seed)
    net = dmodels.build_model(objective, arch, tok.vocab_size, tok.special_ids)
    net.save_pretrained(str(folder))
    (folder / "run.json").write_text(json.dumps({"tokenizer": "t", "tokenizer_hash": tok.hash}))
    return folder


def per_base_table(n=240, length=48, seed=0) -> pd.DataFrame:
    """Random windows; bases of every MOTIF occurrence have target 1 (else 0)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        seq = list(rng.choice(list("ACGT"), length))
        for _ in range(rng.integers(0, 3)):
            p = int(rng.integers(0, length - len(MOTIF)))
            seq[p : p + len(MOTIF)] = MOTIF
        s = "".join(seq)
        t = np.zeros(length, np.float32)
        start = s.find(MOTIF)
        while start >= 0:
            t[start : start + len(MOTIF)] = 1.0
            start = s.find(MOTIF, start + 1)
        split = "train" if i < 0.7 * n else ("validation" if i < 0.85 * n else "test")
        rows.append(
            {"id": f"w{i}", "sequence": s, "split": split, "targets": ",".join(f"{v:g}" for v in t)}
        )
    df = pd.DataFrame(rows)
    df.attrs["kind"] = "per_base_regression"
    return df


def class_table(n=240, length=40, seed=1) -> pd.DataFrame:
    """GC-rich versus AT-rich sequences."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "gc" if i % 2 else "at"
        p = [0.15, 0.35, 0.35, 0.15] if label == "gc" else [0.35, 0.15, 0.15, 0.35]
        s = "".join(rng.choice(list("ACGT"), length, p=p))
        split = "train" if i < 0.7 * n else ("validation" if i < 0.85 * n else "test")
        rows.append({"id": f"s{i}", "sequence": s, "split": split, "label": label})
    df = pd.DataFrame(rows)
    df.attrs["kind"] = "classification"
    df.attrs["labels"] = ["at", "gc"]
    return df


# short runs: a short warm-up (the default 50 steps would be most of such a run)
FAST = {
    "batch_size": 16, "max_epochs": 6, "patience": 4, "lr": 1e-3, "max_shift": 3, "threads": 1,
    "warmup_steps": 5,
}  # fmt: skip


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("gpt") / "m", "gpt")


@pytest.fixture(scope="module")
def mlm_codon_dir(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("mlm") / "m", "mlm", {"type": "codon"})


def test_per_base_full_learns_motif_and_writes_outputs(gpt_dir, tmp_path):
    out = tmp_path / "run"
    rec = ft.finetune(gpt_dir, per_base_table(), out, {**FAST, "regime": "full"}, task_name="t")
    assert rec["kind"] == "per_base_regression"
    assert rec["regime"] == "full"
    assert rec["metrics"]["pearson_r"] > 0.5, rec["metrics"]
    with np.load(out / "predictions.npz") as z:
        assert z["predictions"].shape == z["targets"].shape == (36, 48)
        assert z["scored"].all()  # nucleotide tokens cover every base
    curves = pd.read_csv(out / "curves.csv")
    cols = ["epoch", "step", "train_loss", "val_loss", "val_metric", "elapsed_s", "lr"]
    assert list(curves.columns) == cols
    assert len(curves) >= 2
    assert np.isfinite(curves["val_loss"]).all()
    # the default cosine schedule: past warm-up the rate only falls, never below lr * 0.1
    assert (np.diff(curves["lr"]) < 0).all(), curves["lr"].tolist()
    assert curves["lr"].min() >= 1e-4 - 1e-12
    assert curves["lr"].max() <= 1e-3
    # the fine-tuned folder loads with the Auto class and rebuilds the same predictions
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out / "model")
    model = load_model_folder(out / "model", kind="finetuned").model
    df = per_base_table()
    test = df[df["split"] == "test"].reset_index(drop=True)
    tok = dtok.load_tokenizer(out / "model")
    cfg = FinetuneTrainConfig.from_dict(FAST)
    tf = ft.Tokenize(tok, 96, True, False, cfg)
    from dnalm.core.alphabet import encode_sequences

    codes, lengths = encode_sequences(list(test["sequence"][:4]), 48)
    batch = tf(
        {
            "codes": torch.as_tensor(codes),
            "mask": torch.as_tensor(np.arange(48)[None] < lengths[:, None]),
            "y": torch.zeros(4, 48),
        },
        torch.Generator(),
    )
    with torch.no_grad():
        again = model(batch).numpy()
    with np.load(out / "predictions.npz") as z:
        np.testing.assert_allclose(again, z["predictions"][:4], atol=1e-5)


def test_classification_partial_beats_chance(mlm_codon_dir, tmp_path):
    rec = ft.finetune(
        mlm_codon_dir,
        class_table(),
        tmp_path / "run",
        {**FAST, "regime": "partial", "freeze_layers": 1, "pooling": "cls"},
    )
    m = rec["metrics"]
    assert m["accuracy"] > m["chance_majority"] + 0.2, m
    pred = pd.read_csv(tmp_path / "run" / "predictions.tsv", sep="\t")
    assert {"id", "label", "predicted", "p_at", "p_gc"} <= set(pred.columns)
    np.testing.assert_allclose(pred["p_at"] + pred["p_gc"], 1.0, atol=1e-5)


def assert_no_outputs(out_dir):
    """A refused run leaves no result a later step could take for a finished one."""
    for name in ("metrics.json", "model", "predictions.npz", "predictions.tsv", "curves.csv"):
        assert not (out_dir / name).exists(), name


def _model(folder, regime, **kw):
    lm = load_model_folder(folder, kind="backbone").model
    cfg = FinetuneTrainConfig.from_dict({"regime": regime, **kw})
    model = ft.FinetuneModel(lm, "classification", 2, cfg)
    ft.apply_regime(model, cfg)
    return model, cfg


def test_regimes_choose_trainable_parameters(gpt_dir):
    head = None
    counts = {}
    for regime in ("frozen", "partial", "full", "lora"):
        model, _ = _model(gpt_dir, regime, freeze_layers=1)
        trainable, _total = ft.count_trainable(model)
        counts[regime] = trainable
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        if regime == "frozen":
            head = sum(p.numel() for p in model.head.parameters())
            assert trainable == head
            assert all(n.startswith("head.") for n in names)
        if regime == "partial":
            assert not any("embed" in n for n in names)
            assert not any(".layers.0." in n for n in names)
            assert any(".layers.1." in n for n in names)
        if regime == "lora":
            assert all(n.startswith("head.") or "lora_" in n for n in names)
            assert any("lora_A" in n for n in names)
    assert counts["frozen"] < counts["lora"] < counts["partial"] < counts["full"]


def test_frozen_backbone_stays_in_eval_mode(gpt_dir):
    model, _ = _model(gpt_dir, "frozen")
    model.train()
    assert not model.backbone.training
    assert model.head.training


def test_lora_merge_keeps_outputs(gpt_dir, tmp_path):
    model, _cfg = _model(gpt_dir, "lora")
    torch.manual_seed(0)
    for n, p in model.backbone.named_parameters():  # non-zero adapters (B starts at 0)
        if "lora_B" in n:
            p.data.normal_(0, 0.1)
    model.eval()
    ids = torch.randint(5, 9, (2, 12))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    with torch.no_grad():
        before = model(batch)
    assert ft.merge_lora(model) > 0
    assert not any("lora_" in n for n, _ in model.named_parameters())
    with torch.no_grad():
        after = model(batch)
    torch.testing.assert_close(before, after, atol=1e-5, rtol=1e-4)


def test_codon_tokens_map_back_to_bases(mlm_codon_dir):
    tok = dtok.load_tokenizer(mlm_codon_dir)
    cfg = FinetuneTrainConfig()
    tf = ft.Tokenize(tok, 96, True, False, cfg)
    seq = "ATGGCTTAAGC"  # 3 codons + a 2-base tail
    from dnalm.core.alphabet import encode_sequences

    codes, lengths = encode_sequences([seq], 12)
    batch = tf(
        {
            "codes": torch.as_tensor(codes),
            "mask": torch.as_tensor(np.arange(12)[None] < lengths[:, None]),
            "y": torch.zeros(1, 12),
        },
        torch.Generator(),
    )
    # BOS at token 0, codons at 1..3, EOS at 4
    assert batch["input_ids"].shape == (1, 5)
    assert batch["base_index"][0].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, -1, -1, -1]
    assert batch["mask"][0].tolist() == [True] * 9 + [False] * 3


def test_too_long_truncates_with_warning_or_errors(gpt_dir, tmp_path, caplog):
    df = per_base_table(n=60, length=120)  # 122 tokens > context 96
    with caplog.at_level(logging.WARNING):
        rec = ft.finetune(gpt_dir, df, tmp_path / "a", {**FAST, "max_epochs": 1, "max_steps": 2})
    assert rec["sequences_truncated"] == 60
    assert "context of 96" in caplog.text
    with np.load(tmp_path / "a" / "predictions.npz") as z:
        # BOS + 95 bases fit; the last 25 bases are excluded from the metrics
        assert z["scored"].sum(1).tolist() == [95] * len(z["ids"])
    with pytest.raises(InputFormatError, match="context of 96"):
        ft.finetune(gpt_dir, df, tmp_path / "b", {**FAST, "too_long": "error"})
    assert_no_outputs(tmp_path / "b")


def test_nan_target_is_named(gpt_dir, tmp_path):
    df = per_base_table(n=30)
    t = df.loc[3, "targets"].split(",")
    t[5] = "nan"
    df.loc[3, "targets"] = ",".join(t)
    with pytest.raises(InputFormatError, match=r"row w3: target at base 6 is nan"):
        ft.finetune(gpt_dir, df, tmp_path / "r", FAST)
    assert_no_outputs(tmp_path / "r")


def test_unseen_label_is_named(mlm_codon_dir, tmp_path):
    df = class_table(n=40)
    df.loc[df.index[-1], "label"] = "novel"
    df.attrs["labels"] = None
    with pytest.raises(InputFormatError, match=r"\['novel'\] occur in the test split"):
        ft.finetune(mlm_codon_dir, df, tmp_path / "r", FAST)
    assert_no_outputs(tmp_path / "r")


def test_tokenizer_mismatch_is_refused(gpt_dir, mlm_codon_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(gpt_dir, bad)
    for f in mlm_codon_dir.iterdir():  # codon tokenizer files over a nucleotide model
        if f.name.startswith(("tokenizer", "special_tokens", "dnalm_tokenizer")):
            shutil.copy2(f, bad / f.name)
    with pytest.raises(ConfigError, match="not the tokenizer the model was pretrained with"):
        ft.finetune(bad, class_table(n=40), tmp_path / "r", FAST)
    assert_no_outputs(tmp_path / "r")
    other = dtok.build_tokenizer({"type": "kmer", "k": 3}).hash
    with pytest.raises(ConfigError, match="trained with another tokenizer"):
        ft.finetune(gpt_dir, class_table(n=40), tmp_path / "r", FAST, expected_tokenizer_hash=other)


def test_random_init_is_seeded_and_differs(gpt_dir):
    a = load_model_folder(gpt_dir, kind="backbone", random_init=True, seed=0).model
    b = load_model_folder(gpt_dir, kind="backbone", random_init=True, seed=0).model
    c = load_model_folder(gpt_dir, kind="backbone").model
    wa = a.state_dict()["model.decoder.layers.0.self_attn.q_proj.weight"]
    torch.testing.assert_close(wa, b.state_dict()["model.decoder.layers.0.self_attn.q_proj.weight"])
    assert not torch.equal(wa, c.state_dict()["model.decoder.layers.0.self_attn.q_proj.weight"])


def test_bad_settings():
    with pytest.raises(ConfigError, match="regime must be one of"):
        FinetuneTrainConfig.from_dict({"regime": "half"})
    with pytest.raises(ConfigError, match="unknown fine-tuning setting"):
        FinetuneTrainConfig.from_dict({"learning_rate": 1})


def test_same_settings_resume_changed_settings_start_over(gpt_dir, tmp_path, caplog):
    df = class_table(n=60)
    cfg = {**FAST, "max_epochs": 2}
    first = ft.finetune(gpt_dir, df, tmp_path / "r", cfg)
    with caplog.at_level(logging.INFO):
        again = ft.finetune(gpt_dir, df, tmp_path / "r", cfg)  # a rerun: resumes, finished
    assert "resumed from step" in caplog.text
    assert again["metrics"]["accuracy"] == first["metrics"]["accuracy"]
    assert again["fit"]["steps"] == first["fit"]["steps"]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        other = ft.finetune(gpt_dir, df, tmp_path / "r", {**cfg, "lr": 5e-4})
    assert "settings changed" in caplog.text
    assert "lr" in caplog.text
    assert other["config"]["lr"] == 5e-4
    # the same settings on other training data (the task table was rebuilt): start over,
    # not "resume" the finished run trained on the old data
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        new = ft.finetune(gpt_dir, class_table(n=60, seed=9), tmp_path / "r", {**cfg, "lr": 5e-4})
    assert "settings changed" in caplog.text
    assert "data" in caplog.text
    assert new["fit"]["resumed_from_step"] is None


def test_standardized_head_ignores_feature_scale_and_offset():
    """With standardisation, a per-feature affine change of the pooled states (the common
    component of a briefly trained LM) leaves the logits unchanged."""
    from dnalm.modeling.heads import SequenceClassificationHead

    torch.manual_seed(0)
    head = SequenceClassificationHead(8, 3, standardize=True, dropout=0.0).train()
    hidden = torch.randn(16, 5, 8)
    shifted = hidden * 1e-2 + torch.linspace(-2, 2, 8)  # variation 1% of the offset
    torch.testing.assert_close(head(hidden), head(shifted), atol=1e-3, rtol=1e-3)
    plain = SequenceClassificationHead(8, 3, standardize=False, dropout=0.0).train()
    assert not torch.allclose(plain(hidden), plain(shifted), atol=1e-3)
    head.eval()  # running statistics; a batch of one works too
    assert head(hidden[:1]).shape == (1, 3)


def test_subsample_split_is_seeded_and_keeps_other_splits():
    df = class_table(n=100)
    a = subsample_split(df, "train", 20, seed=3)
    b = subsample_split(df, "train", 20, seed=3)
    assert (a["split"] == "train").sum() == 20
    assert a["id"].tolist() == b["id"].tolist()
    assert (a["split"] != "train").sum() == (df["split"] != "train").sum()
    assert a.attrs["kind"] == "classification"


def _arrays_for(seqs, width, kind="per_base_regression", labels=None):
    from dnalm.finetuning.data import task_arrays

    part = pd.DataFrame({"id": [f"r{i}" for i in range(len(seqs))], "sequence": seqs})
    if kind == "per_base_regression":
        part["targets"] = [",".join("0" for _ in s) for s in seqs]
    else:
        part["label"] = labels[0]
    return task_arrays(part, kind, width, labels)


def test_rc_average_per_base_is_strand_symmetric(gpt_dir, tmp_path):
    """With rc_average the per-base prediction for a window equals the flipped prediction
    for its reverse complement; without it the two differ (the model is not symmetric)."""
    from dnalm.core.alphabet import reverse_complement

    settings = {**FAST, "regime": "full", "max_epochs": 1, "rc_average": True}
    out = tmp_path / "run"
    rec = ft.finetune(gpt_dir, per_base_table(n=120), out, settings, task_name="t")
    assert rec["config"]["rc_average"] is True
    model = load_model_folder(out / "model", kind="finetuned").model
    tok = dtok.load_tokenizer(out / "model")
    # lower case and N go through the string-level reverse complement
    seqs = ["ACGTTGCAGGATAAGCTTACGNNATGCA", "ttgacGATAAGcca"]
    both = [s for x in seqs for s in (x, reverse_complement(x))]
    arrays = _arrays_for(both, 30)
    lengths = [len(s) for s in both]
    for rc_average in (True, False):
        cfg = FinetuneTrainConfig.from_dict({**settings, "rc_average": rc_average})
        pred = ft.predict_arrays(model, arrays, tok, 96, "per_base_regression", cfg)["pred"]
        for i in range(0, len(both), 2):
            n = lengths[i]
            fwd, rev = pred[i, :n], pred[i + 1, :n][::-1]
            if rc_average:
                np.testing.assert_allclose(fwd, rev, rtol=1e-5, atol=1e-6)
            else:
                assert not np.allclose(fwd, rev, atol=1e-4)
    # the test predictions written by the run are the rc-averaged ones
    test = per_base_table(n=120)
    test = test[test["split"] == "test"].reset_index(drop=True)
    cfg = FinetuneTrainConfig.from_dict(settings)
    again = ft.predict_arrays(model, _arrays_for(list(test["sequence"]), 48), tok, 96,
                              "per_base_regression", cfg)  # fmt: skip
    with np.load(out / "predictions.npz") as z:
        np.testing.assert_allclose(again["pred"], z["predictions"], atol=1e-5)


def test_rc_average_classification_is_strand_symmetric(mlm_codon_dir, tmp_path):
    from dnalm.core.alphabet import reverse_complement

    settings = {**FAST, "regime": "full", "max_epochs": 1, "rc_average": True}
    out = tmp_path / "run"
    ft.finetune(mlm_codon_dir, class_table(n=120), out, settings, task_name="t")
    model = load_model_folder(out / "model", kind="finetuned").model
    tok = dtok.load_tokenizer(out / "model")
    seqs = ["ATGGCGCCGTTAGCAGGCGCATTTAA", "GGGCCCATATTTCGAN"]  # 26 and 16 nt: partial codons
    both = [s for x in seqs for s in (x, reverse_complement(x))]
    arrays = _arrays_for(both, 26, "classification", ["at", "gc"])
    for rc_average in (True, False):
        cfg = FinetuneTrainConfig.from_dict({**settings, "rc_average": rc_average})
        logits = ft.predict_arrays(model, arrays, tok, 96, "classification", cfg)["pred"]
        prob = torch.softmax(torch.from_numpy(logits), 1).numpy()
        if rc_average:
            np.testing.assert_allclose(prob[0::2], prob[1::2], atol=1e-6)
        else:
            assert not np.allclose(prob[0::2], prob[1::2], atol=1e-5)


def test_average_strands_flips_back_within_length_and_keeps_one_strand_bases():
    from dnalm.finetuning.data import average_strands

    fwd = {
        "pred": np.array([[1.0, 2.0, 3.0, 0.0]], np.float32),
        "mask": np.array([[True, True, False, False]]),  # last base uncovered forward
        "y": np.zeros((1, 4), np.float32),
    }
    rev = {
        "pred": np.array([[10.0, 20.0, 30.0, 0.0]], np.float32),  # reverse strand order
        "mask": np.array([[True, True, True, False]]),
        "y": np.zeros((1, 4), np.float32),
    }
    out = average_strands(fwd, rev, "per_base_regression", np.array([3]))
    # base 0 <- rev base 2 (30), base 1 <- rev base 1 (20), base 2 <- rev base 0 (10) only
    np.testing.assert_allclose(out["pred"], [[15.5, 11.0, 10.0, 0.0]])
    assert out["mask"].tolist() == [[True, True, True, False]]
    reg = average_strands(
        {"pred": np.array([[1.0]], np.float32)}, {"pred": np.array([[3.0]], np.float32)},
        "regression", np.array([5]),
    )  # fmt: skip
    assert reg["pred"].tolist() == [[2.0]]


def test_selection_metric_picks_the_checkpoint_by_that_validation_metric(mlm_codon_dir, tmp_path):
    """selection_metric: accuracy (the Nucleotide Transformer post's best epoch by validation
    accuracy) scores validations by accuracy, not the kind's macro-F1; a metric the kind
    lacks stops the run naming it, with nothing written."""
    from dnalm.finetuning.data import task_objective

    y = np.array([0, 0, 0, 1])
    pred = np.eye(2)[[0, 0, 0, 0]]  # all class 0: accuracy 0.75, macro-F1 ~0.43
    _, name, metric = task_objective("classification", "accuracy")
    assert name == "accuracy"
    assert metric({"y": y, "pred": pred}) == pytest.approx(0.75)
    assert task_objective("classification")[2]({"y": y, "pred": pred}) < 0.5
    rec = ft.finetune(
        mlm_codon_dir,
        class_table(),
        tmp_path / "run",
        {**FAST, "max_epochs": 2, "regime": "frozen", "selection_metric": "accuracy"},
    )
    assert rec["selection_metric"] == "validation accuracy"
    with pytest.raises(ConfigError, match=r"'pearson_r' is not .* macro_f1, accuracy, mcc"):
        ft.finetune(
            mlm_codon_dir,
            class_table(),
            tmp_path / "bad",
            {**FAST, "regime": "frozen", "selection_metric": "pearson_r"},
        )
    assert_no_outputs(tmp_path / "bad")
