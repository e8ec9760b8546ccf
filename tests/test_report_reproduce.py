"""The reproduction table (dnalm.report.reproduce): rows from pretraining metrics.json files
(seed replicates folded, count baselines), fine-tuning comparison tables and the probe
table; the "beats baseline" verdicts and intervals; the row checks; and the rule that writes
the table from a workflow's results (run through Snakemake with only that rule allowed)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from dnalm.core.config import drop_null_entries
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.report.reproduce import build_table, check_rows, markdown, render_tsv, write_table
from tests.support.workflow_runner import fail_message, make_workdir, snakemake

DEMO = Path(__file__).parent / "config" / "demo.yaml"
#: two species-task samples and a small one of the embedded demo (no shared data needed)
KEEP = ["phageT4", "mgallisepticum", "phiX174"]


def _metrics(path, loss, baselines):
    """A metrics.json as training/lm_eval.py writes it (the keys the table reads)."""
    rows = [
        {"name": n, "loss": b, "perplexity": math.exp(b), "bits_per_nt": b / math.log(2) / 3}
        for n, b in baselines.items()
    ]
    best = min(rows, key=lambda r: r["loss"])
    model = {"loss": loss, "perplexity": math.exp(loss), "bits_per_nt": loss / math.log(2) / 3}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"split": "test", "model": model, "baseline": best,
                                "baselines": rows}))  # fmt: skip
    return str(path)


BASES = {"codon_usage_unigram": 3.9, "codon_bigram": 3.78, "codon_trigram": 3.74}


def test_pretrain_rows_fold_seeds_and_report_baselines(tmp_path):
    files = [
        _metrics(tmp_path / f"m{s}/metrics.json", loss, BASES)
        for s, loss in enumerate((3.70, 3.72, 3.76))
    ]
    rows = [
        {"paper": "g", "metric": "ppl", "published": [39.13, 39.49], "source": "pretrain",
         "model": "gpt_codon", "compare_to": "codon_trigram", "deviation": "small\n  model"},
        {"paper": "g", "metric": "trigram", "published": 42.04, "source": "pretrain",
         "model": "gpt_codon", "baseline": "codon_trigram"},
    ]  # fmt: skip
    table = build_table(rows, {"gpt_codon": files}, {}, None)
    model, tri = table.iloc[0], table.iloc[1]
    ppl = [math.exp(x) for x in (3.70, 3.72, 3.76)]
    assert model["ours"] == pytest.approx(sum(ppl) / 3)
    assert model["ours_sd"] == pytest.approx(pd.Series(ppl).std())
    assert model["n_seeds"] == 3
    assert model["published"] == "39.13; 39.49"
    assert model["baseline"] == "codon_trigram"
    assert model["baseline_value"] == pytest.approx(math.exp(3.74))
    # two seeds below the trigram, one above: it does not beat it in every seed
    assert model["beats_baseline"].startswith("no (2/3 seeds below")
    assert model["delta_ci95_low"] < 0 < model["delta_ci95_high"]
    assert model["deviation"] == "small model"
    assert tri["ours"] == pytest.approx(math.exp(3.74))
    assert tri["n_seeds"] == 1
    assert tri["beats_baseline"] == ""
    # the default comparison is the strongest baseline; loss as the value
    rows[0].pop("compare_to")
    rows[0]["value"] = "loss"
    first = build_table(rows[:1], {"gpt_codon": files[:2]}, {}, None).iloc[0]
    assert first["ours"] == pytest.approx(3.71)
    assert first["beats_baseline"].startswith("yes (2/2 seeds below")
    with pytest.raises(InputFormatError, match="no baseline 'codon_4gram'"):
        build_table([{**rows[1], "baseline": "codon_4gram"}], {"gpt_codon": files}, {}, None)


def test_finetune_and_probe_rows(tmp_path):
    comparison = tmp_path / "comparison.tsv"
    pd.DataFrame(
        [
            {
                "run": "onehot_cnn",
                "regime": "baseline",
                "pearson_r": 0.9,
                "pearson_r_sd": 0.01,
                "pearson_r_per_seed": "0.89;0.91",
                "n_seeds": 2,
                "best_baseline": "onehot_cnn",
                "delta_vs_best_baseline": math.nan,
                "delta_ci95_low": math.nan,
                "delta_ci95_high": math.nan,
            },
            {
                "run": "gpt_frozen",
                "regime": "frozen",
                "pearson_r": 0.5,
                "pearson_r_sd": 0.02,
                "pearson_r_per_seed": "0.49;0.51",
                "n_seeds": 2,
                "best_baseline": "onehot_cnn",
                "delta_vs_best_baseline": -0.4,
                "delta_ci95_low": -0.45,
                "delta_ci95_high": -0.35,
            },
        ]
    ).to_csv(comparison, sep="\t", index=False)
    probe = tmp_path / "probe_table.tsv"
    pd.DataFrame(
        [
            {"model": "mlm", "regime": "pretrained", "accuracy": 0.60, "n_test": 1000},
            {"model": "mlm", "regime": "random-init", "accuracy": 0.52, "n_test": 1000},
            {
                "model": "4-mer frequencies",
                "regime": "kmer-baseline",
                "accuracy": 0.50,
                "n_test": 1000,
            },
        ]
    ).to_csv(probe, sep="\t", index=False)
    rows = [
        {"paper": "d", "metric": "r", "published": 0.777, "source": "finetune",
         "task": "tf", "run": "gpt_frozen", "deviation": "x"},
        {"paper": "d", "metric": "cnn", "published": 0.981, "source": "finetune",
         "task": "tf", "run": "onehot_cnn", "deviation": "x"},
        {"paper": "n", "metric": "acc", "published": 0.47, "source": "probe", "model": "mlm"},
        {"paper": "n", "metric": "acc0", "published": 0.47, "source": "probe", "model": "mlm",
         "regime": "random-init"},
    ]  # fmt: skip
    table = build_table(rows, {}, {"tf": str(comparison)}, str(probe))
    gpt, cnn, mlm, rnd = (table.iloc[i] for i in range(4))
    assert gpt["ours"] == pytest.approx(0.5)
    assert gpt["ours_per_seed"] == "0.49; 0.51"
    assert gpt["baseline_value"] == pytest.approx(0.9)
    assert gpt["beats_baseline"].startswith("no (paired bootstrap")
    assert cnn["beats_baseline"] == "(a baseline)"
    assert mlm["baseline"] == "4-mer frequencies"
    assert mlm["delta"] == pytest.approx(0.10)
    assert mlm["beats_baseline"].startswith("yes")  # 0.10 with se ~0.022
    assert rnd["beats_baseline"].startswith("not resolved")  # 0.02 with se ~0.022
    text = markdown(table)
    assert text.splitlines()[0].startswith("| paper | metric | published |")
    assert "0.5 ± 0.02 (n=2: 0.49; 0.51)" in text
    assert len(text.splitlines()) == 2 + len(rows)
    with pytest.raises(InputFormatError, match="no row 'gpt_lora'"):
        build_table([{**rows[0], "run": "gpt_lora"}], {}, {"tf": str(comparison)}, None)


def test_control_rows_carry_no_published_number(tmp_path):
    """A row without `published` (a control the paper never ran) gets an empty published
    cell and a dash in the Markdown, never a paper's number; a kept table.tsv renders to
    exactly the table.md written beside it."""
    files = [_metrics(tmp_path / f"m{s}/metrics.json", 3.7 + s / 100, BASES) for s in (0, 1)]
    rows = [
        {"paper": "g", "metric": "ppl", "published": [39.13, 39.49], "source": "pretrain",
         "model": "gpt_codon", "deviation": "small"},
        {"paper": "g", "metric": "ppl, random weights (control)", "source": "pretrain",
         "model": "gpt_codon", "deviation": "Not in the paper."},
    ]  # fmt: skip
    table = build_table(rows, {"gpt_codon": files}, {}, None)
    assert table["published"].tolist() == ["39.13; 39.49", ""]
    lines = markdown(table).splitlines()
    assert lines[2].split(" | ")[2] == "39.13; 39.49"
    assert lines[3].split(" | ")[2] == "—"
    write_table(table, tmp_path / "table.tsv", tmp_path / "table.md")
    assert render_tsv(tmp_path / "table.tsv") == (tmp_path / "table.md").read_text()


def test_row_checks_name_the_row_and_key():
    ok = {"paper": "p", "metric": "m", "published": 1.0, "source": "pretrain", "model": "x"}
    assert check_rows([ok])[0]["value"] == "perplexity"
    assert check_rows(None) == []
    # a control row (no published number) checked twice, as the plan at DAG build and the
    # rule's job both check the rows: the first check's output passes the second unchanged
    control = {k: v for k, v in ok.items() if k != "published"}
    once = check_rows([control, ok])
    assert check_rows(once) == once
    assert once[0]["published"] == []
    bad = [
        ({**ok, "source": "paper"}, "reproduce.rows[0].source: 'paper' is not one of"),
        ({**ok, "run": "r"}, "reproduce.rows[0]: unknown key(s) ['run'] for source pretrain"),
        ({**ok, "published": "0.7"}, "reproduce.rows[0].published: a number or a list"),
        ({**ok, "value": "accuracy"}, "reproduce.rows[0].value: 'accuracy' is not one of"),
        ({k: v for k, v in ok.items() if k != "model"}, "reproduce.rows[0].model: required"),
        ({**ok, "source": "finetune", "model": None, "task": "t"},
         "reproduce.rows[0]: unknown key(s) ['model']"),
    ]  # fmt: skip
    for row, message in bad:
        with pytest.raises(ConfigError) as err:
            check_rows([row])
        assert message in str(err.value)


def test_null_entries_are_dropped_from_named_sections():
    config = {
        "pretrain": {"models": {"a": {"objective": "gpt"}, "b": None}},
        "finetune": {"runs": {"r": None}},
        "tokenizers": {"bpe": None, "codon": {"type": "codon"}},
        "probe": {"external": None},
    }
    removed = drop_null_entries(config)
    assert removed == ["tokenizers.bpe", "pretrain.models.b", "finetune.runs.r"]
    assert config["pretrain"]["models"] == {"a": {"objective": "gpt"}}
    assert config["finetune"]["runs"] == {}
    assert config["tokenizers"] == {"codon": {"type": "codon"}}


def test_null_entry_in_a_second_config_file_removes_a_default(tmp_path):
    """`--configfile` merges into config/config.yaml; a null entry removes a default model,
    and a run still naming it stops the dry run naming both."""
    workdir = make_workdir(tmp_path / "wd", test_config=DEMO, keep=KEEP)
    extra = tmp_path / "wd" / "extra.yaml"
    extra.write_text("pretrain:\n  models:\n    gpt_codon: null\n")
    proc = snakemake(workdir, "-n", "--configfile", "extra.yaml", timeout=300)
    assert proc.returncode != 0
    assert "finetune.runs.gpt_codon_frozen: model 'gpt_codon' is not defined" in (
        proc.stdout + proc.stderr
    )
    extra.write_text(
        "pretrain:\n  models:\n    gpt_codon: null\nfinetune:\n  runs:\n"
        "    gpt_codon_frozen: null\ngenerate:\n  models: [gpt_nucleotide]\n"
    )
    proc = snakemake(workdir, "-n", "--configfile", "extra.yaml", timeout=300)
    assert proc.returncode == 0, fail_message(proc)
    assert "results/models/gpt_codon/" not in proc.stdout
    assert "results/models/gpt_nucleotide/" in proc.stdout


def test_rule_writes_the_table_from_results(tmp_path):
    """The rule reproduce_table on results already in place (only that rule may run)."""
    row = {"paper": "g", "metric": "ppl", "published": 39.13, "source": "pretrain",
           "model": "gpt_codon", "deviation": "tiny"}  # fmt: skip
    models = {"gpt_codon": {"objective": "gpt", "tokenizer": "codon", "preset": "tiny",
                            "seeds": [0, 1]}}  # fmt: skip
    workdir = make_workdir(
        tmp_path / "wd",
        {"reproduce": {"rows": [row]}, "pretrain": {"models": models}},
        test_config=DEMO,
        keep=KEEP,
    )
    for name, loss in (("gpt_codon", 3.7), ("gpt_codon_seed1", 3.8)):
        _metrics(workdir / f"results/models/{name}/metrics.json", loss, BASES)
    proc = snakemake(
        workdir, "results/reproduce/table.md", "--allowed-rules", "reproduce_table", timeout=300
    )
    assert proc.returncode == 0, fail_message(proc)
    table = pd.read_csv(workdir / "results/reproduce/table.tsv", sep="\t")
    assert table.loc[0, "n_seeds"] == 2
    assert table.loc[0, "ours"] == pytest.approx((math.exp(3.7) + math.exp(3.8)) / 2, rel=1e-5)
    assert "| g | ppl | 39.13 |" in (workdir / "results/reproduce/table.md").read_text()
