"""The README's main-job command, run exactly as written (extracted by
tests/support/readme.py), on a copy of the repository in an empty folder with nothing beside
it: no ../shared, no virtual environment, no results. It must set up, run the embedded demo
end to end and write the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support.readme import readme_commands
from tests.support.result_checks import check_checkpoint_analytics

REPO = Path(__file__).resolve().parents[1]


def repository_files() -> list[str]:
    """What a fresh clone holds: tracked files and untracked files git does not ignore."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def fresh_copy(dest: Path) -> Path:
    for rel in repository_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    return dest


def clean_env() -> dict[str, str]:
    """The environment of a new shell: no virtual environment of ours on PATH, no pointer to
    the shared data."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env.pop("DNALM_SHARED_DATA", None)
    venv_bin = str(REPO / ".venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    return env


def test_readme_has_two_commands():
    cmds = readme_commands()
    assert cmds["main"].startswith("python3 -m venv .venv")
    assert "--configfile tests/config/demo.yaml" in cmds["main"]
    assert "--report results/report.html" in cmds["main"]
    assert cmds["tests"] == "bash tests/run.sh"


def test_demo_config_needs_nothing_outside_the_repository():
    for name in ("demo.yaml", "demo_samples.tsv"):
        text = (REPO / "tests" / "config" / name).read_text()
        assert "shared" not in text, name
        assert "http" not in text, name
    sheet = pd.read_csv(REPO / "tests/config/demo_samples.tsv", sep="\t", comment="#")
    for col in ("source", "annotation"):
        for value in sheet[col].dropna():
            assert (REPO / value).is_file(), value
    size = sum(p.stat().st_size for p in (REPO / "tests" / "data").rglob("*") if p.is_file())
    assert size <= 8 * 1024 * 1024, f"the embedded demo data is {size} bytes, over 8 MB"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The README's main command, once, in a fresh copy in an empty folder (every test below
    reads its results; --dist loadfile keeps them on one worker)."""
    empty = tmp_path_factory.mktemp("readme") / "empty"
    empty.mkdir()
    repo = fresh_copy(empty / "dnalm")
    assert not (empty / "shared").exists()
    assert not (repo / ".venv").exists()
    proc = subprocess.run(
        ["bash", "-c", readme_commands()["main"]],
        cwd=repo,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=2700,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    return repo


@pytest.mark.slow
def test_main_command_runs_from_a_fresh_copy(demo_run):
    repo = demo_run
    report = repo / "results" / "report.html"
    assert report.is_file()
    assert report.stat().st_size > 1_000_000
    for task in ("tf_binding", "oct4_vs_mafk", "species_fragments"):
        table = pd.read_csv(repo / "results" / "finetune" / task / "comparison.tsv", sep="\t")
        assert len(table) >= 2, task
    probe = pd.read_csv(repo / "results" / "probe" / "probe_table.tsv", sep="\t")
    assert (probe["accuracy"] > 0).all()
    models = sorted(p.name for p in (repo / "results" / "models").iterdir() if p.is_dir())
    named = ["esm_kmer6", "gpt_codon", "gpt_nucleotide", "llama_regions", "mamba2_tf"]
    named += ["mamba_tf", "mlm_bpe", "mlm_kmer6", "modernbert_kmer6", "neox_genome"]
    sweep = [f"sweep_tiny_gpt_tiny-D32_{b}" for b in (4096, 8192, 16384)]
    assert models == sorted(named + sweep)


# the demo's pretraining models: objective, architecture, loss, steps (tests/config/demo.yaml);
# each further architecture and loss runs here, not in the shared-data run
DEMO_MODELS = {
    "gpt_nucleotide": ("gpt", "opt", "ce", 40),
    "gpt_codon": ("gpt", "opt", "ce", 40),
    "mlm_kmer6": ("mlm", "bert", "ce", 40),
    "mlm_bpe": ("mlm", "bert", "ce", 40),
    "neox_genome": ("gpt", "gpt_neox", "rc", 20),
    "llama_regions": ("gpt", "llama", "two_d_ce", 20),
    "mamba_tf": ("gpt", "mamba", "headless", 10),
    "mamba2_tf": ("gpt", "mamba2", "two_d", 10),
    "modernbert_kmer6": ("mlm", "modernbert", "ce", 20),
    "esm_kmer6": ("mlm", "esm", "ce", 20),
}


@pytest.mark.slow
@pytest.mark.parametrize("model", DEMO_MODELS)
def test_demo_model_folders_load_and_record_their_kind(demo_run, model, monkeypatch):
    """Every architecture and loss: the folder loads offline with the Auto classes and scores
    finite logits, run.json records the architecture, the training loss went down, and a
    further loss is reported beside plain cross-entropy, which stays comparable."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    import dnalm  # noqa: F401  (registers the project's classes with the Auto classes)

    objective, arch, loss, steps = DEMO_MODELS[model]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = demo_run / f"results/models/{model}"
    auto = AutoModelForCausalLM if objective == "gpt" else AutoModelForMaskedLM
    lm = auto.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok("ATGGCTAAAGGTGAAGAACTGTTTACCGGTGTTGTTCCG", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = lm(input_ids=ids).logits
    assert logits.shape[:2] == ids.shape
    assert torch.isfinite(logits).all()
    run_json = json.loads((folder / "run.json").read_text())
    assert run_json["architecture"] == arch
    assert run_json["params"]["total"] == sum(p.numel() for p in lm.parameters())
    curves = pd.read_csv(folder / "curves.csv")
    assert curves["step"].max() == steps
    first, last = curves["train_loss"].dropna().iloc[[0, -1]]
    assert last < first, "training loss (the loss being optimised) did not decrease"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics.get("loss", "ce") == loss
    for key in ("loss", "perplexity", "bits_per_nt", "accuracy"):
        assert np.isfinite(metrics["model"][key])
    if loss == "ce":
        assert 0 < metrics["model"]["bits_per_nt"] < 2.5
    else:
        assert np.isfinite(metrics["model"]["loss_objective"])
        assert curves["val_loss_objective"].notna().any()
        assert 0 < metrics["model"]["bits_per_nt"] < 8


@pytest.mark.slow
def test_demo_scaling_sweep_is_fitted_and_reported(demo_run):
    """The demo's sweep (1 width of the tiny GPT x 3 token budgets): FLOPs as the formula
    gives them, a power law fitted (not refused) on >= 3 frontier points, its tables and
    figure in the report; sweep runs are neither in the pretraining table nor probed."""
    from tests.support.browser import report_images

    run = demo_run
    df = pd.read_csv(run / "results/sweeps/tiny_gpt/summary.tsv", sep="\t")
    assert len(df) == 3
    assert sorted(df["steps"]) == [4, 8, 16]  # 4096/8192/16384 tokens of 8 x 128
    df = df.sort_values("budget_tokens")
    assert df["flops"].is_monotonic_increasing
    assert df["non_embedding_params"].nunique() == 1
    # the FLOPs per token of a size: 6 N + 12 x n_layer x block_size x d_model
    expected = 6 * df["non_embedding_params"] + 12 * df["n_layer"] * 128 * df["d_model"]
    assert np.allclose(df["flops_per_token"], expected)
    assert np.allclose(df["flops"], df["flops_per_token"] * df["tokens_seen"])
    assert (df["test_bits_per_nt"] > 0).all()
    fit = pd.read_csv(run / "results/sweeps/tiny_gpt/fit.tsv", sep="\t").set_index("name")
    assert fit.loc["status", "value"] == "fitted", fit.loc["status", "value"]
    assert int(fit.loc["points", "value"].split()[0]) >= 3
    assert float(fit.loc["b", "value"]) > 0  # more compute, lower test bits/nt
    models = pd.read_csv(run / "results/models/summary.tsv", sep="\t")
    assert not models["model"].str.startswith("sweep_").any()
    assert not list((run / "results/probe/embeddings").rglob("sweep_*"))
    files = report_images(run / "results/report.html")
    for key in ("results/sweeps/tiny_gpt/summary.tsv", "results/sweeps/tiny_gpt/fit.tsv"):
        assert key in files
        assert files[key].caption.strip(), f"{key} has no caption"
    assert "results/figures/sweeps/tiny_gpt/scaling.png" in files


@pytest.mark.slow
def test_demo_probe_kinds_dnatext_rows_and_per_base_runs(demo_run):
    """What the shared-data run leaves to the demo: the second probe kind (every row once per
    kind, each compared with the k-mer probe of its own kind, with an ECE), the DNA+text
    stage's models in the species probe (regime dnatext), and on tf_binding the random-init
    control, the partial run and the codon model, whose per-base head covers every base, and
    the attributions of the frozen GPT's head there."""
    run = demo_run
    table = pd.read_csv(run / "results/probe/probe_table.tsv", sep="\t")
    assert set(table["probe_kind"]) == {"logreg", "mlp"}
    rows = {
        k: set(zip(t["model"], t["regime"], strict=True)) for k, t in table.groupby("probe_kind")
    }
    assert rows["logreg"] == rows["mlp"]
    assert {("dnatext", "dnatext"), ("dna_basewise", "dnatext"), ("dna_table", "dnatext")} <= (
        rows["logreg"]
    )
    assert table["ece"].between(0, 1).all()
    for _, kind in table.groupby("probe_kind"):
        kmer = kind.set_index("regime").loc["kmer-baseline", "accuracy"]
        others = kind[kind["regime"] != "kmer-baseline"]
        assert np.allclose(others["delta_vs_best_baseline"], others["accuracy"] - kmer, atol=1e-3)
        assert kmer > kind["chance"].iloc[0]  # either kind reads composition
    tf = pd.read_csv(run / "results/finetune/tf_binding/comparison.tsv", sep="\t")
    tf = tf.set_index("run")
    assert {"gpt_nucleotide_random", "mlm_kmer6_partial", "gpt_codon_frozen"} <= set(tf.index)
    assert tf.loc["gpt_nucleotide_random", "random_init"]
    assert tf.loc["mlm_kmer6_partial", "regime"] == "partial"
    n_test = int(tf.loc["gpt_codon_frozen", "n_test"])
    with np.load(run / "results/finetune/tf_binding/gpt_codon_frozen/predictions.npz") as z:
        assert z["predictions"].shape == z["targets"].shape == (n_test, 300)
        assert z["scored"].all()  # 300 bp = 100 codons: every base covered
    # attributions of an LM head (the shared-data run attributes the one-hot CNN alone)
    attr = pd.read_csv(run / "results/interpret/tf_binding/summary.tsv", sep="\t")
    assert set(attr["run"]) == {"onehot_cnn", "gpt_nucleotide_frozen"}
    lm = attr[attr["run"] == "gpt_nucleotide_frozen"]
    assert set(lm["method"]) == {"ism", "grad_x_input", "ig"}
    assert lm["auroc_pooled"].between(0, 1).all()
    assert (lm["n_windows"] == 3).all()
    track = run / "results/figures/interpret/tf_binding/gpt_nucleotide_frozen/tracks.png"
    assert track.stat().st_size > 5_000


@pytest.mark.slow
def test_demo_gene_completion_and_robustness_panel(demo_run):
    """gene_completion (one causal model, 2 held-out S. pyogenes genes, three baselines) and
    the robustness panel of a k-mer MLM, as tests/config/demo.yaml sets them: a summary row
    per source and prompt fraction, logs and benchmarks per job, the panel's phase rows."""
    run = demo_run
    summary = pd.read_csv(run / "results/gene_completion/summary.tsv", sep="\t")
    sources = ["gpt_nucleotide", "markov", "codon_trigram", "nearest_gene"]
    assert sorted(set(summary["source"])) == sorted(sources)
    fractions = sorted(set(summary["prompt_fraction"]))
    assert len(fractions) == 3  # the default 10 / 25 / 50 %
    assert len(summary[summary["sample"] == "all"]) == len(sources) * len(fractions)
    assert (summary["n_genes"] == 2).all()
    model = summary[summary["source"] == "gpt_nucleotide"]
    assert (model["n_continuations"] == 2 * 2).all()  # 2 genes x 2 continuations
    assert summary["recovery"].between(0, 1).all()
    for source in sources:
        kind = "models" if source == "gpt_nucleotide" else "baselines"
        log = run / f"results/logs/gene_completion/{kind}/{source}.log"
        assert "2 held-out genes" in log.read_text(), source
        assert (run / f"results/benchmarks/gene_completion/{kind}/{source}.tsv").is_file()
    assert (run / "results/figures/gene_completion/summary.png").stat().st_size > 5_000
    panel = pd.read_csv(run / "results/robustness/mlm_kmer6/panel.tsv", sep="\t")
    assert {"rc", "shift", "indel", "phase"} <= set(panel["test"])  # 6-mer tokens: phase rows
    assert (panel["n_windows"] == 8).all()
    assert (run / "results/figures/robustness/mlm_kmer6.png").stat().st_size > 5_000
    assert (run / "results/logs/robustness/mlm_kmer6.log").is_file()


@pytest.mark.slow
def test_demo_checkpoint_analytics_and_layer_probe(demo_run):
    """analytics (gpt_nucleotide's five kept checkpoints, the sweep's three runs) and the
    layer probe of mlm_kmer6 (3 layers x 4 poolings), as tests/config/demo.yaml sets them."""
    run = demo_run
    check_checkpoint_analytics(run, "gpt_nucleotide", [0, 10, 20, 30, 40])
    sweep = pd.read_csv(run / "results/analytics/sweeps/tiny_gpt/checkpoints.tsv", sep="\t")
    assert sweep["point"].str.startswith("sweep_tiny_gpt_").all()
    assert sweep["step"].tolist() == [4, 8, 16]
    assert np.isfinite(sweep["bits_per_nt"]).all()
    # a sweep's runs keep only their last and best checkpoints
    assert not list((run / "results/models").glob("sweep_*/checkpoints/kept_checkpoints"))
    assert (run / "results/figures/analytics/sweeps/tiny_gpt.png").stat().st_size > 5_000

    layers = pd.read_csv(run / "results/probe/layer_table.tsv", sep="\t")
    ours = layers[layers["model"] == "mlm_kmer6"]
    assert len(ours) == 3 * 4  # hidden-state layers x poolings
    assert set(ours["pooling"]) == {"mean", "cls", "last", "max"}
    assert ours["best"].sum() == 1
    assert (layers["ci95_low"] <= layers["accuracy"] + 1e-9).all()
    assert (layers["accuracy"] <= layers["ci95_high"] + 1e-9).all()
    best = ours[ours["best"]].iloc[0]
    probe = pd.read_csv(run / "results/probe/probe_table.tsv", sep="\t")
    row = probe[(probe["model"] == "mlm_kmer6") & (probe["regime"] == "pretrained")]
    row = row[row["probe_kind"] == "logreg"].iloc[0]
    assert (int(row["best_layer"]), row["best_pooling"]) == (int(best["layer"]), best["pooling"])
    assert np.isclose(row["best_layer_accuracy"], best["accuracy"])
    with np.load(run / "results/probe/layers/embeddings/pretrained/mlm_kmer6.npz") as z:
        assert z["embeddings"].shape[1:3] == (3, 4)
    assert (run / "results/figures/probe/layer_probe.png").stat().st_size > 5_000
