"""TSTR / TRTS: a generation set as one side of a sequence task (dnalm.tasks.generated), and
one such task built by the workflow's sequence_task rule."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.tasks.generated import (
    check_generated_task,
    generated_rows,
    prompt_species,
    write_generated_table,
)
from dnalm.tasks.sequence import build_sequence_task
from tests.support.workflow_runner import make_workdir, snakemake


def _fa(path: Path, records) -> Path:
    text = "".join(f">{h}\n{s}\n" for h, s in records)
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def _seq(rng: random.Random, n: int, alphabet: str = "ACGT") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _prompts_and_samples(tmp: Path, n_per_species: int = 12):
    """Test FASTAs of two samples (species AT-rich and GC-rich) and a generation set whose
    samples continue their prefixes in the same style, plus free samples."""
    rng = random.Random(0)
    prompts, gen = [], []
    for j, (name, alphabet) in enumerate((("at", "AATTAATTGC"), ("gc", "GGCCGGCCAT"))):
        recs = [
            (f"{name}_cds{i} sample={name}", _seq(rng, 90, alphabet)) for i in range(n_per_species)
        ]
        if j == 1:  # an id both files share: the second becomes "at_cds0#1"
            recs.append(("at_cds0", _seq(rng, 90, alphabet)))
        prompts.append((_fa(tmp / f"{name}_test.fa.gz", recs), f"{name.upper()} species"))
        for h, s in recs:
            sid = h.split()[0] + ("#1" if j == 1 and h == "at_cds0" else "")
            k = len(gen) + 1
            gen.append((f"prefix{k} kind=prefix prefix_id={sid} stop=length_cap",
                        s[:30] + _seq(rng, 60, alphabet)))  # fmt: skip
    gen += [(f"free{i} kind=free prefix_id=- stop=eos", _seq(rng, 60)) for i in range(3)]
    return prompts, _fa(tmp / "samples.fa.gz", gen)


def test_generated_rows_label_by_prompt_species_and_cut_prompt(tmp_path):
    prompts, samples = _prompts_and_samples(tmp_path)
    species = prompt_species(prompts)
    assert species["at_cds0"] == "AT species"
    assert species["at_cds0#1"] == "GC species"  # renamed as the generation stage does
    df = generated_rows(samples, species, prompt_nt=30)
    assert len(df) == 25  # 12 + 13 prompted; the 3 free samples have no species
    assert set(df["label"]) == {"AT species", "GC species"}
    assert (df["sequence"].str.len() == 60).all()
    assert df.loc[df["prompt_id"] == "at_cds0#1", "label"].item() == "GC species"
    kept = generated_rows(samples, species, prompt_nt=30, keep_prompt=True)
    assert (kept["sequence"].str.len() == 90).all()
    with pytest.raises(InputFormatError, match=r"samples\.fa\.gz:\d+: record prefix1 was prompted"):
        generated_rows(samples, {"x": "y"}, prompt_nt=30)


def test_tstr_task_construction(tmp_path):
    prompts, samples = _prompts_and_samples(tmp_path)
    table = write_generated_table(tmp_path / "generated.tsv", samples, prompts, prompt_nt=30)
    rng = random.Random(1)
    real = pd.DataFrame(
        {
            "sequence": [_seq(rng, 60, "AATTAATTGC") for _ in range(8)]
            + [_seq(rng, 60, "GGCCGGCCAT") for _ in range(8)],
            "label": ["AT species"] * 8 + ["GC species"] * 8,
        }
    )
    real.to_csv(tmp_path / "real.tsv", sep="\t", index=False)
    build_sequence_task(tmp_path / "task", table=table, test_table=tmp_path / "real.tsv")
    df = pd.read_csv(tmp_path / "task" / "data.tsv", sep="\t")
    test = df[df["split"] == "test"]
    assert len(test) == 16
    assert set(test["source"]) == {str(tmp_path / "real.tsv")}
    assert set(df.loc[df["split"] != "test", "source"]) == {str(table)}
    assert {"train", "validation"} <= set(df["split"])
    assert "prompt_id" in df.columns  # provenance kept


def test_check_generated_task():
    base = {"kind": "classification", "test_table": "real.tsv"}
    gen = check_generated_task("t", {**base, "generated": {"model": "gpt"}})
    assert gen == {"model": "gpt", "role": "train", "set": "samples", "keep_prompt": False}
    assert check_generated_task("t", base) is None
    with pytest.raises(ConfigError, match=r"sequence_tasks\.t\.generated: role train"):
        check_generated_task("t", {**base, "table": "x.tsv", "generated": {"model": "gpt"}})
    with pytest.raises(ConfigError, match="role test"):
        check_generated_task("t", {**base, "generated": {"model": "gpt", "role": "test"}})
    with pytest.raises(ConfigError, match="kind must be classification"):
        check_generated_task("t", {**base, "kind": "regression", "generated": {"model": "g"}})
    with pytest.raises(ConfigError, match=r"generated\.set"):
        check_generated_task("t", {**base, "generated": {"model": "g", "set": "natural"}})


def test_sequence_task_rule_builds_a_tstr_task(tmp_path, shared_data):
    """The sequence_task rule on a workdir where the generation set and the prompting test
    splits already exist (only that rule allowed to run: no model is trained)."""
    wd = tmp_path / "wd"
    real = tmp_path / "real.tsv"
    make_workdir(
        wd,
        {"tasks": {"sequence_tasks": {"tstr": {
            "kind": "classification", "test_table": str(real),
            "generated": {"model": "gpt_nucleotide", "role": "train"}}}}},
        keep=["spyogenes", "yeast_chrIV"],
    )  # fmt: skip
    config = yaml.safe_load((wd / "config" / "config.yaml").read_text())
    samples = config["corpora"]["cds"].get("samples") or ["spyogenes", "yeast_chrIV"]
    rng = random.Random(2)
    species = {"spyogenes": "Streptococcus pyogenes", "yeast_chrIV": "Saccharomyces cerevisiae"}
    gen, rows = [], []
    for s in samples:
        (wd / "results" / "splits" / s).mkdir(parents=True)
        recs = [(f"{s}_g{i}", "ATG" + _seq(rng, 87)) for i in range(10)]
        _fa(wd / "results" / "splits" / s / "test.fa.gz", recs)
        gen += [(f"prefix{len(gen) + 1} kind=prefix prefix_id={h} stop=length_cap",
                 q[:30] + _seq(rng, 45)) for h, q in recs]  # fmt: skip
        rows += [{"sequence": _seq(rng, 45), "label": species[s]} for _ in range(4)]
    pd.DataFrame(rows).to_csv(real, sep="\t", index=False)
    (wd / "results" / "generate" / "gpt_nucleotide").mkdir(parents=True)
    _fa(wd / "results" / "generate" / "gpt_nucleotide" / "samples.fa.gz", gen)
    r = snakemake(wd, "results/tasks/tstr/data.tsv", "--allowed-rules", "sequence_task",
                  timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    data = pd.read_csv(wd / "results/tasks/tstr/data.tsv", sep="\t")
    assert len(data) == 10 * len(samples) + 4 * len(samples)
    train = data[data["split"] != "test"]
    assert set(train["label"]) == {species[s] for s in samples}
    assert (train["sequence"].str.len() == 45).all()  # the 30-nt prompt is cut off
    assert (data.loc[data["split"] == "test", "sequence"].str.len() == 45).all()
    assert (wd / "results/tasks/tstr/generated.tsv").is_file()
    # task.json says which side is generated, by which model's set
    recorded = json.loads((wd / "results/tasks/tstr/task.json").read_text())["params"]
    assert recorded["generated"] == {
        "model": "gpt_nucleotide",
        "set": "samples",
        "role": "train",
        "keep_prompt": False,
        "prompt_nt": 30,
    }
