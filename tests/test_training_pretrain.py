"""Pretraining end to end on a tiny synthetic corpus: outputs, exact resume after SIGKILL,
2 processes (gloo) against 1, early stopping, reruns with the same or changed settings,
torch.compile, and the clear errors for bad input."""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

from dnalm.core.artifacts import TRAINER_STATE_PT
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.modeling.models import count_parameters
from dnalm.training import checkpoint as ckpt
from dnalm.training.lm_eval import MarkovBaseline
from dnalm.training.pretrain import CURVE_COLUMNS, Trainer, TrainingDivergedError, pretrain
from tests.support.lm_corpus import VOCAB, make_corpus, markov_sequences, pack

REPO = Path(__file__).resolve().parents[1]
FAST = {
    "max_steps": 30,
    "micro_batch_size": 8,
    "eval_interval": 10,
    "log_interval": 5,
    "warmup_steps": 3,
    "eval_batches": 4,
    "threads": 1,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _curves(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("objective", "auto"), [("gpt", AutoModelForCausalLM), ("mlm", AutoModelForMaskedLM)]
)
def test_pretrain_writes_a_complete_model_folder(corpus, tmp_path, objective, auto):
    out = tmp_path / "model"
    run = pretrain(corpus, out, objective, "tiny", {}, FAST, resume=False)
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "curves.csv",
        "metrics.json",
        "metrics.tsv",
        "run.json",
    ):
        assert (out / name).is_file(), name
    rows = _curves(out / "curves.csv")
    assert list(rows[0]) == CURVE_COLUMNS
    assert [int(r["step"]) for r in rows if r["val_loss"]] == [0, 10, 20, 30]
    assert int(rows[-1]["tokens_seen"]) > 0
    assert float(rows[-1]["tokens_per_s"]) > 0
    first, last = float(rows[0]["val_loss"]), float(rows[-1]["val_loss"])
    assert last < first  # it learns
    assert float(rows[0]["bits_per_nt"]) > 0
    model = auto.from_pretrained(out)
    saved = json.loads((out / "run.json").read_text())
    assert saved["params"]["total"] == count_parameters(model)["total"] == run["params"]["total"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["loss"] < math.log(len(VOCAB))
    assert math.isclose(metrics["model"]["perplexity"], math.exp(metrics["model"]["loss"]))
    assert metrics["model"]["n_targets"] == metrics["baseline"]["n_targets"] > 0
    with open(out / "metrics.tsv") as fh:
        table = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["model"] for r in table] == ["model", metrics["baseline"]["name"]]
    # the exported weights are the best checkpoint's
    best = ckpt.best_checkpoint(out / "checkpoints")
    exported, stored = load_file(out / "model.safetensors"), load_file(best / "model.safetensors")
    for key, value in stored.items():
        if key in exported:
            assert torch.equal(exported[key], value), key


def test_markov_baseline_recovers_the_entropy_of_a_markov_chain(tmp_path):
    rng = np.random.default_rng(1)
    tokens, positions = pack(markov_sequences(600, rng), 64)
    test_t, test_p = pack(markov_sequences(200, rng), 64)
    meta = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "mask_id": 4, "sep_id": None}

    def labels(tok, pos, _):
        from dnalm.training.lm_data import causal_labels

        return causal_labels(torch.from_numpy(tok), torch.from_numpy(pos), 0).numpy()

    b1 = MarkovBaseline(1, len(VOCAB)).fit(tokens, positions, 0)
    res = b1.evaluate(test_t, test_p, labels, meta, 1.0)
    h = -(0.85 * math.log(0.85) + 3 * 0.05 * math.log(0.05))  # the chain's entropy rate
    # targets are mostly chain steps; BOS->first base and last base->EOS add a little
    assert h - 0.05 < res["loss"] < h + 0.25
    assert 0.8 < res["accuracy"] < 0.9
    b0 = MarkovBaseline(0, len(VOCAB)).fit(tokens, positions, 0)
    assert b0.evaluate(test_t, test_p, labels, meta, 1.0)["loss"] > res["loss"] + 0.5


def _cli(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dnalm.training.pretrain",
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--objective",
        "gpt",
        "--preset",
        "tiny",
        *extra,
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO / "workflow" / "scripts")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.slow
def test_killed_run_resumes_to_bitwise_identical_weights(corpus, tmp_path):
    args = [
        "--model-set",
        "dropout=0.1",
        "--train-set",
        "max_steps=200",
        "--train-set",
        "eval_interval=10",
        "--train-set",
        "micro_batch_size=8",
        "--train-set",
        "eval_batches=2",
        "--train-set",
        "threads=1",
        "--train-set",
        "patience=null",
        "--train-set",
        "test_eval=false",
    ]
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cli(corpus, ref, *args), check=True, env=_env(), capture_output=True)

    proc = subprocess.Popen(
        _cli(corpus, killed, *args),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        last = ckpt.last_checkpoint(killed / "checkpoints")
        if last is not None and int(last.name.split("-")[1]) >= 20:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(ckpt.last_checkpoint(killed / "checkpoints").name.split("-")[1])
    assert killed_at < 120
    assert not (killed / "run.json").exists()

    done = subprocess.run(_cli(corpus, killed, *args), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stderr
    for name in ("model.safetensors",):
        a, b = load_file(ref / name), load_file(killed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    a = load_file(ckpt.last_checkpoint(ref / "checkpoints") / "model.safetensors")
    b = load_file(ckpt.last_checkpoint(killed / "checkpoints") / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ref_rows, res_rows = _curves(ref / "curves.csv"), _curves(killed / "curves.csv")
    assert [r["train_loss"] for r in ref_rows] == [r["train_loss"] for r in res_rows]


def test_early_stopping_stops_after_patience(corpus, tmp_path, monkeypatch):
    cfg = {**FAST, "max_steps": 100, "patience": 1, "min_delta": 100.0, "test_eval": False}
    run = pretrain(corpus, tmp_path / "m", "gpt", "tiny", {}, cfg)
    assert run["stopped_early"]
    assert run["steps"] == 10
    assert run["best_step"] == 0
    # a rerun picks the stopped run up as it is (it used to train another eval_interval)
    monkeypatch.setattr(Trainer, "train_step", lambda self, batches: pytest.fail("trained"))
    again = pretrain(corpus, tmp_path / "m", "gpt", "tiny", {}, cfg)
    assert again["stopped_early"]
    assert again["steps"] == 10


def test_checkpoint_interval_is_separate_from_validation(corpus, tmp_path, monkeypatch):
    saved = []
    real_save = ckpt.save_checkpoint

    def spy(root, step, *args, **kwargs):
        saved.append(step)
        return real_save(root, step, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", spy)
    # min_delta 0.07: the best is step 20 (the later evaluations improve by less), between
    # the checkpoints 15 and 30
    cfg = {**FAST, "eval_interval": 5, "patience": None, "min_delta": 0.07, "test_eval": False}
    sparse = pretrain(corpus, tmp_path / "s", "gpt", "tiny", {}, {**cfg, "checkpoint_interval": 15})
    assert saved == [0, 15, 30]  # not at the evaluations 5, 10, 20, 25
    saved.clear()
    every = pretrain(corpus, tmp_path / "e", "gpt", "tiny", {}, cfg)
    assert saved == [0, 5, 10, 15, 20, 25, 30]
    # the same run: validations, curves and the exported best weights (kept in memory when
    # the best fell between checkpoints, and written with the next one)
    assert sparse["best_step"] == every["best_step"] == 20
    timing = ("elapsed_s", "tokens_per_s")
    rows = [
        [{k: v for k, v in r.items() if k not in timing} for r in _curves(m / "curves.csv")]
        for m in (tmp_path / "s", tmp_path / "e")
    ]
    assert rows[0] == rows[1]
    a, b = (
        load_file(tmp_path / "s" / "model.safetensors"),
        load_file(tmp_path / "e" / "model.safetensors"),
    )
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    best = ckpt.best_checkpoint(tmp_path / "s" / "checkpoints")
    assert ckpt.folder_step(best) == sparse["best_step"]


def test_switching_keep_checkpoints_on_starts_a_finished_run_over(corpus, tmp_path, caplog):
    """keep_checkpoints keeps every checkpoint's weights (not only last and best); a finished
    run without them starts over when it is switched on, so that none is missing."""
    out = tmp_path / "m"
    cfg = {"max_steps": 10, "micro_batch_size": 8, "eval_interval": 5, "warmup_steps": 2,
           "eval_batches": 1, "threads": 1, "test_eval": False}  # fmt: skip
    pretrain(corpus, out, "gpt", "tiny", {}, cfg)
    assert ckpt.kept_checkpoints(out / "checkpoints") == []  # off by default
    with caplog.at_level("WARNING"):
        pretrain(corpus, out, "gpt", "tiny", {}, {**cfg, "keep_checkpoints": True})
    assert "keep_checkpoints" in caplog.text  # the warning names the changed setting
    assert [s for s, _ in ckpt.kept_checkpoints(out / "checkpoints")] == [0, 5, 10]


def test_context_longer_than_position_table_is_rejected(corpus, tmp_path):
    with pytest.raises(ConfigError, match=r"block_size 32, longer than the position table"):
        pretrain(corpus, tmp_path / "m", "gpt", "tiny", {"context": 16}, FAST)


def test_tokenizer_and_corpus_vocabulary_mismatch_is_rejected(tmp_path):
    corpus = make_corpus(tmp_path / "c")
    meta = json.loads((corpus / "meta.json").read_text())
    meta["vocab_size"] = len(VOCAB) + 1
    (corpus / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputFormatError, match="tokenizer has 10 tokens"):
        pretrain(corpus, tmp_path / "m", "gpt", "tiny", {}, FAST)


SHORT = {**FAST, "max_steps": 10, "eval_interval": 5, "test_eval": False}


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_finished_run_with_the_same_settings_is_picked_up_without_training(
    corpus, tmp_path, monkeypatch, caplog
):
    out = tmp_path / "m"
    first = pretrain(corpus, out, "gpt", "tiny", {}, SHORT)
    weights = (out / "model.safetensors").read_bytes()

    def no_training(self, batches):
        raise AssertionError("a finished run trained again")

    monkeypatch.setattr(Trainer, "train_step", no_training)
    # settings that do not change the weights (curve rows, threads, the test score) may differ
    again = {**SHORT, "log_interval": 2, "threads": None, "test_eval": True}
    with caplog.at_level(logging.INFO, logger="dnalm.training.pretrain"):
        run = pretrain(corpus, out, "gpt", "tiny", {}, again)
    assert "resumed from" in caplog.text
    assert not _warnings(caplog)
    assert run["steps"] == first["steps"] == 10
    assert run["best_val_loss"] == first["best_val_loss"]
    assert (out / "model.safetensors").read_bytes() == weights
    assert json.loads((out / "run.json").read_text())["train"]["log_interval"] == 2


def test_changed_lr_starts_over_with_a_warning_naming_it(corpus, tmp_path, caplog):
    """Item: a rerun with another lr and warm-up used to 'resume' the finished run and
    record the new settings in run.json without applying them."""
    out, fresh = tmp_path / "m", tmp_path / "fresh"
    pretrain(corpus, out, "gpt", "tiny", {}, {**SHORT, "lr": 1e-3, "warmup_steps": 2})
    before = load_file(out / "model.safetensors")
    changed = {**SHORT, "lr": 1e-5, "warmup_steps": 8}
    with caplog.at_level(logging.WARNING, logger="dnalm.training.pretrain"):
        run = pretrain(corpus, out, "gpt", "tiny", {}, changed)
    (warning,) = _warnings(caplog)
    assert "settings changed since the checkpoints in" in warning
    assert "step 10" in warning
    assert ": lr, warmup_steps (lr: checkpoint 0.001, now 1e-05;" in warning
    assert "starting over" in warning
    assert run["steps"] == 10
    assert run["train"]["lr"] == 1e-5
    after = load_file(out / "model.safetensors")
    assert not all(torch.equal(before[k], after[k]) for k in before)
    pretrain(corpus, fresh, "gpt", "tiny", {}, changed)  # the rerun is a fresh run, exactly
    assert _same_weights(out, fresh)
    rows = _curves(out / "curves.csv")
    assert [int(r["step"]) for r in rows if r["val_loss"]] == [0, 5, 10]


def test_changed_data_starts_over(tmp_path, caplog):
    corpus = make_corpus(tmp_path / "c")
    out = tmp_path / "m"
    pretrain(corpus, out, "gpt", "tiny", {}, SHORT)
    for kind in ("tokens", "positions"):  # same windows, same meta.json, another order
        path = corpus / f"train.{kind}.npy"
        np.save(path, np.load(path)[::-1].copy())
    with caplog.at_level(logging.WARNING, logger="dnalm.training.pretrain"):
        run = pretrain(corpus, out, "gpt", "tiny", {}, SHORT)
    (warning,) = _warnings(caplog)
    assert "settings changed since the checkpoints" in warning
    assert ": data.train (data.train: checkpoint '" in warning
    assert run["steps"] == 10


def test_changed_architecture_or_vocabulary_starts_over_with_a_warning(tmp_path, caplog):
    """Item: a run killed and rerun after an architecture change used to stop, saying to use
    'resume=False (--no-resume)', which the workflow does not offer."""
    corpus = make_corpus(tmp_path / "c")
    out = tmp_path / "m"
    cfg = {**FAST, "max_steps": 5, "test_eval": False}
    pretrain(corpus, out, "gpt", "tiny", {}, cfg)
    with caplog.at_level(logging.WARNING, logger="dnalm.training.pretrain"):
        run = pretrain(corpus, out, "gpt", "tiny", {"n_layer": 3}, cfg)
    (warning,) = _warnings(caplog)
    assert ": arch.n_layer (arch.n_layer: checkpoint 2, now 3)" in warning
    assert "starting over" in warning
    assert "no-resume" not in warning
    assert run["arch"]["n_layer"] == 3
    assert run["steps"] == 5
    caplog.clear()
    meta = json.loads((corpus / "meta.json").read_text())
    meta["tokenizer_hash"] = "another-tokenizer"
    (corpus / "meta.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="dnalm.training.pretrain"):
        pretrain(corpus, out, "gpt", "tiny", {"n_layer": 3}, cfg)
    (warning,) = _warnings(caplog)
    assert ": data.meta, tokenizer_hash (" in warning
    # a checkpoint of the older format (architecture only) is not trusted either
    last = ckpt.last_checkpoint(out / "checkpoints")
    state = ckpt.load_state(last)
    del state["format"]
    torch.save(state, last / TRAINER_STATE_PT)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnalm.training.pretrain"):
        pretrain(corpus, out, "gpt", "tiny", {"n_layer": 3}, cfg)
    (warning,) = _warnings(caplog)
    assert "were written by an older dnalm" in warning
    assert "starting over" in warning
    # resume=False (--no-resume) still starts over without a word
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnalm.training.pretrain"):
        pretrain(corpus, out, "gpt", "tiny", {"n_layer": 3}, cfg, resume=False)
    assert not _warnings(caplog)


_COMPILE_STEP = {**FAST, "max_steps": 1, "eval_interval": 1, "eval_batches": 1}


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
def test_compile_trains(corpus, tmp_path, monkeypatch, objective):
    """Item: `compile: true` crashed at the first step (the compiled wrapper's len()). One
    compiled step per objective through torch.compile's graph capture and autograd
    (backend aot_eager: seconds; test_compile_trains_with_inductor runs the default
    backend, which takes about a minute per objective on a CPU)."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    run = pretrain(
        corpus, tmp_path / "m", objective, "tiny", {}, {**_COMPILE_STEP, "compile": True}
    )
    assert run["steps"] == 1
    assert math.isfinite(run["best_val_loss"])


@pytest.mark.slow
def test_compile_trains_with_inductor(corpus, tmp_path):
    """The default backend on one objective (about a minute of C++ compilation on a CPU with a
    cold cache); both objectives go through graph capture in test_compile_trains."""
    cfg = {**_COMPILE_STEP, "compile": True, "test_eval": False}
    run = pretrain(corpus, tmp_path / "m", "gpt", "tiny", {}, cfg)
    assert run["steps"] == 1
    assert math.isfinite(run["best_val_loss"])


def test_non_finite_loss_stops_with_step_and_keeps_last_good_checkpoint(corpus, tmp_path):
    out = tmp_path / "m"
    with pytest.raises(TrainingDivergedError, match=r"at step \d+ \(epoch 1.*lower `lr`") as err:
        pretrain(
            corpus,
            out,
            "gpt",
            "tiny",
            {},
            {**FAST, "lr": 1e12, "warmup_steps": 0, "grad_clip": 0, "eval_interval": 1},
        )
    last = ckpt.last_checkpoint(out / "checkpoints")
    assert last is not None
    assert f"The last checkpoint {last} (step " in str(err.value)
    weights = load_file(last / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert not (out / "model.safetensors").exists()
    assert not (out / "run.json").exists()


def test_empty_validation_split_is_a_clear_error(tmp_path):
    corpus = make_corpus(tmp_path / "c", empty=("validation",))
    with pytest.raises(InputFormatError, match="validation split is empty"):
        pretrain(corpus, tmp_path / "m", "gpt", "tiny", {}, FAST)


def test_unknown_training_setting_is_rejected(corpus, tmp_path):
    with pytest.raises(ConfigError, match="unknown training setting 'learning_rate'"):
        pretrain(corpus, tmp_path / "m", "gpt", "tiny", {}, {"learning_rate": 1e-3})
