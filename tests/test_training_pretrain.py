"""Pretraining end to end on a tiny synthetic corpus: outputs, exact resume after SIGKILL,
2 processes (gloo) against 1, early stopping, and the clear errors for bad input."""

from __future__ import annotations

import csv
import json
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

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.modeling.models import count_parameters
from dnalm.training import checkpoint as ckpt
from dnalm.training.lm_eval import MarkovBaseline
from dnalm.training.pretrain import CURVE_COLUMNS, TrainingDivergedError, pretrain
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


@pytest.mark.slow
def test_two_gloo_processes_follow_the_single_process_trajectory(corpus, tmp_path):
    common = [
        "--train-set",
        "max_steps=20",
        "--train-set",
        "eval_interval=10",
        "--train-set",
        "log_interval=2",
        "--train-set",
        "eval_batches=4",
        "--train-set",
        "threads=1",
        "--train-set",
        "test_eval=false",
        "--train-set",
        "micro_batch_size=4",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(
        _cli(corpus, one, *common, "--train-set", "grad_accum=2"),
        check=True,
        env=_env(),
        capture_output=True,
    )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "dnalm.training.pretrain",
        *_cli(corpus, two, *common)[3:],
    ]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    r1, r2 = _curves(one / "curves.csv"), _curves(two / "curves.csv")
    assert [r["step"] for r in r1] == [r["step"] for r in r2]
    assert [r["tokens_seen"] for r in r1] == [r["tokens_seen"] for r in r2]
    for a, b in zip(r1[1:], r2[1:], strict=True):
        assert math.isclose(float(a["train_loss"]), float(b["train_loss"]), rel_tol=1e-4)
        if a["val_loss"]:
            assert math.isclose(float(a["val_loss"]), float(b["val_loss"]), rel_tol=1e-4)
    run2 = json.loads((two / "run.json").read_text())
    assert run2["world_size"] == 2


def test_early_stopping_stops_after_patience(corpus, tmp_path):
    run = pretrain(
        corpus,
        tmp_path / "m",
        "gpt",
        "tiny",
        {},
        {**FAST, "max_steps": 100, "patience": 1, "min_delta": 100.0, "test_eval": False},
    )
    assert run["stopped_early"]
    assert run["steps"] == 10
    assert run["best_step"] == 0


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


def test_resuming_with_another_vocabulary_or_architecture_is_rejected(tmp_path):
    corpus = make_corpus(tmp_path / "c")
    out = tmp_path / "m"
    pretrain(corpus, out, "gpt", "tiny", {}, {**FAST, "max_steps": 5, "test_eval": False})
    with pytest.raises(ConfigError, match=r"the setup changed \(arch"):
        pretrain(corpus, out, "gpt", "tiny", {"n_layer": 3}, {**FAST, "max_steps": 10})
    meta = json.loads((corpus / "meta.json").read_text())
    meta["tokenizer_hash"] = "another-tokenizer"
    (corpus / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="the vocabulary changed"):
        pretrain(corpus, out, "gpt", "tiny", {}, {**FAST, "max_steps": 10})
    # starting over is allowed
    run = pretrain(
        corpus,
        out,
        "gpt",
        "tiny",
        {"n_layer": 3},
        {**FAST, "max_steps": 5, "test_eval": False},
        resume=False,
    )
    assert run["arch"]["n_layer"] == 3


def test_non_finite_loss_stops_with_step_and_keeps_last_good_checkpoint(corpus, tmp_path):
    out = tmp_path / "m"
    with pytest.raises(TrainingDivergedError, match=r"at step \d+.*Lower `lr`"):
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
