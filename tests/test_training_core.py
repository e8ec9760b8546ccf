"""dnalm.training.core and dnalm.core.device: the pieces pretraining and fit() share (device,
precision, the weight-decay rule, early stopping, curves, the divergence error, the setup
check of checkpoints)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dnalm.core.device import select_device
from dnalm.core.errors import ConfigError, DnalmError, TrainingDivergedError
from dnalm.modeling.cnn import OneHotCNN
from dnalm.modeling.models import build_model, resolve_arch
from dnalm.training import checkpoint as ckpt
from dnalm.training import core
from dnalm.training.fit import ArrayBatches, fit

SPECIAL = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3, "mask_id": 4, "sep_id": None}


def _ids(params) -> set[int]:
    return {id(p) for p in params}


# ----------------------------------------------------------------------------- device


def test_select_device():
    assert select_device("cpu") == torch.device("cpu")
    auto = select_device("auto")
    assert select_device(None) == auto
    if torch.cuda.is_available():
        assert auto.type == "cuda"
        assert select_device("auto", local_rank=1) == torch.device("cuda", 1)
        assert select_device("cuda:0", local_rank=1) == torch.device("cuda", 0)
    else:
        assert auto.type in {"cpu", "mps"}
        with pytest.raises(ConfigError, match="no CUDA device is available"):
            select_device("cuda")
    assert select_device("cpu", local_rank=1) == torch.device("cpu")
    with pytest.raises(ConfigError, match="not a device name"):
        select_device("gpu")


# ----------------------------------------------------------------------------- weight decay


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
@pytest.mark.parametrize("tie", [True, False])
def test_language_models_decay_only_linear_weight_matrices(objective, tie):
    """Pretraining's groups stay what they were (bit-identical runs): the weight matrices
    of linear layers, and nothing else, are decayed."""
    arch = resolve_arch(objective, "tiny", {"tie_embeddings": tie})
    torch.manual_seed(0)
    model = build_model(objective, arch, 10, SPECIAL)
    groups = core.param_groups(model, 0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)} - {
        id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)
    }
    assert _ids(groups[0]["params"]) == linear_weights
    every = _ids(p for p in model.parameters())
    assert _ids(groups[0]["params"]) | _ids(groups[1]["params"]) == every
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(every)


def test_cnn_decays_kernels_and_matrices_not_biases_or_norms():
    model = torch.nn.Sequential(
        torch.nn.Embedding(5, 4),
        torch.nn.Conv1d(4, 8, 3),
        torch.nn.BatchNorm1d(8),
        torch.nn.LayerNorm(8),
        torch.nn.Linear(8, 2),
    )
    decay, no_decay = core.param_groups(model, 0.5)
    assert _ids(decay["params"]) == {id(model[1].weight), id(model[4].weight)}
    assert id(model[0].weight) in _ids(no_decay["params"])
    assert {id(model[1].bias), id(model[2].weight), id(model[3].bias)} <= _ids(no_decay["params"])
    # a subset (a frozen backbone): only those, and a group left empty is left out
    only = core.param_groups(model, 0.5, [model[4].bias])
    assert only == [{"params": [model[4].bias], "weight_decay": 0.0}]


def test_fit_uses_the_shared_weight_decay_rule(monkeypatch):
    seen = []
    adamw = torch.optim.AdamW

    def spy(groups, **kw):
        seen.append(groups)
        return adamw(groups, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    model = OneHotCNN(channels=4, kernel_size=3, dropout=0.0)
    x = torch.nn.functional.one_hot(torch.arange(96) % 4, 4).float().reshape(8, 12, 4)
    data = {"x": x, "y": torch.zeros(8, 12), "mask": torch.ones(8, 12, dtype=torch.bool)}

    def loss_fn(pred, batch):
        return ((pred - batch["y"]) ** 2).mean()

    loader = ArrayBatches(data, 4)
    fit(model, loader, loader, loss_fn, max_epochs=1, weight_decay=0.3, progress=False)
    decayed = _ids(seen[0][0]["params"])
    assert seen[0][0]["weight_decay"] == 0.3
    assert seen[0][1]["weight_decay"] == 0.0
    assert decayed == _ids(p for p in model.parameters() if p.ndim >= 2)
    assert all(p.ndim == 1 for p in seen[0][1]["params"])


# ----------------------------------------------------------------------------- early stopping


def test_early_stopping_lower_and_higher_is_better():
    es = core.EarlyStopping(2, min_delta=0.1)
    assert es.update(1.0)  # the first evaluation always improves
    assert not es.update(0.95)  # by less than min_delta
    assert es.update(0.5)
    assert not es.update(0.6)
    assert not es.stopped
    assert not es.update(0.7)
    assert es.stopped
    es2 = core.EarlyStopping(None)
    es2.load_state_dict(es.state_dict())
    assert (es2.best, es2.bad_evals, es2.stopped) == (0.5, 2, True)
    up = core.EarlyStopping(1, higher_is_better=True)
    assert up.update(-math.inf)  # a first non-finite score still counts as the best so far
    assert up.update(0.2)
    assert not up.update(0.1)
    assert up.stopped
    never = core.EarlyStopping(None)
    never.update(1.0)
    for _ in range(50):
        never.update(2.0)
    assert not never.stopped


# ----------------------------------------------------------------------------- curves


def test_write_curves_formats_and_writes_atomically(tmp_path):
    path = tmp_path / "curves.csv"
    rows = [{"step": 0, "loss": 1 / 3, "val": None}, {"step": 5, "loss": np.float64(0.25)}]
    core.write_curves(path, rows, ["step", "loss", "val"])
    assert path.read_text() == "step,loss,val\n0,0.333333,\n5,0.25,\n"
    lines = [core.curve_line(r, ["step", "loss", "val"]) for r in rows]
    core.write_curves(path, rows[:0], ["step", "loss", "val"], lines)
    assert path.read_text().splitlines()[1:] == ["0,0.333333,", "5,0.25,"]
    assert [p.name for p in tmp_path.iterdir()] == ["curves.csv"]  # no temporary left


# ----------------------------------------------------------------------------- errors, setup


def test_divergence_error_names_the_last_checkpoint(tmp_path):
    err = core.divergence_error("the training loss", math.nan, "at step 3", "lower lr", None, "")
    assert isinstance(err, TrainingDivergedError)
    assert isinstance(err, DnalmError)
    assert str(err) == "the training loss is nan at step 3: lower lr."
    err = core.divergence_error("x", math.inf, "at step 1", "fix", tmp_path, "rerun.")
    assert f"No checkpoint was written to {tmp_path} yet." in str(err)
    ckpt.save_checkpoint(tmp_path, 7, torch.nn.Linear(1, 1), {"step": 7}, best=True)
    err = core.divergence_error("x", math.inf, "at step 9", "fix", tmp_path, "rerun.")
    assert f"The last checkpoint {tmp_path / 'step-00000007'} (step 7) is intact; rerun." in (
        str(err)
    )


def test_setup_changes_names_nested_keys():
    saved = {"lr": 1e-3, "arch": {"n_layer": 2, "d_model": 64}, "seed": 0, "x": math.nan}
    now = {"lr": 1e-5, "arch": {"n_layer": 3, "d_model": 64}, "seed": 0, "x": math.nan}
    changes = ckpt.setup_changes(saved, now)
    assert list(changes) == ["arch.n_layer", "lr"]
    assert ckpt.describe_changes(changes) == (
        "arch.n_layer: checkpoint 2, now 3; lr: checkpoint 0.001, now 1e-05"
    )
    assert ckpt.setup_changes(None, {"a": 1}) == {"a": (None, 1)}
    assert ckpt.setup_changes(saved, dict(saved)) == {}


def test_precision_and_autocast():
    assert core.resolve_precision("auto", "cpu") == "fp32"
    assert core.amp_dtype("bf16") is torch.bfloat16
    assert core.amp_dtype("fp32") is None
    with core.autocast(torch.device("cpu"), "bf16"):
        assert torch.is_autocast_enabled("cpu")
    with core.autocast(torch.device("cpu"), "fp32"):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize(
    ("capability", "auto"), [((7, 0), "fp32"), ((7, 5), "fp32"), ((8, 0), "bf16"), ((9, 0), "bf16")]
)
def test_auto_precision_uses_bf16_only_where_the_gpu_has_it(monkeypatch, capability, auto):
    """precision auto on a (fake) CUDA device: bf16 from compute capability 8.0 (A100, H100),
    fp32 on a V100 (7.0) or T4 (7.5); bf16 forced on such a GPU is refused with the fix; the
    CPU stays fp32."""
    from dnalm.core.device import bf16_supported

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert bf16_supported("cuda:1") == (auto == "bf16")
    assert core.resolve_precision("auto", "cuda") == auto
    assert core.resolve_precision("auto", "cpu") == "fp32"
    assert core.resolve_precision("fp32", "cuda") == "fp32"
    if auto == "fp32":
        with pytest.raises(ConfigError, match=r"no bf16 support.*set precision: auto or fp32"):
            core.resolve_precision("bf16", "cuda:0")
    else:
        assert core.resolve_precision("bf16", "cuda:0") == "bf16"
