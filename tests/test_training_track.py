"""Run tracking (dnalm.training.track, the `tracking` config section): a tiny pretraining and
a tiny fine-tuning run through their real entry points with TensorBoard and with MLflow on,
and the tracked runs read back with each backend's own reader: the curves equal curves.csv
(step and value), the resolved settings and the final metrics are there. The plan refuses
a backend whose package is missing, naming it, and `none` imports no backend."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dnalm.core.config import tracking_spec
from dnalm.core.errors import ConfigError
from dnalm.finetuning.baselines import train_onehot_cnn
from dnalm.finetuning.finetune import finetune
from dnalm.plan import load
from dnalm.training.pretrain import run_pretraining
from dnalm.training.run import PretrainRun
from dnalm.training.track import BACKENDS, PACKAGES, missing_package, numbers
from tests.support.lm_corpus import make_corpus
from tests.support.tiny_models import gc_at_table, model_dir
from tests.support.workflow_runner import demo_config

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
PRETRAIN = {
    "max_steps": 8,
    "micro_batch_size": 8,
    "eval_interval": 4,
    "log_interval": 2,
    "warmup_steps": 2,
    "eval_batches": 2,
    "threads": 1,
}
FINETUNE = {"batch_size": 16, "max_epochs": 2, "lr": 1e-3, "threads": 1, "warmup_steps": 2}


def csv_curves(path: Path) -> dict[str, list[tuple[int, float]]]:
    """{column: [(step, value)]} of the non-empty, non-NaN numeric cells of curves.csv."""
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, cell in row.items():
            if key == "step" or cell == "" or math.isnan(float(cell)):
                continue
            out.setdefault(key, []).append((int(row["step"]), float(cell)))
    return out


def assert_same_curves(tracked: dict[str, list[tuple[int, float]]], path: Path) -> None:
    """The tracked curves have the columns and (step, value) points of curves.csv (which
    keeps 6 significant digits)."""
    want = csv_curves(path)
    assert want
    assert set(want) <= set(tracked), (sorted(want), sorted(tracked))
    for key, points in want.items():
        got = tracked[key]
        assert [s for s, _ in got] == [s for s, _ in points], key
        for (_, g), (_, w) in zip(got, points, strict=True):
            assert g == pytest.approx(w, rel=1e-5, abs=1e-9), key


# ----------------------------------------------------------------------- the backends' readers


def read_tensorboard(folder: Path) -> tuple[dict, dict, dict]:
    """(curves {tag: [(step, value)]}, final metrics {key: value}, config) of one run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    curves, final = {}, {}
    for tag in acc.Tags()["scalars"]:
        points = [(e.step, e.value) for e in acc.Scalars(tag)]
        if tag.startswith("final/"):
            final[tag.removeprefix("final/")] = points[-1][1]
        else:
            curves[tag] = points
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    config = json.loads(text.removeprefix("```json\n").removesuffix("\n```"))
    return curves, final, config


def read_mlflow(store: Path, name: str) -> tuple[dict, dict, dict, dict]:
    """(curves, final metrics, config, params) of the one active run `name` of the file
    store, which finished."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.resolve().as_uri())
    exp = client.get_experiment_by_name("dnalm")
    runs = client.search_runs([exp.experiment_id], f"tags.`mlflow.runName` = '{name}'")
    assert len(runs) == 1, [r.info.run_id for r in runs]  # a rerun replaced the earlier one
    run = runs[0]
    curves, final = {}, {}
    for key in run.data.metrics:
        history = sorted(
            client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp)
        )
        if key.startswith("final/"):
            final[key.removeprefix("final/")] = history[-1].value
        else:
            curves[key] = [(m.step, m.value) for m in history]
    local = client.download_artifacts(run.info.run_id, "config.json", str(store.parent))
    config = json.loads(Path(local).read_text())
    assert run.info.status == "FINISHED"
    return curves, final, config, run.data.params


def read_run(backend: str, root: Path, name: str) -> tuple[dict, dict, dict, dict | None]:
    """(curves, final metrics, config, MLflow params or None) of the tracked run `name`."""
    if backend == "tensorboard":
        return (*read_tensorboard(root / "tensorboard" / name), None)
    return read_mlflow(root / "mlruns", name)


def spec(backend: str, root: Path, run: str) -> dict[str, str]:
    return {"backend": backend, "experiment": "dnalm", "dir": str(root), "run": run}


# ----------------------------------------------------------------------------------- the runs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"), n_seqs=(40, 12, 12))


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    return model_dir(tmp_path_factory.mktemp("backbone") / "m", "opt", "gpt", context=40)


@pytest.mark.parametrize("backend", ["tensorboard", "mlflow"])
def test_pretraining_is_tracked_as_its_curves_settings_and_metrics(backend, corpus, tmp_path):
    root = tmp_path / "tracking"
    out = tmp_path / "model"
    run = PretrainRun(
        corpus, out, "gpt", "tiny", train=PRETRAIN, resume=False,
        tracking=spec(backend, root, "pretrain/tiny"),
    )  # fmt: skip
    run_pretraining(run)
    curves, final, config, params = read_run(backend, root, "pretrain/tiny")
    assert_same_curves(curves, out / "curves.csv")
    assert set(curves) >= {"train_loss", "val_loss", "lr", "tokens_seen"}
    # the resolved settings: every training setting with its default filled in
    assert config["train"]["max_steps"] == 8
    assert config["train"]["weight_decay"] == 0.1  # a default, not set above
    assert config["objective"] == "gpt"
    if params is not None:  # MLflow: the settings flattened into params too
        assert params["train.max_steps"] == "8"
        assert params["objective"] == "gpt"
    # the final metrics are metrics.json's
    metrics = json.loads((out / "metrics.json").read_text())
    want = numbers(metrics)
    assert want["model.loss"] > 0
    for key, value in want.items():
        assert final[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize("backend", ["tensorboard", "mlflow"])
def test_finetuning_is_tracked_and_a_rerun_replaces_its_run(backend, backbone, tmp_path):
    root = tmp_path / "tracking"
    out = tmp_path / "run"
    table = gc_at_table()
    tracking = spec(backend, root, "finetune/t/r")
    finetune(backbone, table, out, FINETUNE, run_name="r", task_name="t", tracking=tracking)
    # a rerun resumes the finished run from its checkpoint: the tracked run is replaced and
    # holds the rows of curves.csv once, not twice
    record = finetune(
        backbone, table, out, FINETUNE, run_name="r", task_name="t", tracking=tracking
    )
    curves, final, config, params = read_run(backend, root, "finetune/t/r")
    assert_same_curves(curves, out / "curves.csv")
    assert {"train_loss", "val_loss", "val_metric", "epoch"} <= set(curves)
    assert config["task"] == "t"
    assert config["regime"] == "frozen"  # the default regime, resolved
    assert config["max_epochs"] == 2
    if params is not None:
        assert params["max_epochs"] == "2"
    metrics = json.loads((out / "metrics.json").read_text())
    assert record["metrics"] == metrics["metrics"]
    for key, value in numbers(metrics["metrics"]).items():
        assert final[f"metrics.{key}"] == pytest.approx(value, rel=1e-6), key


def test_the_one_hot_cnn_baseline_is_tracked_like_a_fine_tuning_run(tmp_path):
    root = tmp_path / "tracking"
    out = tmp_path / "onehot_cnn"
    cfg = {"batch_size": 16, "max_epochs": 2, "channels": 8}
    tracking = spec("tensorboard", root, "finetune/t/onehot_cnn")
    train_onehot_cnn(gc_at_table(), out, config=cfg, task="t", tracking=tracking)
    curves, final, config, _ = read_run("tensorboard", root, "finetune/t/onehot_cnn")
    assert_same_curves(curves, out / "curves.csv")
    assert config["model"] == "onehot_cnn"
    assert config["channels"] == 8
    metrics = json.loads((out / "metrics.json").read_text())
    for key, value in numbers(metrics["metrics"]).items():
        assert final[f"metrics.{key}"] == pytest.approx(value, rel=1e-6), key


# ----------------------------------------------------------------------------------- the plan


def test_schema_backends_are_the_trackers():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    backend = schema["properties"]["tracking"]["properties"]["backend"]
    assert backend["enum"] == list(BACKENDS)
    assert backend["default"] == "none"


def test_backend_pins_are_the_tracking_extra():
    import tomllib

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = set(extra["optional-dependencies"]["tracking"])
    assert {f"{dist}=={version}" for _, dist, version in PACKAGES.values()} == pins
    # what the tests read back with is in the dev extra
    dev = set(extra["optional-dependencies"]["dev"])
    assert {f"{d}=={v}" for b, (_, d, v) in PACKAGES.items() if b != "wandb"} <= dev


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "none"])
def test_plan_refuses_a_backend_that_is_not_installed_naming_the_package(backend, monkeypatch):
    monkeypatch.chdir(REPO)
    config = demo_config(tracking={"backend": backend})
    missing = missing_package(backend)
    if missing is None:  # installed here: the plan takes it
        assert load(config).config["tracking"]["backend"] == backend
        return
    with pytest.raises(ConfigError) as err:
        load(config)
    assert "tracking.backend" in str(err.value)
    assert f"pip install {missing}" in str(err.value)


def test_plan_refuses_an_unknown_backend(monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError, match="tracking"):
        load(demo_config(tracking={"backend": "comet"}))


def test_backend_none_imports_no_backend_and_tracks_nothing(tmp_path):
    """The default plan, the run's tracker settings and a tracker opened from them import
    none of the backends' packages."""
    code = f"""
import json, os, sys
os.chdir({str(REPO)!r})
from tests.support.workflow_runner import demo_config
from dnalm.core.config import tracking_spec
from dnalm.plan import load
from dnalm.training.track import open_tracker
plan = load(demo_config())
spec = tracking_spec(plan.config, "pretrain/x")
with open_tracker(spec, {{"a": 1}}) as tracker:
    tracker.log_row({{"step": 1, "train_loss": 1.0}})
    tracker.log_metrics({{"loss": 1.0}}, 1)
print(json.dumps({{"backend": plan.config["tracking"]["backend"], "spec": spec,
                  "loaded": [m for m in ("tensorboard", "mlflow", "wandb") if m in sys.modules]}}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PYTHONPATH": f"{SCRIPTS}:{REPO}", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"backend": "none", "spec": None, "loaded": []}
    assert not (tmp_path / "results").exists()


def test_tracking_spec_names_the_run_and_the_folder():
    config = {"tracking": {"backend": "mlflow", "experiment": "e"}}
    assert tracking_spec(config, "finetune/t/r") == {
        "backend": "mlflow",
        "experiment": "e",
        "dir": "results/tracking",
        "run": "finetune/t/r",
    }
    with pytest.raises(ConfigError, match=r"tracking\.backend"):
        tracking_spec({}, "pretrain/x")  # a config the plan did not fill in
