"""Host synchronisations of the training steps: the loss stays on the device between log
rows, so the steps of pretraining and fine-tuning wait for the device at most once per log
interval (a curves row). Counted on CPU by wrapping every tensor-to-host conversion
(``Tensor.item``, ``float()``, ``int()``, ``bool()``, ``tolist``) and
``torch.cuda.synchronize`` on the training thread while the run trains, outside the
validation passes and checkpoint writes (which have their own, counted separately: one a
pass, ``Tensor.cpu`` included there). The DNA+text loop, whose every step is a curves row,
reads its rows from the device every READ_EVERY steps."""

from __future__ import annotations

import functools
import threading

import pandas as pd
import pytest
import torch

from dnalm.finetuning import finetune as ft
from dnalm.multimodal import train as mm_train
from dnalm.training import fit as fit_mod
from dnalm.training.pretrain import Trainer, pretrain
from tests.support.lm_corpus import make_corpus
from tests.test_finetuning_finetune import class_table, make_model_dir
from tests.test_multimodal import TEXTS, _model, tok  # noqa: F401 (tok: a fixture)

SYNCS = ("item", "__float__", "__int__", "__bool__", "tolist")


class SyncCounter:
    """Counts host synchronisations on the thread that created it while `active` (and
    not paused); other threads (the batch prefetcher) are not counted."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.active = False
        self.paused = 0
        self.count = 0
        self.where: list[str] = []

    def hit(self, name: str) -> None:
        if self.active and not self.paused and threading.get_ident() == self.thread:
            self.count += 1
            self.where.append(name)

    def wrap(self, name, fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            self.hit(name)
            return fn(*args, **kwargs)

        return inner

    def during(self, fn):
        """`fn` with counting on while it runs."""

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            self.active = True
            try:
                return fn(*args, **kwargs)
            finally:
                self.active = False

        return inner

    def outside(self, fn):
        """`fn` with counting paused while it runs (validation, checkpoints)."""

        @functools.wraps(fn)
        def inner(*args, **kwargs):
            self.paused += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self.paused -= 1

        return inner


@pytest.fixture
def counter(monkeypatch):
    c = SyncCounter()
    for name in SYNCS:
        monkeypatch.setattr(torch.Tensor, name, c.wrap(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch.cuda, "synchronize", c.wrap("synchronize", torch.cuda.synchronize))
    # a copy to the host waits for the device (on a CPU tensor it is none, but counted)
    monkeypatch.setattr(torch.Tensor, "cpu", c.wrap("cpu", torch.Tensor.cpu))
    # AdamW's step counts are host tensors whatever the device (fused AdamW on CUDA keeps
    # them on the device and reads none): its reads of them are not device syncs
    monkeypatch.setattr(torch.optim.AdamW, "step", c.outside(torch.optim.AdamW.step))
    return c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
def test_pretraining_steps_sync_at_most_once_per_log_interval(
    corpus, tmp_path, counter, monkeypatch, objective
):
    monkeypatch.setattr(Trainer, "fit", counter.during(Trainer.fit))
    for name in ("validate", "save", "try_resume"):
        monkeypatch.setattr(Trainer, name, counter.outside(getattr(Trainer, name)))
    cfg = {
        "max_steps": 24,
        "micro_batch_size": 4,
        "grad_accum": 2,
        "eval_interval": 12,
        "log_interval": 3,
        "warmup_steps": 2,
        "eval_batches": 2,
        "threads": 1,
        "test_eval": False,
    }
    pretrain(corpus, tmp_path / "m", objective, "tiny", {}, cfg, resume=False)
    intervals = cfg["max_steps"] // cfg["log_interval"]  # 8 log rows over 24 steps
    assert 0 < counter.count <= intervals, counter.where


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
def test_pretraining_validation_syncs_once(corpus, tmp_path, counter, monkeypatch, objective):
    monkeypatch.setattr(Trainer, "validate", counter.during(Trainer.validate))
    cfg = {
        "max_steps": 8,
        "micro_batch_size": 4,
        "eval_interval": 4,
        "eval_batches": 3,
        "warmup_steps": 2,
        "threads": 1,
        "test_eval": False,
    }
    pretrain(corpus, tmp_path / "m", objective, "tiny", {}, cfg, resume=False)
    assert counter.count == 3, counter.where  # the validations at steps 0, 4 and 8


def test_finetuning_steps_sync_at_most_once_per_evaluation(tmp_path, counter, monkeypatch):
    model_dir = make_model_dir(tmp_path / "base", "gpt")
    monkeypatch.setattr(fit_mod._EpochRun, "run", counter.during(fit_mod._EpochRun.run))
    monkeypatch.setattr(fit_mod, "predict", counter.outside(fit_mod.predict))
    for name in ("save", "resume"):
        monkeypatch.setattr(
            fit_mod._EpochRun, name, counter.outside(getattr(fit_mod._EpochRun, name))
        )
    settings = {"batch_size": 8, "max_epochs": 2, "lr": 1e-3, "threads": 1, "warmup_steps": 2}
    ft.finetune(model_dir, class_table(n=80), tmp_path / "run", settings, task_name="t")
    evaluations = len(pd.read_csv(tmp_path / "run" / "curves.csv"))  # one row per evaluation
    steps = 2 * -(-56 // 8)  # 2 epochs of the 56 training rows in batches of 8
    assert evaluations < steps
    assert 0 < counter.count <= evaluations, counter.where


def test_finetuning_validation_syncs_once_per_pass(tmp_path, counter, monkeypatch):
    """predict() (validation, test) keeps predictions, targets and the loss sum on the
    device and copies them to the host once at the end, not once a batch."""
    model_dir = make_model_dir(tmp_path / "base", "gpt")
    batches, passes = [], []

    def counted(fn):
        def inner(model, loader, *args, **kwargs):
            passes.append(counter.count)
            out = counter.during(fn)(model, loader, *args, **kwargs)
            batches.append(len(loader))
            passes[-1] = counter.count - passes[-1]
            return out

        return inner

    monkeypatch.setattr(fit_mod, "predict", counted(fit_mod.predict))
    settings = {"batch_size": 8, "eval_batch_size": 4, "max_epochs": 1, "lr": 1e-3}
    settings |= {"threads": 1, "warmup_steps": 2}
    ft.finetune(model_dir, class_table(n=80), tmp_path / "run", settings, task_name="t")
    assert passes, "no validation pass ran"
    assert min(batches) >= 3  # so that one sync a batch would show
    assert all(n == 1 for n in passes), (passes, counter.where)


def test_dnatext_training_reads_its_rows_once_per_interval(tok, counter, monkeypatch):  # noqa: F811
    """The DNA+text loop writes a curves row every step, but reads them from the device
    together, every READ_EVERY steps: the rows are the same as read one step at a time."""
    rows = [e["input_ids"] for e in tok.encode_batch(TEXTS[:8])]
    steps = 2 * mm_train.READ_EVERY
    cfg = {"steps": steps, "batch_size": 2, "max_len": 32, "seed": 3}
    vocab = mm_train.Vocab.of_dnatext(tok)
    torch.manual_seed(0)
    model = _model(tok)
    history = counter.during(mm_train.train_mlm)(model, rows, vocab, cfg)
    assert 0 < counter.count <= steps // mm_train.READ_EVERY, counter.where
    assert [r["step"] for r in history] == list(range(1, steps + 1))
    assert all(isinstance(r["loss"], float) for r in history)
    monkeypatch.setattr(mm_train, "READ_EVERY", 1)
    torch.manual_seed(0)
    again = mm_train.train_mlm(_model(tok), rows, vocab, cfg)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in again]


def test_dnatext_training_names_the_first_step_whose_loss_is_not_finite(tok):  # noqa: F811
    from dnalm.core.errors import TrainingDivergedError

    rows = [e["input_ids"] for e in tok.encode_batch(TEXTS[:8])]
    cfg = {"steps": 6, "batch_size": 2, "max_len": 32, "lr": 1e30}
    torch.manual_seed(0)
    with pytest.raises(TrainingDivergedError, match=r"dnatext MLM loss is (nan|inf) at step 2"):
        mm_train.train_mlm(_model(tok), rows, mm_train.Vocab.of_dnatext(tok), cfg)
