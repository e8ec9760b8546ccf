"""Report figures (dnalm.report.style and the figure modules per stage) drawn from small inputs
written in the workflow's own formats
(by the writers of dnalm.training.pretrain, dnalm.core.metrics and dnalm.evaluation.probe
where they exist).

What a figure shows is checked through its SVG: matplotlib writes every text element there
as an XML comment before its glyph paths (``<!-- text -->``), so run names, value labels and
tick labels can be read back; hatching appears as a ``<pattern>``. The PNG is checked for
being drawn (not blank) and for the colours that carry meaning (the chance line)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.metrics import write_metrics_json
from dnalm.evaluation.probe import assemble_table
from dnalm.report import finetune_plots, pretrain_plots, probe_plots, style
from dnalm.training.pretrain import write_pretrain_curves
from tests.support.browser import image_stats

BASELINE_RGB = (0x9E, 0x9E, 0x9E)  # the baseline bar colour of dnalm.report.style


def svg_texts(svg: Path) -> list[str]:
    return re.findall(r"<!-- (.*?) -->", svg.read_text(encoding="utf-8"), flags=re.S)


def assert_figure(paths: list[Path], png: Path) -> tuple[list[str], str]:
    """Both files written (no temporaries left), the PNG drawn; returns (svg texts, svg)."""
    svg = png.with_suffix(".svg")
    assert paths == [png, svg]
    assert png.stat().st_size > 0
    assert svg.stat().st_size > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    std, n_colours, nonwhite = image_stats(png)
    assert std > 0.02, f"{png}: near-uniform image (std {std})"
    assert n_colours > 20, f"{png}: only {n_colours} colours"
    assert nonwhite > 0.01, f"{png}: {nonwhite:.4f} of pixels drawn"
    assert not list(png.parent.glob(".*.part")), "temporary file left behind"
    return svg_texts(svg), svg.read_text(encoding="utf-8")


def has_colour(png: Path, rgb: tuple[int, int, int], min_pixels: int = 500) -> bool:
    """At least `min_pixels` pixels of exactly `rgb`: a filled area (a bar), not the odd
    anti-aliased edge pixel of a line or a letter."""
    import matplotlib.image as mpimg

    img = np.round(mpimg.imread(png)[..., :3] * 255).astype(int)  # (H, W, 3)
    return int((img == np.array(rgb)).all(-1).sum()) >= min_pixels


# ----------------------------------------------------------------------------- fixtures


def pretrain_dir(root: Path, name: str, *, scale: float, test_metrics: bool = True) -> Path:
    """A model folder with curves.csv (validation every 3rd row), run.json, metrics.json."""
    folder = root / name
    folder.mkdir(parents=True)
    rows = []
    for i, step in enumerate(range(0, 100, 10)):
        val = i % 3 == 0
        rows.append(
            {
                "step": step,
                "tokens_seen": step * 512,
                "train_loss": scale * (3.0 - step / 50),
                "val_loss": scale * (3.1 - step / 60) if val else None,
                "bits_per_nt": 1.99 - scale * step / 400 if val else None,
                "lr": 1e-3,
                "elapsed_s": step * 0.1,
                "tokens_per_s": 5000.0,
            }
        )
    write_pretrain_curves(folder / "curves.csv", rows)
    run = {
        "objective": "gpt",
        "preset": "tiny",
        "params": {"total": 123456, "non_embedding": 100000},
        "tokenizer": name.split("_")[-1],
        "vocab_size": 16,
        "steps": 90,
        "tokens_seen": 46080,
        "best_step": 90,
        "best_val_loss": 1.2,
        "train_seconds": 12.5 * scale,
        "device": "cpu",
    }
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")
    if test_metrics:
        res = {"loss": 1.3, "perplexity": 3.7, "accuracy": 0.3, "n_targets": 1000}
        metrics = {
            "split": "test",
            "objective": "gpt",
            "model": {**res, "bits_per_nt": 1.874},
            "baseline": {"name": "markov_order2", **res, "bits_per_nt": 1.931},
        }
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return folder


def finetune_dir(
    root: Path, run: str, *, kind: str, curves: bool = True, rate: float = 1.0
) -> Path:
    folder = root / run
    folder.mkdir(parents=True)
    if curves:
        steps = np.arange(0, 60, 10)
        pd.DataFrame(
            {
                "epoch": steps // 20,
                "step": steps,
                "train_loss": 1.0 / (1 + rate * steps / 20),
                "val_loss": 1.1 / (1 + rate * steps / 25),
                "val_metric": 0.2 + rate * steps / 150,
                "elapsed_s": steps * 0.5,
            }
        ).to_csv(folder / "curves.csv", index=False)
    write_metrics_json(
        folder / "metrics.json",
        model=run,
        tokenizer="kmer4" if run.startswith("kmer") else "nucleotide",
        regime="baseline" if run.startswith(("kmer", "onehot")) else "full",
        trainable_params=1000,
        total_params=2000,
        wall_time_s=3.0,
        n_test=10,
        metrics={"pearson_r": 0.5},
        task="t",
        kind=kind,
    )
    return folder


COMMON = ["task", "run", "model", "tokenizer", "objective", "regime", "random_init",
          "trainable_params", "total_params", "wall_time_s", "n_test"]  # fmt: skip


def comparison(path: Path, kind: str, rows: list[tuple]) -> Path:
    """rows: (run, regime, trainable_params, wall_time_s, metric value)."""
    recs = []
    for run, regime, params, secs, value in rows:
        rec = dict.fromkeys(COMMON, "")
        rec.update(
            task="t", run=run, model=run, regime=regime, random_init=False,
            trainable_params=params, total_params=params * 3, wall_time_s=secs, n_test=50,
        )  # fmt: skip
        if kind == "classification":
            rec.update(accuracy=value, macro_f1=value - 0.05, mcc=value - 0.1,
                       chance_majority=0.4, chance_uniform=0.25)  # fmt: skip
        else:
            rec.update(pearson_r=value, spearman_r=value / 3, mse=0.1, auprc_bound=0.3)
        recs.append(rec)
    pd.DataFrame(recs).to_csv(path, sep="\t", index=False)
    return path


# ----------------------------------------------------------------------------- style and save


def test_save_writes_png_and_svg_atomically(tmp_path):
    with style.style():
        fig = style.new_figure(3, 2)
        ax = fig.add_subplot()
        ax.plot([0, 1, 2], [2, 0, 1], label="a")
        ax.set_title("hello figure")
        paths = style.save(fig, tmp_path / "sub" / "f.png")
    texts, _ = assert_figure(paths, tmp_path / "sub" / "f.png")
    assert "hello figure" in texts
    with pytest.raises(ConfigError, match=r"f\.pdf"):
        style.save(fig, tmp_path / "f.pdf")


def test_save_is_reproducible(tmp_path):
    def draw(png):
        with style.style():
            fig = style.new_figure(3, 2)
            fig.add_subplot().bar(["x", "y"], [1, 2])
            return style.save(fig, png)

    a, b = draw(tmp_path / "a.png"), draw(tmp_path / "b.png")
    assert a[1].read_bytes() == b[1].read_bytes()  # SVG: no date, stable ids
    assert a[0].read_bytes() == b[0].read_bytes()


# ----------------------------------------------------------------------------- pretraining


def test_pretrain_curves(tmp_path):
    dirs = {
        "gpt_nucleotide": pretrain_dir(tmp_path, "gpt_nucleotide", scale=1.0),
        "gpt_codon": pretrain_dir(tmp_path, "gpt_codon", scale=2.0),
    }
    png = tmp_path / "fig" / "pretrain_curves.png"
    texts, _ = assert_figure(pretrain_plots.plot_pretrain_curves(dirs, png), png)
    assert {"gpt_nucleotide", "gpt_codon"} <= set(texts)
    assert any("bits / nucleotide" in t for t in texts)


def test_pretrain_curves_errors_name_the_file(tmp_path):
    good = pretrain_dir(tmp_path, "m1", scale=1.0)
    with pytest.raises(InputFormatError, match=re.escape(str(tmp_path / "nope" / "curves.csv"))):
        pretrain_plots.plot_pretrain_curves(
            {"m1": good, "m2": tmp_path / "nope"}, tmp_path / "x.png"
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "curves.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"empty/curves\.csv: pretraining curves is empty"):
        pretrain_plots.plot_pretrain_curves({"e": empty}, tmp_path / "x.png")
    (empty / "curves.csv").write_text("step,train_loss,bits_per_nt\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"curves\.csv: .*no rows"):
        pretrain_plots.plot_pretrain_curves({"e": empty}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    assert not (tmp_path / "x.svg").exists()


def test_pretrain_time(tmp_path):
    dirs = {
        "gpt_nucleotide": pretrain_dir(tmp_path, "gpt_nucleotide", scale=1.0),
        "mlm_bpe": pretrain_dir(tmp_path, "mlm_bpe", scale=3.0, test_metrics=False),
    }
    png = tmp_path / "pretrain_time.png"
    texts, _ = assert_figure(pretrain_plots.plot_pretrain_time(dirs, png), png)
    joined = "\n".join(texts)
    assert "12.5 s · 90 steps · 3.69k tok/s" in joined  # 46080 tokens / 12.5 s
    assert "37.5 s · 90 steps · 1.23k tok/s" in joined
    assert "1.874" in joined
    assert "1.931 markov_order2" in joined
    assert "no test metrics" in joined  # mlm_bpe has no metrics.json
    (dirs["mlm_bpe"] / "run.json").unlink()
    with pytest.raises(InputFormatError, match=r"mlm_bpe/run\.json: pretraining run record"):
        pretrain_plots.plot_pretrain_time(dirs, tmp_path / "y.png")


def test_pretrain_table(tmp_path):
    dirs = {
        "gpt_nucleotide": pretrain_dir(tmp_path, "gpt_nucleotide", scale=1.0),
        "mlm_bpe": pretrain_dir(tmp_path, "mlm_bpe", scale=3.0, test_metrics=False),
    }
    table = pretrain_plots.pretrain_table(dirs).set_index("model")
    assert list(table.index) == ["gpt_nucleotide", "mlm_bpe"]
    assert table.loc["gpt_nucleotide", "train_seconds"] == 12.5
    assert table.loc["gpt_nucleotide", "loss"] == "ce"  # run.json without `loss`: before losses
    assert table.loc["gpt_nucleotide", "baseline"] == "markov_order2"
    assert table.loc["gpt_nucleotide", "baseline_bits_per_nt"] == pytest.approx(1.931, abs=1e-3)
    assert pd.isna(table.loc["mlm_bpe", "test_bits_per_nt"])  # trained without test eval
    with pytest.raises(InputFormatError, match="no pretrained models"):
        pretrain_plots.pretrain_table({})


# ----------------------------------------------------------------------------- fine-tuning


def test_finetune_curves_skip_kmer_runs(tmp_path):
    runs = {
        name: finetune_dir(
            tmp_path, name, kind="per_base_regression", curves=name != "kmer6", rate=rate
        )
        for name, rate in (("full_gpt", 1.0), ("onehot_cnn", 2.0), ("kmer6", 1.0))
    }
    png = tmp_path / "ft_curves.png"
    texts, _ = assert_figure(
        finetune_plots.plot_finetune_curves(runs, png, title="TF binding"), png
    )
    assert {"full_gpt", "onehot_cnn", "TF binding"} <= set(texts)
    assert "kmer6" not in texts
    assert "Pearson r (val)" in texts  # from metrics.json kind
    (runs["onehot_cnn"] / "curves.csv").unlink()
    with pytest.raises(InputFormatError, match=r"onehot_cnn/curves\.csv: fine-tuning curves"):
        finetune_plots.plot_finetune_curves(runs, tmp_path / "y.png")
    with pytest.raises(InputFormatError, match="none of the runs"):
        finetune_plots.plot_finetune_curves({"kmer6": runs["kmer6"]}, tmp_path / "y.png")


def test_performance_regression(tmp_path):
    tsv = comparison(
        tmp_path / "comparison.tsv", "per_base_regression",
        [("full_gpt", "full", 10_000, 30.0, 0.8123), ("frozen_gpt", "frozen", 100, 10.0, 0.4561),
         ("onehot_cnn", "baseline", 5_000, 20.0, 0.9012), ("kmer6", "baseline", 4096, 1.0, 0.2)],
    )  # fmt: skip
    png = tmp_path / "perf.png"
    texts, svg = assert_figure(finetune_plots.plot_performance(tsv, png), png)
    assert {"0.812", "0.456", "0.901", "0.200", "Pearson r (test)", "baseline"} <= set(texts)
    assert "<pattern" in svg
    assert has_colour(png, BASELINE_RGB)
    assert not any("chance" in t for t in texts)  # no chance line for regression


def test_performance_classification_has_chance_line(tmp_path):
    tsv = comparison(
        tmp_path / "comparison.tsv", "classification",
        [("full_gpt", "full", 10_000, 30.0, 0.75), ("lora_gpt", "lora", 300, 12.0, float("nan"))],
    )  # fmt: skip
    png = tmp_path / "perf.png"
    texts, svg = assert_figure(finetune_plots.plot_performance(tsv, png, title="species"), png)
    assert {"0.750", "n/a", "accuracy (test)", "species"} <= set(texts)
    assert {"chance: majority class", "chance: uniform"} <= set(texts)
    assert "<pattern" not in svg
    assert not has_colour(png, BASELINE_RGB)
    (tmp_path / "empty.tsv").write_text("\t".join(COMMON) + "\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match=r"empty\.tsv: comparison table has a header"):
        finetune_plots.plot_performance(tmp_path / "empty.tsv", png)


def test_finetune_time_log_scale_only_for_wide_ranges(tmp_path):
    wide = comparison(
        tmp_path / "wide.tsv", "per_base_regression",
        [("full_gpt", "full", 1_234_567, 3000.0, 0.8), ("kmer6", "baseline", 4096, 2.0, 0.2)],
    )  # fmt: skip
    narrow = comparison(
        tmp_path / "narrow.tsv", "per_base_regression",
        [("full_gpt", "full", 1_234_567, 30.0, 0.8), ("kmer6", "baseline", 4096, 2.0, 0.2)],
    )  # fmt: skip
    png = tmp_path / "wide.png"
    texts, svg = assert_figure(finetune_plots.plot_finetune_time(wide, png), png)
    assert {"50 min · 1.23M trainable", "2 s · 4.1k trainable"} <= set(texts)
    assert any("10^{" in t for t in texts)  # log-axis tick labels
    assert "<pattern" in svg
    png = tmp_path / "narrow.png"
    texts, _ = assert_figure(finetune_plots.plot_finetune_time(narrow, png), png)
    assert not any("10^{" in t for t in texts)
    with pytest.raises(InputFormatError, match=re.escape(str(tmp_path / "missing.tsv"))):
        finetune_plots.plot_finetune_time(tmp_path / "missing.tsv", png)


# ----------------------------------------------------------------------------- tracks


def write_predictions(path: Path, ids, targets, lengths, noise_seed: int) -> Path:
    rng = np.random.default_rng(noise_seed)
    preds = targets + rng.normal(0, 0.1, targets.shape)
    np.savez(path, ids=np.asarray(ids), predictions=preds.astype(np.float32),
             targets=targets.astype(np.float32), lengths=np.asarray(lengths))  # fmt: skip
    return path


def track_data(n: int = 6, length: int = 64):
    """Window k has 3k bound bases within its length and 20 positive bases beyond it (which
    must not count), so the most-bound windows are w5, w4, w3, ..."""
    targets = np.zeros((n, length))  # (N, L)
    lengths = np.full(n, 40)
    for k in range(n):
        targets[k, 5 : 5 + 3 * k] = 1.0 + k
        targets[k, 44:] = 9.0  # padding region: ignored
    ids = [f"w{k}" for k in range(n)]
    return ids, targets, lengths


def test_choose_windows_counts_bound_bases_within_length():
    _ids, targets, lengths = track_data()
    assert finetune_plots.choose_windows(targets, lengths, 3).tolist() == [5, 4, 3]
    tied = np.zeros((4, 10))
    assert finetune_plots.choose_windows(tied, np.full(4, 10), 2).tolist() == [0, 1]  # file order


def test_plot_tracks(tmp_path):
    ids, targets, lengths = track_data()
    a = write_predictions(tmp_path / "a.npz", ids, targets, lengths, 0)
    # the second run lists the same windows in another order: matched by id
    perm = [3, 0, 5, 1, 4, 2]
    b = write_predictions(tmp_path / "b.npz", [ids[i] for i in perm], targets[perm],
                          lengths[perm], 1)  # fmt: skip
    png = tmp_path / "tracks.png"
    texts, _ = assert_figure(
        finetune_plots.plot_tracks({"gpt_full": a, "onehot_cnn": b}, png, n_windows=3), png
    )
    titles = [t for t in texts if "bases bound" in t]
    assert titles == ["w5  (15 of 40 bases bound)", "w4  (12 of 40 bases bound)",
                      "w3  (9 of 40 bases bound)"]  # fmt: skip
    assert {"gpt_full", "onehot_cnn", "true"} <= set(texts)

    texts, _ = assert_figure(finetune_plots.plot_tracks({"a": a}, png, ids=["w1"]), png)
    assert [t for t in texts if "bases bound" in t] == ["w1  (3 of 40 bases bound)"]

    c = write_predictions(tmp_path / "c.npz", ids[:2], targets[:2], lengths[:2], 2)
    with pytest.raises(InputFormatError, match=r"c\.npz: window id\(s\) \['w5'"):
        finetune_plots.plot_tracks({"a": a, "c": c}, png, n_windows=1)
    with pytest.raises(InputFormatError, match=r"gone\.npz: per-base predictions file not found"):
        finetune_plots.plot_tracks({"a": tmp_path / "gone.npz"}, png)


# ----------------------------------------------------------------------------- probes


def test_probe_accuracy(tmp_path):
    files = []
    for model, regime, acc in (
        ("gpt_nucleotide", "pretrained", 0.61),
        ("gpt_nucleotide_ft", "fine-tuned", 0.83),
        ("4-mer frequencies", "kmer-baseline", 0.55),
    ):
        path = tmp_path / f"{model}.json"
        path.write_text(json.dumps({
            "model": model, "tokenizer": "nucleotide", "objective": "gpt", "regime": regime,
            "layer": None if regime == "kmer-baseline" else 2, "pooling": "mean",
            "accuracy": acc, "macro_f1": acc - 0.05, "chance": 0.25, "majority_rate": 0.31,
            "n_classes": 4, "n_train": 100, "n_test": 40, "n_features": 16, "best_C": 1.0,
        }), encoding="utf-8")  # fmt: skip
        files.append(path)
    table = tmp_path / "probe_table.tsv"
    assemble_table(files, table)
    png = tmp_path / "probe.png"
    texts, svg = assert_figure(probe_plots.plot_probe_accuracy(table, png), png)
    assert {"gpt_nucleotide", "gpt_nucleotide_ft", "4-mer frequencies"} <= set(texts)
    assert {"0.610", "0.830", "0.550", "linear species probe (4 species)"} <= set(texts)
    assert "<pattern" in svg
    assert has_colour(png, BASELINE_RGB)
    assert {"chance: majority class", "chance: uniform"} <= set(texts)
    with pytest.raises(InputFormatError, match=r"nothing\.tsv: probe table not found"):
        probe_plots.plot_probe_accuracy(tmp_path / "nothing.tsv", png)
