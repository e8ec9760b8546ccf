"""dnalm.training.fit.fit: checkpoints, exact resume, precision and the non-finite-loss error.

The training setup (a small one-hot CNN on a synthetic per-base task, with dropout and
shift / reverse-complement augmentations that draw from the loader's generator, so every
RNG stream matters) lives in one script, SCRIPT. In-process tests load its `build()`;
the kill test runs it as a real process, SIGKILLs it once its first checkpoint exists and
runs it again to completion."""

from __future__ import annotations

import itertools
import json
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from dnalm.core.artifacts import TRAINER_STATE_PT, WEIGHTS_SAFETENSORS
from dnalm.core.errors import ConfigError, DnalmError, TrainingDivergedError
from dnalm.training import checkpoint as ckpt
from dnalm.training.fit import ArrayBatches, fit, predict, resolve_precision
from dnalm.training.loop import lr_factor

SCRIPT = '''
"""Train a small one-hot CNN with dnalm.training.fit.fit (used by tests/test_training_fit.py).

usage: python script.py CHECKPOINT_DIR OUT_PREFIX MAX_STEPS EVAL_EVERY"""
import json
import sys

import numpy as np
import torch

from dnalm.training.fit import ArrayBatches, fit
from dnalm.modeling.cnn import OneHotCNN
from dnalm.core.alphabet import encode_sequences, one_hot
from dnalm.training.augment import random_reverse_complement, shift_crop


def build(model_seed=0, channels=8, n=128, length=40, batch_size=16, y=None):
    """(model, train loader, val loader, loss_fn) of a synthetic per-base task: bases of a
    'TATA' site score 5, all others 0. 96 training sequences = 6 batches per epoch."""
    rng = np.random.default_rng(0)
    seqs = []
    for _ in range(n):
        s = "".join(rng.choice(list("ACGT"), length))
        at = int(rng.integers(0, length - 4))
        seqs.append(s[:at] + "TATA" + s[at + 4:])
    codes, lengths = encode_sequences(seqs, length)
    if y is None:
        y = np.zeros((n, length), np.float32)
        for i, s in enumerate(seqs):
            for j in range(length - 3):
                if s[j:j + 4] == "TATA":
                    y[i, j:j + 4] = 5.0
    mask = np.arange(length)[None, :] < lengths[:, None]
    data = {"codes": codes, "y": y, "mask": mask}
    n_train = 96

    def augment(batch, gen):
        batch = shift_crop(batch, 3, gen)
        batch = dict(random_reverse_complement(batch, gen, per_base=True))
        batch["x"] = one_hot(batch.pop("codes"))  # (B, L, 4)
        return batch

    def plain(batch, gen):
        batch = dict(batch)
        batch["x"] = one_hot(batch.pop("codes"))
        return batch

    train = ArrayBatches({k: v[:n_train] for k, v in data.items()}, batch_size, shuffle=True,
                         seed=0, transform=augment)
    val = ArrayBatches({k: v[n_train:] for k, v in data.items()}, 64, transform=plain)
    torch.manual_seed(model_seed)
    model = OneHotCNN(channels, kernel_size=5, dropout=0.3)

    def loss_fn(pred, batch):
        m = batch["mask"].to(pred.dtype)  # (B, L)
        return ((pred - batch["y"]) ** 2 * m).sum() / m.sum()

    return model, train, val, loss_fn


def val_metric(out):
    return -float(((out["pred"] - out["y"]) ** 2 * out["mask"]).mean())


if __name__ == "__main__":
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    ckpt_dir, out, max_steps, eval_every = sys.argv[1:5]
    model, train, val, loss_fn = build()
    res = fit(model, train, val, loss_fn, val_metric=val_metric, max_epochs=1000,
              patience=1000, lr=3e-3, max_steps=int(max_steps), eval_every=int(eval_every),
              checkpoint_dir=ckpt_dir, progress=False)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out + ".tmp")
    with open(out + ".json", "w") as fh:
        json.dump({"curves": res.curves, "steps": res.steps,
                   "resumed_from_step": res.resumed_from_step}, fh)
    import os
    os.replace(out + ".tmp", out)
'''

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fit_script") / "train_small.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def setup(script):
    """The script's build() and val_metric, loaded in this process."""
    ns = runpy.run_path(str(script), run_name="fit_script")
    return ns["build"], ns["val_metric"]


def _fit(setup, ckpt_dir=None, model_seed=0, channels=8, frozen_conv_seed=None, **kw):
    build, val_metric = setup
    model, train, val, loss_fn = build(model_seed=model_seed, channels=channels)
    if frozen_conv_seed is not None:  # a frozen "backbone" of its own seed, not model_seed's
        torch.manual_seed(frozen_conv_seed)
        model.conv.reset_parameters()
        model.conv.requires_grad_(False)
    args = {"val_metric": val_metric, "max_epochs": 1000, "patience": 1000, "lr": 3e-3}
    args["progress"] = False
    args.update(kw)
    res = fit(model, train, val, loss_fn, checkpoint_dir=ckpt_dir, **args)
    return model, res


def _no_time(curves):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in curves]


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"tensor {k} differs"


def _last_weights(root: Path) -> bytes:
    return (ckpt.last_checkpoint(root) / WEIGHTS_SAFETENSORS).read_bytes()


# ----------------------------------------------------------------------------- exact resume


COSINE = {"warmup_steps": 3, "lr_schedule": "cosine", "decay_steps": 20}


@pytest.mark.parametrize(
    ("first", "full"),
    [
        # stop mid-epoch (step 8 = epoch 2, batch 2), evaluations every 4 steps
        ({"max_steps": 8, "eval_every": 4}, {"max_steps": 20, "eval_every": 4}),
        # stop at an epoch end (6 batches per epoch) that is also an evaluation
        ({"max_steps": 6, "eval_every": 3}, {"max_steps": 15, "eval_every": 3}),
        # one evaluation per epoch, stop after 2 of 4 epochs
        ({"max_epochs": 2}, {"max_epochs": 4}),
        # stopped during the learning-rate warm-up (the lr is a function of the step)
        (
            {"max_steps": 8, "eval_every": 4, "warmup_steps": 12},
            {"max_steps": 20, "eval_every": 4, "warmup_steps": 12},
        ),
        # warm-up then cosine decay over a fixed span, stopped mid-decay
        (
            {"max_steps": 10, "eval_every": 5, **COSINE},
            {"max_steps": 20, "eval_every": 5, **COSINE},
        ),
        # a frozen part (checkpoints hold only the trained parameters and buffers)
        (
            {"max_steps": 8, "eval_every": 4, "frozen_conv_seed": 0},
            {"max_steps": 20, "eval_every": 4, "frozen_conv_seed": 0},
        ),
    ],
    ids=["mid_epoch", "epoch_end", "per_epoch", "mid_warmup", "cosine", "frozen_part"],
)
def test_resumed_run_equals_uninterrupted(setup, tmp_path, first, full):
    torch.manual_seed(123)
    plain_model, plain = _fit(setup, None, **full)
    ref_model, ref = _fit(setup, tmp_path / "ref", **full)
    # checkpointing changes nothing in the run itself
    _assert_same_weights(plain_model.state_dict(), ref_model.state_dict())
    assert _no_time(plain.curves) == _no_time(ref.curves)

    root = tmp_path / "split"
    _, part = _fit(setup, root, **first)
    assert part.resumed_from_step is None
    assert part.steps < ref.steps
    torch.manual_seed(999)  # a different global RNG and different initial weights
    model, res = _fit(setup, root, model_seed=7, **full)
    assert res.resumed_from_step == part.steps
    _assert_same_weights(model.state_dict(), ref_model.state_dict())
    assert _no_time(res.curves) == _no_time(ref.curves)
    assert (res.steps, res.epochs_run, res.best_step, res.best_epoch) == (
        ref.steps,
        ref.epochs_run,
        ref.best_step,
        ref.best_epoch,
    )
    assert res.best_val_metric == ref.best_val_metric
    # the last checkpoints hold the same weights byte for byte
    assert _last_weights(root) == _last_weights(tmp_path / "ref")
    state = ckpt.load_state(ckpt.last_checkpoint(root))
    assert state["step"] == ref.steps
    assert _no_time(state["curves"]) == _no_time(ref.curves)

    # a finished run returns at once with the best weights and trains nothing more
    model2, again = _fit(setup, root, model_seed=3, **full)
    assert again.resumed_from_step == ref.steps
    assert again.steps == ref.steps
    assert _no_time(again.curves) == _no_time(ref.curves)
    _assert_same_weights(model2.state_dict(), ref_model.state_dict())


def test_resume_logs_and_best_weights_come_from_best_checkpoint(setup, tmp_path, caplog):
    """The best weights survive a resume: they are read from the folder best.json names."""
    root = tmp_path / "ck"
    ref_model, ref = _fit(setup, tmp_path / "ref", max_steps=24, eval_every=4, lr=2e-2)
    _fit(setup, root, max_steps=12, eval_every=4, lr=2e-2)
    with caplog.at_level("INFO", logger="dnalm"):
        model, res = _fit(setup, root, max_steps=24, eval_every=4, lr=2e-2)
    assert "resumed from step 12" in caplog.text
    best = ckpt.best_checkpoint(root)
    assert ckpt.load_state(best)["step"] == res.best_step == ref.best_step
    _assert_same_weights(model.state_dict(), ref_model.state_dict())
    saved = load_file(str(best / WEIGHTS_SAFETENSORS))
    for k, v in saved.items():
        assert torch.equal(v, model.state_dict()[k])


def test_resume_repairs_best_pointer_after_kill_between_pointer_writes(setup, tmp_path):
    """save_checkpoint writes last.json, then best.json: a kill in between leaves best.json
    stale (here: absent). The trainer state knows the best is the last checkpoint."""
    ref_model, ref = _fit(setup, tmp_path / "ref", max_steps=12, eval_every=2)
    root = tmp_path / "ck"
    _fit(setup, root, max_steps=2, eval_every=2)  # one checkpoint: last == best
    (root / "best.json").unlink()
    model, res = _fit(setup, root, max_steps=12, eval_every=2)
    assert res.resumed_from_step == 2
    _assert_same_weights(model.state_dict(), ref_model.state_dict())
    assert ckpt.load_state(ckpt.best_checkpoint(root))["step"] == ref.best_step


def test_array_batches_state_round_trip(setup):
    build, _ = setup
    _, train, _, _ = build()
    state = train.get_state()
    first = list(train)  # shuffled and augmented with the generator
    second = list(train)
    assert not torch.equal(first[0]["x"], second[0]["x"])  # a new order every pass
    train.set_state(state)
    again = list(train)
    assert len(again) == len(first) == 6
    for a, b in zip(first, again, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k])


@pytest.mark.parametrize("own_generator", [True, False])
def test_dataloader_resumes_exactly(tmp_path, own_generator):
    """A torch DataLoader is resumed through its generator, or without one through the
    global RNG state at the epoch start (the sampler draws its seed from it)."""

    def make():
        torch.manual_seed(0)
        x = torch.randn(60, 6)
        data = [{"x": x[i], "y": x[i].sum()} for i in range(60)]
        gen = torch.Generator().manual_seed(5) if own_generator else None
        train = torch.utils.data.DataLoader(data[:48], batch_size=8, shuffle=True, generator=gen)
        val = torch.utils.data.DataLoader(data[48:], batch_size=12)
        model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.2))
        model.append(torch.nn.Linear(16, 1))
        return model, train, val

    def forward(model, batch):
        return model(batch["x"]).squeeze(-1)  # (B,)

    def loss_fn(pred, batch):
        return torch.nn.functional.mse_loss(pred, batch["y"])

    def run(root, max_steps):
        model, train, val = make()
        res = fit(
            model,
            train,
            val,
            loss_fn,
            forward=forward,
            max_steps=max_steps,
            eval_every=4,
            patience=99,
            max_epochs=99,
            checkpoint_dir=root,
            progress=False,
        )
        return model, res

    ref_model, ref = run(tmp_path / "ref", 20)
    run(tmp_path / "split", 8)  # stops in epoch 2 (6 batches per epoch)
    model, res = run(tmp_path / "split", 20)
    assert res.resumed_from_step == 8
    _assert_same_weights(model.state_dict(), ref_model.state_dict())
    assert _no_time(res.curves) == _no_time(ref.curves)


# ----------------------------------------------------------------------------- killed process


def test_sigkilled_process_resumes_to_identical_weights(script, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow" / "scripts"))
    env.pop("DNALM_SHARED_DATA", None)
    steps, every = "300", "10"

    def cmd(root: Path, out: Path) -> list[str]:
        return [sys.executable, str(script), str(root), str(out), steps, every]

    ref_out, out = tmp_path / "ref.safetensors", tmp_path / "run.safetensors"
    root = tmp_path / "ck"
    # the uninterrupted reference and the run to be killed start together
    ref = subprocess.Popen(cmd(tmp_path / "ref_ck", ref_out), env=env, stderr=subprocess.PIPE)
    victim = subprocess.Popen(cmd(root, out), env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while ckpt.last_checkpoint(root) is None and victim.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, victim.stderr.read().decode()
    assert not out.exists(), "the run finished before it could be killed"
    killed_at = ckpt.load_state(ckpt.last_checkpoint(root))["step"]
    assert 10 <= killed_at < 300

    done = subprocess.run(cmd(root, out), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()
    info = json.loads((tmp_path / "run.safetensors.json").read_text())
    ref_info = json.loads((tmp_path / "ref.safetensors.json").read_text())
    assert info["resumed_from_step"] >= killed_at
    assert info["steps"] == ref_info["steps"] == 300
    _assert_same_weights(load_file(str(out)), load_file(str(ref_out)))
    assert _no_time(info["curves"]) == _no_time(ref_info["curves"])
    assert len(info["curves"]) == 30


# ----------------------------------------------------------------------------- refusals


def test_changed_architecture_or_setup_is_a_config_error(setup, tmp_path):
    root = tmp_path / "ck"
    _fit(setup, root, max_steps=4, eval_every=2)
    before = _last_weights(root)
    with pytest.raises(ConfigError, match="different model architecture") as err:
        _fit(setup, root, channels=12, max_steps=8, eval_every=2)
    assert str(root) in str(err.value)
    assert "Delete the folder" in str(err.value)
    assert "conv.weight: [8, 4, 5] -> [12, 4, 5]" in str(err.value)
    with pytest.raises(ConfigError, match=r"setup changed \(lr: checkpoint 0.003, now 0.01\)"):
        _fit(setup, root, lr=1e-2, max_steps=8, eval_every=2)
    assert _last_weights(root) == before  # refused runs leave the checkpoint alone


def test_checkpoint_of_the_old_format_is_refused_naming_the_folder(setup, tmp_path):
    root = tmp_path / "ck"
    _fit(setup, root, max_steps=2, eval_every=2)
    last = ckpt.last_checkpoint(root)
    state = ckpt.load_state(last)
    state["format"] = "dnalm.baselines.fit/1"  # before the shared weight-decay rule
    torch.save(state, last / TRAINER_STATE_PT)
    with pytest.raises(ConfigError, match=r"older dnalm .* Delete the folder") as err:
        _fit(setup, root, max_steps=4, eval_every=2)
    assert str(root) in str(err.value)


def test_pretraining_checkpoint_is_refused(setup, tmp_path):
    build, _ = setup
    model, *_ = build()
    ckpt.save_checkpoint(tmp_path, 5, model, {"step": 5, "fingerprint": {}}, best=True)
    with pytest.raises(ConfigError, match="not a checkpoint of a fine-tuning"):
        _fit(setup, tmp_path, max_steps=8, eval_every=2)


# ----------------------------------------------------------------------------- non-finite loss


def test_nan_targets_name_the_step_and_keep_the_checkpoint(setup, tmp_path):
    build, val_metric = setup
    model, train, val, loss_fn = build()
    y = train.arrays["y"].clone()
    y[2 * 16 + 5, 7] = float("nan")  # in the third batch of an unshuffled epoch
    train = ArrayBatches({**train.arrays, "y": y}, 16, transform=train.transform)
    root = tmp_path / "ck"
    with pytest.raises(TrainingDivergedError) as err:
        fit(
            model,
            train,
            val,
            loss_fn,
            val_metric=val_metric,
            eval_every=2,
            checkpoint_dir=root,
            progress=False,
        )
    msg = str(err.value)
    assert "at step 3 (epoch 1, batch 3)" in msg
    assert "1 NaN/inf value(s)" in msg
    assert "check the task's targets for NaN" in msg
    last = ckpt.last_checkpoint(root)
    assert ckpt.load_state(last)["step"] == 2
    assert str(last) in msg


def test_divergence_names_the_step_and_suggests_lower_lr(setup):
    build, _ = setup
    model, train, val, loss_fn = build()
    with pytest.raises(TrainingDivergedError) as err:
        fit(model, train, val, loss_fn, lr=1e30, grad_clip=None, progress=False)
    assert isinstance(err.value, DnalmError)  # one line in the log, no traceback
    msg = str(err.value)
    assert "the training loss is nan" in msg
    assert "at step 2 " in msg
    assert "lower the learning rate (lr=1e+30)" in msg


# ----------------------------------------------------------------------------- precision


def test_precision_resolution():
    assert resolve_precision("auto", "cpu") == "fp32"
    # auto on CUDA depends on the GPU's bf16 support: tests/test_training_core.py
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(ConfigError, match="precision must be one of"):
        resolve_precision("fp16", "cpu")


def test_bf16_autocast_trains_and_predicts_in_float32(setup):
    build, _ = setup
    model, res = _fit(setup, None, max_steps=6, eval_every=3, precision="bf16")
    assert res.precision == "bf16"
    assert all(np.isfinite(r["val_loss"]) for r in res.curves)
    _, _, val, loss_fn = build()
    out16 = predict(model, val, loss_fn=loss_fn, precision="bf16")
    out32 = predict(model, val, loss_fn=loss_fn, precision="fp32")
    assert out16["pred"].dtype == out32["pred"].dtype == np.float32
    # bf16 keeps ~3 significant digits: close to fp32, but not the same numbers
    assert not np.array_equal(out16["pred"], out32["pred"])
    np.testing.assert_allclose(out16["pred"], out32["pred"], atol=0.1, rtol=0.05)
    _, fp32 = _fit(setup, None, max_steps=6, eval_every=3)
    assert fp32.precision == "fp32"


def test_frozen_part_is_not_checkpointed_and_must_match_on_resume(setup, tmp_path):
    root = tmp_path / "ck"
    model, _ = _fit(setup, root, max_steps=4, eval_every=2, frozen_conv_seed=0)
    saved = load_file(str(ckpt.last_checkpoint(root) / WEIGHTS_SAFETENSORS))
    frozen = {k for k in model.state_dict() if k.startswith("conv.")}
    assert frozen
    assert not frozen & set(saved)  # the frozen conv is left out...
    assert set(saved) == set(model.state_dict()) - frozen  # ...all else is there
    full_root = tmp_path / "full"
    _fit(setup, full_root, max_steps=4, eval_every=2)
    full = (ckpt.last_checkpoint(full_root) / WEIGHTS_SAFETENSORS).stat().st_size
    assert (ckpt.last_checkpoint(root) / WEIGHTS_SAFETENSORS).stat().st_size < full
    # resuming onto other frozen weights would silently train another model: refused
    with pytest.raises(ConfigError, match="frozen_weights_sha256"):
        _fit(setup, root, max_steps=8, eval_every=2, frozen_conv_seed=5)


def test_lr_factor_warmup_then_cosine():
    # linear warm-up: (step + 1) / warmup
    assert [lr_factor(i, 4) for i in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    f = [lr_factor(i, 4, 24, "cosine", 0.1) for i in range(30)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == 1.0  # the decay starts at the end of the warm-up...
    assert f[14] == pytest.approx(0.55)  # ...is half-way at its middle...
    assert f[24] == f[29] == pytest.approx(0.1)  # ...and stays at the floor after the budget
    assert all(a > b for a, b in itertools.pairwise(f[4:25]))
    assert lr_factor(10, 0, 20, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_factor(7, 0, None, "cosine") == 1.0  # no budget: nothing to decay towards
    with pytest.raises(ConfigError, match="lr_schedule must be one of"):
        lr_factor(0, 0, 10, "linear")


def test_cosine_decays_to_the_floor_and_curves_record_the_rate(setup):
    _, res = _fit(setup, None, max_steps=12, eval_every=3, lr=1e-2, lr_schedule="cosine",
                  min_lr_ratio=0.2)  # fmt: skip
    lrs = [r["lr"] for r in res.curves]
    # the rate of the step before each evaluation (steps 2, 5, 8, 11 of a 12-step budget)
    assert lrs == pytest.approx([1e-2 * lr_factor(k, 0, 12, "cosine", 0.2) for k in (2, 5, 8, 11)])
    assert lrs[0] > 0.9e-2
    assert 0.2e-2 < lrs[-1] < 0.22e-2


def test_cosine_checkpoint_of_another_budget_is_refused(setup, tmp_path):
    root = tmp_path / "ck"
    _fit(setup, root, max_steps=6, eval_every=3, lr_schedule="cosine")
    with pytest.raises(ConfigError, match=r"total_steps: checkpoint 6, now 12"):
        _fit(setup, root, max_steps=12, eval_every=3, lr_schedule="cosine")


def test_warmup_changes_the_run(setup):
    torch.manual_seed(0)
    a, _ = _fit(setup, None, max_steps=6, eval_every=3)
    torch.manual_seed(0)
    b, _ = _fit(setup, None, max_steps=6, eval_every=3, warmup_steps=10)
    torch.manual_seed(0)
    c, _ = _fit(setup, None, max_steps=6, eval_every=3, warmup_steps=1)  # lr from step 1
    _assert_same_weights(a.state_dict(), c.state_dict())
    assert any(
        not torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
