"""Walk, CGR and natural-vs-generated UMAP figures (dnalm.report.walk_plots) from real CDS and
shuffled copies of them (a stand-in for generated sequences)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from dnalm.core.errors import InputFormatError
from dnalm.core.walks import cgr_image, walk_batch
from dnalm.report import walk_plots
from tests.test_core_walks import real_cds
from tests.test_report_figures import assert_figure


def write_fa(path, seqs, prefix="s"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        for i, s in enumerate(seqs):
            fh.write(f">{prefix}{i}\n{s}\n")
    return path


def shuffled(seqs, seed):
    rng = np.random.default_rng(seed)
    return ["".join(rng.permutation(list(s))) for s in seqs]


def at_gc_rich(n, length, gc, seed):
    rng = np.random.default_rng(seed)
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return ["".join(rng.choice(list("ACGT"), length, p=p)) for _ in range(n)]


def test_read_sequences_subsets_reproducibly(tmp_path, shared_data):
    seqs = real_cds(shared_data)
    fa = write_fa(tmp_path / "x.fa.gz", seqs)
    assert walk_plots.read_sequences(fa) == seqs
    a = walk_plots.read_sequences(fa, 7, seed=1)
    assert len(a) == 7
    assert a == walk_plots.read_sequences(fa, 7, seed=1)
    assert all(s in seqs for s in a)


def test_plot_walks(tmp_path, shared_data):
    seqs = real_cds(shared_data)
    walks = {
        "ecoli_hx": walk_batch(seqs, 100),
        "gc_rich": walk_batch(at_gc_rich(20, 600, 0.7, 0), 100),
        "empty": walk_batch([], 100),
    }
    png = tmp_path / "walks.png"
    texts, _ = assert_figure(walk_plots.plot_walks(walks, png), png)
    assert any("ecoli_hx (40)" in t for t in texts)
    assert any("empty (0)" in t for t in texts)
    assert any("no sequences" in t for t in texts)
    with pytest.raises(InputFormatError, match="no samples"):
        walk_plots.plot_walks({}, png)


def test_plot_cgr_grid(tmp_path, shared_data):
    seqs = real_cds(shared_data)
    images = {"": {"ecoli_hx": cgr_image(seqs, 5), "none": cgr_image([], 5)}}
    png = tmp_path / "empty.png"
    texts, _ = assert_figure(walk_plots.plot_cgr_grid(images, png, 5, wrap=4), png)
    assert "no sequences" in texts
    images = {
        "": {"ecoli_hx": cgr_image(seqs, 5), "at_rich": cgr_image(at_gc_rich(5, 500, 0.3, 1), 5)}
    }
    png = tmp_path / "cgr.png"
    texts, _ = assert_figure(walk_plots.plot_cgr_grid(images, png, 5, wrap=4), png)
    assert {"A", "C", "G", "T"} <= set(texts)
    assert any("5-mer frequency" in t for t in texts)


def test_source_umap_separates_sources(shared_data):
    natural = real_cds(shared_data, 40)
    sources = {"natural": natural, "gpt_tiny": at_gc_rich(40, 600, 0.75, 2),
               "markov": shuffled(natural, 3)}  # fmt: skip
    coords = walk_plots.source_umap(sources, k=4, seed=7)
    assert list(coords.columns) == ["source", "index", "length", "x", "y"]
    assert coords["source"].value_counts().to_dict() == {
        "natural": 40,
        "gpt_tiny": 40,
        "markov": 40,
    }
    again = walk_plots.source_umap(sources, k=4, seed=7)
    pd.testing.assert_frame_equal(coords, again)  # seeded: reproducible
    # the GC-rich random set is far from natural CDS in 4-mer space: its centroid is apart
    c = coords.groupby("source")[["x", "y"]].mean()
    spread = coords[["x", "y"]].std().mean()
    assert np.linalg.norm(c.loc["gpt_tiny"] - c.loc["natural"]) > spread
    with pytest.raises(InputFormatError, match="at least 3"):
        walk_plots.source_umap({"natural": natural[:2]})


def test_generated_figures(tmp_path, shared_data):
    natural = real_cds(shared_data, 30)
    fastas = {}
    for i, model in enumerate(["gpt_a", "gpt_b"]):
        d = tmp_path / "results" / "generate" / model
        fastas[model] = {
            "natural": write_fa(d / "natural.fa.gz", natural),
            "samples": write_fa(d / "samples.fa.gz", at_gc_rich(30, 500, 0.4 + 0.2 * i, i)),
            "markov": write_fa(d / "markov.fa.gz", shuffled(natural, 0)),
        }
    cgr, umap_png, tsv = tmp_path / "cgr.png", tmp_path / "umap.png", tmp_path / "umap.tsv"
    coords = walk_plots.generated_figures(
        fastas, cgr, umap_png, tsv, k=4, umap_k=3, max_sequences=25
    )
    # natural and markov are the same files for both models: pooled, each sequence once
    assert coords["source"].value_counts().to_dict() == {
        "natural": 25, "gpt_a": 25, "gpt_b": 25, "markov": 25,
    }  # fmt: skip
    pd.testing.assert_frame_equal(pd.read_csv(tsv, sep="\t"), coords, check_exact=False, rtol=1e-5)
    texts, _ = assert_figure([cgr, cgr.with_suffix(".svg")], cgr)
    assert any("gpt_b: generated (25)" in t for t in texts)
    texts, _ = assert_figure([umap_png, umap_png.with_suffix(".svg")], umap_png)
    assert any("markov (25)" in t for t in texts)
    assert any("3-mer frequencies" in t for t in texts)
