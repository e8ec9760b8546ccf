"""Probes, k-mer baseline, probe table, UMAP and figures (dnalm.evaluation.probe) on synthetic
data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from threadpoolctl import threadpool_limits

from dnalm.core.alphabet import kmer_names
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation.embed import Embeddings, write_embeddings
from dnalm.evaluation.probe import (
    PROBE_CI_COLUMNS,
    TABLE_COLUMNS,
    append_to_table,
    assemble_table,
    fit_probe,
    kmer_frequencies,
    probe_embeddings,
    probe_kmer,
    read_coords,
    umap_coords,
    umap_from_npz,
    umaps_from_npz,
)
from dnalm.report.probe_plots import plot_confusion, plot_umap, plot_umap_pair

SPECIES = ["Ecoli", "Bsub", "Mtub", "Scer"]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """These probes are tiny: BLAS threads only add overhead on a shared CI machine (~20x
    slower under load). The workflow sets thread counts per rule (Snakemake `threads`)."""
    with threadpool_limits(1):
        yield


def _blobs(rng, n_per_class: int, dim: int, shift: float, classes=SPECIES):
    """Gaussian clouds, one per class; `shift` is the distance of the class means."""
    means = rng.normal(size=(len(classes), dim)) * shift
    x = np.concatenate([rng.normal(size=(n_per_class, dim)) + m for m in means])
    y = np.repeat(classes, n_per_class)
    return x.astype(np.float32), y


def _synthetic_npz(path, rng, shift=3.0, n_train=40, n_test=20, dim=16, meta=None):
    means = np.random.default_rng(99).normal(size=(len(SPECIES), dim)) * shift
    ytr = np.repeat(SPECIES, n_train)
    xtr = (rng.normal(size=(len(ytr), dim)) + np.repeat(means, n_train, 0)).astype(np.float32)
    yte = np.repeat(SPECIES, n_test)
    xte = (rng.normal(size=(len(yte), dim)) + np.repeat(means, n_test, 0)).astype(np.float32)
    n = len(ytr) + len(yte)
    emb = Embeddings(
        ids=np.array([f"f{i}" for i in range(n)]),
        labels=np.concatenate([ytr, yte]),
        split=np.array(["train"] * len(ytr) + ["test"] * len(yte)),
        embeddings=np.concatenate([xtr, xte]),
        n_tokens=np.full(n, 62, np.int32),
        meta={
            "model": "gpt_tiny_nuc",
            "objective": "gpt",
            "regime": "pretrained",
            "layer": -1,
            "pooling": "mean",
            "tokenizer": {"type": "nucleotide", "spec": {"type": "nucleotide"}},
            **(meta or {}),
        },
    )
    return write_embeddings(path, emb)


# ----------------------------------------------------------------------------- probe


def test_probe_beats_chance_on_separable_and_not_on_random():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(len(SPECIES), 20)) * 1.5
    ytr = np.repeat(SPECIES, 50)
    yte = np.repeat(SPECIES, 100)
    xtr = rng.normal(size=(len(ytr), 20)) + means[np.searchsorted(sorted(SPECIES), ytr)]
    xte = rng.normal(size=(len(yte), 20)) + means[np.searchsorted(sorted(SPECIES), yte)]
    sep = fit_probe(xtr, ytr, xte, yte, seed=0).metrics
    assert sep["chance"] == pytest.approx(0.25)
    assert sep["accuracy"] > 0.85
    assert sep["macro_f1"] > 0.85
    assert min(sep["per_class_recall"].values()) > 0.7
    cm = np.array(sep["confusion_matrix"])
    assert cm.shape == (4, 4)
    assert cm.sum() == len(yte)
    assert np.trace(cm) / cm.sum() == pytest.approx(sep["accuracy"])

    # Features that carry no label information: accuracy must stay near 1/4 (400 test rows:
    # the binomial sd is ~0.022, so 0.34 is 4 sd above chance).
    rand = fit_probe(rng.normal(size=xtr.shape), ytr, rng.normal(size=xte.shape), yte).metrics
    assert abs(rand["accuracy"] - 0.25) < 0.09
    assert rand["majority_rate"] == pytest.approx(0.25)


def test_cv_uses_training_split_only():
    rng = np.random.default_rng(1)
    xtr, ytr = _blobs(rng, 30, 12, 0.6)
    xte1, yte1 = _blobs(rng, 20, 12, 0.6)
    xte2 = rng.normal(size=(55, 12)) * 10
    yte2 = rng.choice(SPECIES, 55)
    a = fit_probe(xtr, ytr, xte1, yte1, seed=3)
    b = fit_probe(xtr, ytr, xte2, yte2, seed=3)
    assert a.metrics["best_C"] == b.metrics["best_C"]
    assert a.metrics["cv_accuracy_by_C"] == b.metrics["cv_accuracy_by_C"]
    assert a.metrics["n_test"] != b.metrics["n_test"]
    # the scaler inside the refitted probe was fitted on the training rows
    scaler = a.model.named_steps["standardscaler"]
    np.testing.assert_allclose(scaler.mean_, xtr.mean(0), rtol=1e-6, atol=1e-6)
    # and the chosen C is the argmax of the CV scores
    scores = a.metrics["cv_accuracy_by_C"]
    assert float(max(scores, key=scores.get)) == a.metrics["best_C"]


def test_probe_input_errors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 3))
    with pytest.raises(InputFormatError, match="never occur in the training split"):
        fit_probe(x, ["a", "b"] * 5, x[:2], ["a", "c"])
    with pytest.raises(InputFormatError, match="training row"):
        fit_probe(x, ["a"] * 9 + ["b"], x[:2], ["a", "b"])
    with pytest.raises(InputFormatError, match="same width"):
        fit_probe(x, ["a", "b"] * 5, x[:2, :2], ["a", "b"])


# ----------------------------------------------------------------------------- k-mers


def _kmer_reference(seq: str, k: int) -> np.ndarray:
    names = kmer_names(k)
    counts = Counter(
        seq[i : i + k].upper()
        for i in range(len(seq) - k + 1)
        if set(seq[i : i + k].upper()) <= set("ACGT")
    )
    vec = np.array([counts[n] for n in names], dtype=np.float64)
    return vec / vec.sum() if vec.sum() else vec


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_kmer_frequencies_match_counting(k):
    rng = np.random.default_rng(k)
    seqs = ["".join(rng.choice(list("ACGTNacgt"), size=int(n))) for n in rng.integers(0, 40, 50)]
    seqs += ["ACGTA", "NNNN", "", "A"]
    got = kmer_frequencies(seqs, k=k, chunk=7)  # small chunks: exercises chunk boundaries
    assert got.shape == (len(seqs), 4**k)
    assert got.dtype == np.float32
    for i, s in enumerate(seqs):
        np.testing.assert_allclose(got[i], _kmer_reference(s, k), atol=1e-6, err_msg=s)
    if k == 2:
        row = dict(zip(kmer_names(2), got[len(seqs) - 4], strict=True))
        assert {n for n, v in row.items() if v} == {"AC", "CG", "GT", "TA"}


def _gc_table(rng, n_per_species: int, length: int = 60) -> pd.DataFrame:
    rows = []
    for species, gc in (("lowGC", 0.3), ("highGC", 0.7)):
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]  # A C G T
        for i in range(n_per_species):
            seq = "".join(rng.choice(list("ACGT"), size=length, p=p))
            split = "test" if i % 3 == 0 else "train"
            rows.append({"id": f"{species}_{i}", "sequence": seq, "split": split, "label": species})
    return pd.DataFrame(rows)


def test_kmer_baseline_separates_gc_content(tmp_path):
    df = _gc_table(np.random.default_rng(5), 60)
    m = probe_kmer(df, tmp_path / "kmer.json", k=3)
    assert m["accuracy"] > 0.9
    assert m["chance"] == 0.5
    assert m["n_features"] == 64
    assert m["regime"] == "kmer-baseline"
    assert m["n_train"] + m["n_test"] == len(df)
    saved = json.loads((tmp_path / "kmer.json").read_text())
    assert saved["accuracy"] == m["accuracy"]
    assert saved["classes"] == ["highGC", "lowGC"]


# ----------------------------------------------------------------------------- table


def test_probe_embeddings_and_table(tmp_path):
    rng = np.random.default_rng(7)
    npz = _synthetic_npz(tmp_path / "e.npz", rng)
    m = probe_embeddings(npz, tmp_path / "probe_e.json")
    assert m["model"] == "gpt_tiny_nuc"
    assert m["tokenizer"] == "nucleotide"
    assert m["regime"] == "pretrained"
    assert m["layer"] == -1
    assert m["n_train"] == 160
    assert m["n_test"] == 80
    assert m["accuracy"] > 0.8
    npz2 = _synthetic_npz(
        tmp_path / "r.npz", rng, shift=0.0, meta={"regime": "random-init", "layer": 2}
    )
    probe_embeddings(npz2, tmp_path / "probe_r.json")
    probe_kmer(_gc_table(rng, 20), tmp_path / "probe_k.json", k=2)

    files = [tmp_path / f"probe_{x}.json" for x in ("r", "k", "e")]
    table = assemble_table(files, tmp_path / "probes.tsv")
    assert list(table.columns) == [*TABLE_COLUMNS, *PROBE_CI_COLUMNS]
    assert table["regime"].tolist() == ["pretrained", "random-init", "kmer-baseline"]
    assert (table["ci95_low"] <= table["accuracy"]).all()
    assert (table["accuracy"] <= table["ci95_high"]).all()
    assert table.loc[1, "layer"] == 2
    assert table.loc[0, "accuracy"] > table.loc[1, "accuracy"]
    on_disk = pd.read_csv(tmp_path / "probes.tsv", sep="\t")
    assert len(on_disk) == 3
    assert on_disk["chance"].tolist() == pytest.approx([0.25, 0.25, 0.5])

    # append: a new key adds a row, the same key replaces it
    t = tmp_path / "appended.tsv"
    append_to_table(files[2], t)
    append_to_table(files[0], t)
    df = append_to_table(files[2], t)
    assert len(df) == 2
    assert sorted(pd.read_csv(t, sep="\t")["regime"]) == ["pretrained", "random-init"]


def test_table_intervals_against_the_best_kmer_baseline(tmp_path):
    """Paired CI of a model's accuracy difference to the better of two k-mer baselines."""
    rng = np.random.default_rng(0)
    ids = [f"f{i}" for i in range(400)]
    rows = {"m": ("pretrained", 0.8), "k3": ("kmer-baseline", 0.5), "k4": ("kmer-baseline", 0.6)}
    for name, (regime, rate) in rows.items():
        correct = (rng.random(400) < rate).astype(int).tolist()
        rec = {
            "model": name,
            "regime": regime,
            "accuracy": float(np.mean(correct)),
            "macro_f1": 0.0,
            "chance": 0.25,
            "test_items": {"id": ids, "correct": correct},
        }
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    table = assemble_table([tmp_path / f"{n}.json" for n in rows]).set_index("model")
    assert set(table["best_baseline"]) == {"k4"}
    m = table.loc["m"]
    expected = m["accuracy"] - table.loc["k4", "accuracy"]
    assert m["delta_vs_best_baseline"] == pytest.approx(expected)
    assert 0 < m["delta_ci95_low"] < expected < m["delta_ci95_high"]
    assert table.loc["k3", "delta_vs_best_baseline"] < 0
    assert np.isnan(table.loc["k4", "delta_vs_best_baseline"])


def test_table_rejects_non_metrics(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"model": "m"}))
    with pytest.raises(InputFormatError, match="not a probe metrics file"):
        assemble_table([bad])


# ----------------------------------------------------------------------------- UMAP + figures


@pytest.mark.slow  # numba JIT of umap-learn: ~15-40 s on the first call in a process
def test_umap_reproducible(tmp_path):
    rng = np.random.default_rng(11)
    npz = _synthetic_npz(tmp_path / "e.npz", rng, n_train=5, n_test=10, dim=8)
    a = umap_from_npz(npz, tmp_path / "a.tsv", seed=3)
    b = umap_from_npz(npz, tmp_path / "b.tsv", seed=3)
    assert list(a.columns) == ["id", "species", "x", "y"]
    assert len(a) == 40  # test split only
    assert a["id"].str.startswith("f").all()
    np.testing.assert_array_equal(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy())
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    back = read_coords(tmp_path / "a.tsv")
    assert back["species"].tolist() == a["species"].tolist()
    sub = umap_from_npz(npz, None, seed=3, max_points=12)
    assert len(sub) == 12
    c = umap_coords(rng.normal(size=(8, 4)), list("abcdefgh"), ["x"] * 8, seed=1)
    assert np.isfinite(c[["x", "y"]].to_numpy()).all()


@pytest.mark.slow  # numba JIT of umap-learn, here and once more in a fresh interpreter
def test_one_job_draws_every_map_as_one_job_per_map_would(tmp_path):
    """The umap rule draws every map of a run in one process (umaps_from_npz); each map is,
    bit for bit, the one a fresh process gives for that map alone (the workflow used to run
    one job per map)."""
    rng = np.random.default_rng(5)
    npzs = [
        _synthetic_npz(tmp_path / f"e{i}.npz", rng, shift=2.0 + i, n_train=5, n_test=15, dim=8)
        for i in range(3)
    ]
    outs = [tmp_path / f"u{i}.tsv" for i in range(3)]
    kw = {"seed": 7, "max_points": 50, "n_neighbors": 10}
    together = umaps_from_npz(npzs, outs, **kw)
    assert [len(df) for df in together] == [50, 50, 50]
    # the last map alone, in a fresh interpreter: nothing compiled or drawn before it
    alone = tmp_path / "alone"
    code = (
        "import numpy as np\n"
        "from dnalm.evaluation.probe import umap_from_npz\n"
        f"df = umap_from_npz({str(npzs[2])!r}, {str(alone.with_suffix('.tsv'))!r}, **{kw!r})\n"
        f"np.save({str(alone.with_suffix('.npy'))!r}, df[['x', 'y']].to_numpy())\n"
    )
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": f"{repo / 'workflow' / 'scripts'}{os.pathsep}{repo}",
        **dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"), "1"),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    xy = together[2][["x", "y"]].to_numpy()
    np.testing.assert_array_equal(xy, np.load(alone.with_suffix(".npy")))
    assert outs[2].read_bytes() == alone.with_suffix(".tsv").read_bytes()
    # the first map again, after the others in this process
    again = umap_from_npz(npzs[0], None, **kw)
    np.testing.assert_array_equal(together[0][["x", "y"]].to_numpy(), again[["x", "y"]].to_numpy())
    assert not np.array_equal(together[0][["x", "y"]].to_numpy(), xy)
    with pytest.raises(ConfigError, match="3 embeddings files but 2 UMAP tables"):
        umaps_from_npz(npzs, outs[:2])


def _coords(rng, n=60, spread=4.0):
    species = np.repeat(SPECIES, n // len(SPECIES))
    centres = {s: rng.normal(size=2) * spread for s in SPECIES}
    xy = np.array([centres[s] for s in species]) + rng.normal(size=(len(species), 2))
    return pd.DataFrame(
        {"id": [f"f{i}" for i in range(len(species))], "species": species, "x": xy[:, 0],
         "y": xy[:, 1]}
    )  # fmt: skip


def _assert_figure(png, tmp_path):
    assert png.is_file()
    img = imread(png)
    assert img.ndim == 3
    assert float(img[..., :3].std()) > 0.02  # not blank
    svg = png.with_suffix(".svg")
    assert svg.is_file()
    assert "<svg" in svg.read_text()[:2000]
    assert not list(tmp_path.glob("*.part"))


def test_plot_umap_and_pair(tmp_path):
    rng = np.random.default_rng(3)
    paths = plot_umap(_coords(rng), tmp_path / "umap.png", "gpt_tiny (pretrained)")
    assert paths == [tmp_path / "umap.png", tmp_path / "umap.svg"]
    _assert_figure(tmp_path / "umap.png", tmp_path)
    plot_umap_pair(
        _coords(rng), _coords(rng, spread=8.0), tmp_path / "pair.png", ("pretrained", "fine-tuned")
    )
    _assert_figure(tmp_path / "pair.png", tmp_path)
    # the pair figure is wider than tall (two panels)
    h, w = imread(tmp_path / "pair.png").shape[:2]
    assert w > 1.5 * h
    # identical input gives an identical SVG (stable ids), so reruns do not churn
    first = (tmp_path / "umap.svg").read_bytes()
    plot_umap(_coords(np.random.default_rng(3)), tmp_path / "umap.png", "gpt_tiny (pretrained)")
    assert (tmp_path / "umap.svg").read_bytes() == first


def test_plot_confusion(tmp_path):
    cm = np.array([[8, 1, 1], [2, 7, 1], [0, 0, 10]])
    plot_confusion(cm, ["Ecoli", "Bsub", "Mtub"], tmp_path / "cm.png", title="probe")
    _assert_figure(tmp_path / "cm.png", tmp_path)
    with pytest.raises(InputFormatError, match="does not match"):
        plot_confusion(cm, ["a", "b"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
