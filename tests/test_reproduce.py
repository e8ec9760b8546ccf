"""The reproduction configs (config/reproduce/*.yaml): each dry-runs with `--configfile` as
README.md shows, the published numbers of each config's header match README.md's
"Reproducing published results" tables, and every `reproduce.rows` number is one of them.

The dry runs happen in a temporary copy of the repository's config folder, as on a fresh
clone: nothing is fetched beforehand (the DNA-LLM TF-binding files and hg38 are URLs that
jobs download); `../shared/data` is a link to the shared data (the CPU config's sheet names
it relative to the repository). A dry run downloads nothing: no resources/ or results/
appear."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.support.workflow_runner import fail_message, snakemake

REPO = Path(__file__).resolve().parents[1]
CONFIGS = ("cpu", "dnallm", "genomics_lm", "nt_species_probe")
NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?!\w|\.\d)")  # a sentence's full stop may follow


def header_numbers(path: Path) -> set[float]:
    """The numbers with a decimal point in the config header's "Published numbers" block
    (from that line to the end of the leading comment)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Published numbers"))
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line)
    return {float(x) for x in NUMBER.findall(" ".join(block))}


def readme_numbers() -> dict[str, set[float]]:
    """config path -> the numbers of its 'published number(s)' cell in README.md's section
    "Reproducing published results"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Reproducing published results", 1)[1].split("\n## ", 1)[0]
    out: dict[str, set[float]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[1].startswith("`config/reproduce/"):
            continue
        out[cells[1].strip("`")] = {float(x) for x in NUMBER.findall(cells[2])}
    return out


def test_header_numbers_match_the_readme_table():
    table = readme_numbers()
    assert set(table) == {f"config/reproduce/{c}.yaml" for c in CONFIGS}
    for name in CONFIGS:
        path = REPO / "config" / "reproduce" / f"{name}.yaml"
        header = header_numbers(path)
        assert header, f"{path}: no published numbers in its header"
        assert header == table[f"config/reproduce/{name}.yaml"], name
    # the CPU reproduction lists the three papers' numbers
    papers = set().union(*(header_numbers(REPO / "config/reproduce" / f"{c}.yaml")
                           for c in CONFIGS if c != "cpu"))  # fmt: skip
    assert header_numbers(REPO / "config/reproduce/cpu.yaml") <= papers


@pytest.mark.parametrize("name", CONFIGS)
def test_table_rows_use_the_header_numbers(name):
    path = REPO / "config" / "reproduce" / f"{name}.yaml"
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["reproduce"]["rows"]
    assert rows
    header = header_numbers(path)
    for row in rows:
        published = row.get("published", [])
        values = published if isinstance(published, list) else [published]
        assert set(map(float, values)) <= header, (name, row["metric"])
        assert row["deviation"].strip(), (name, row["metric"])
        # a control, or a model the paper did not run, has no published number beside it
        control = "control" in row["metric"] or row.get("regime") in ("random-init", "fine-tuned")
        if control or row.get("run", "").endswith("_random"):
            assert "published" not in row, (name, row["metric"])


def test_cpu_table_gives_paper_numbers_only_to_what_the_papers_ran():
    """config/reproduce/cpu.yaml: the random-weights controls, the codon GPT's probe row
    and the fine-tuned row carry no published number (the papers never ran them)."""
    path = REPO / "config" / "reproduce" / "cpu.yaml"
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["reproduce"]["rows"]
    unpublished = {
        (row["source"], row.get("run") or row.get("model"), row.get("regime", ""))
        for row in rows
        if "published" not in row
    }
    assert unpublished == {
        ("finetune", "gpt_nucleotide_random", ""),
        ("probe", "mlm_kmer6", "random-init"),
        ("probe", "gpt_codon", ""),
        ("finetune", "mlm_kmer6_partial", ""),
    }


def _workdir(tmp_path: Path, shared: Path) -> Path:
    """A repository-shaped folder as a fresh clone has it: config/ (the defaults and
    config/reproduce/) and, beside it, ../shared/data; no resources/."""
    work = tmp_path / "repo"
    shutil.copytree(REPO / "config", work / "config")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared, target_is_directory=True)
    return work


#: a clearly fake commit for the dry runs: nothing is fetched; a user sets the real one
FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
#: what a config leaves to the user, as its header says: the NT-v2 entry's commit
USER_SET = {
    "nt_species_probe": (
        "--config",
        'models={"external": {"nt50m": {"revision": "' + FAKE_COMMIT + '"}}}',
    ),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_dry_runs(tmp_path, shared_data, name):
    work = _workdir(tmp_path, shared_data)
    config = f"config/reproduce/{name}.yaml"
    proc = snakemake(work, "-n", "--configfile", config, *USER_SET.get(name, ()), timeout=600)
    assert proc.returncode == 0, fail_message(proc)
    out = proc.stdout
    assert "reproduce_table" in out  # the table is part of the run
    assert "pretrain" in out
    if name == "nt_species_probe":
        # the post's second half: NT-v2-50M fetched once, fine-tuned, probed again
        assert "fetch_external_model" in out
        assert "results/finetune/species_fragments/nt50m_partial/metrics.json" in out
        assert "results/probe/embeddings/fine-tuned/nt50m_partial.npz" in out
        assert "results/figures/probe/umap_before_after/nt50m_partial.png" in out
    if name == "dnallm":  # hg38 and the TF files are URLs: downloaded by jobs, not the dry run
        assert "download_primary" in out
        assert out.count("rule download_task_file:") == 2
    if name == "cpu":  # the TF windows' training split is a pretraining corpus
        assert "task_windows" in out
    assert not (work / "resources").exists()
    assert not (work / "results").exists()


def test_nt_species_probe_leaves_the_model_commit_to_the_user(tmp_path, shared_data):
    """Shipped without a commit (none can be looked up here, and none is made up): the dry
    run stops naming the key to set and where the commits are listed."""
    work = _workdir(tmp_path, shared_data)
    proc = snakemake(
        work, "-n", "--configfile", "config/reproduce/nt_species_probe.yaml", timeout=600
    )
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "models.external.nt50m.revision" in text
    assert (
        "https://huggingface.co/InstaDeepAI/nucleotide-transformer-v2-50m-multi-species/"
        "commits/main" in text
    )


def test_cpu_table_target_builds_no_figures(tmp_path, shared_data):
    """The README's CPU command asks for the table only: no figure, generation or walk jobs."""
    work = _workdir(tmp_path, shared_data)
    proc = snakemake(
        work, "-n", "results/reproduce/table.md", "--configfile", "config/reproduce/cpu.yaml",
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, fail_message(proc)
    jobs = set(re.findall(r"^rule (\w+):", proc.stdout, flags=re.M))
    assert {"pretrain", "finetune", "probe", "reproduce_table", "task_windows"} <= jobs
    assert not jobs & {"pretrain_figures", "generate", "umap", "walk_figures", "finetune_tracks"}


@pytest.mark.parametrize("name", CONFIGS)
def test_config_dry_runs_with_the_slurm_profile(tmp_path, shared_data, name):
    """README.md's cluster form: the same configs under profiles/slurm (a dry run submits
    nothing, so no SLURM is needed); the GPU rules ask for their GPU."""
    work = _workdir(tmp_path, shared_data)
    proc = snakemake(
        work, "-n", "--profile", str(REPO / "profiles" / "slurm"),
        "--configfile", f"config/reproduce/{name}.yaml", *USER_SET.get(name, ()), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, fail_message(proc)
    assert "reproduce_table" in proc.stdout
    assert "gpu=1" in proc.stdout


#: the table.tsv of the measured run of config/reproduce/cpu.yaml whose Markdown the README shows
CPU_TABLE = REPO / "config" / "reproduce" / "cpu_table.tsv"


def test_readme_shows_the_generated_cpu_table():
    """The README's CPU reproduction table is the generator's rendering of the kept table.tsv
    (not a hand edit), and the kept table has exactly the rows cpu.yaml asks for."""
    import pandas as pd

    from dnalm.report.reproduce import render_tsv

    text = render_tsv(CPU_TABLE)
    readme = (REPO / "README.md").read_text()
    assert text in readme, (
        "README.md does not hold the rendering of config/reproduce/cpu_table.tsv: paste "
        "dnalm.report.reproduce.render_tsv(...) of it into the CPU reproduction section"
    )
    rows = yaml.safe_load((REPO / "config/reproduce/cpu.yaml").read_text())["reproduce"]["rows"]
    kept = pd.read_csv(CPU_TABLE, sep="\t", dtype=str)
    assert list(zip(kept["paper"], kept["metric"], strict=True)) == [
        (r["paper"], " ".join(str(r["metric"]).split())) for r in rows
    ], "config/reproduce/cpu_table.tsv is stale: rerun cpu.yaml and keep its table.tsv"


def _suite_stubs(work: Path) -> dict[str, list[str]]:
    """Empty task folders in each suite's layout where config/reproduce/suites.yaml expects
    them (the plan checks their files; a dry run reads no row), and the tasks by suite."""
    config = yaml.safe_load((REPO / "config/reproduce/suites.yaml").read_text(encoding="utf-8"))
    suites = config["suites"]
    human = "http://ftp.ensembl.org/pub/release-97/fasta/homo_sapiens/dna/Homo_sapiens.GRCh38.dna.toplevel.fa.gz"
    for task in suites["gb"]["tasks"]:
        folder = work / suites["gb"]["source"] / task
        meta = "classes:\n"
        for cls in ("negative", "positive"):
            meta += f"  {cls}:\n    extra_processing: ENSEMBL_HUMAN_GENOME\n    type: fa.gz\n"
            meta += f"    url: {human}\n"
            for split in ("train", "test"):
                (folder / split).mkdir(parents=True, exist_ok=True)
                (folder / split / f"{cls}.csv.gz").write_bytes(b"")
        (folder / "metadata.yaml").write_text(meta + "version: 0\n")
    for name, files in (("nt", ("train.parquet", "test.parquet")),
                        ("gue", ("train.csv", "dev.csv", "test.csv"))):  # fmt: skip
        for task in suites[name]["tasks"]:
            folder = work / suites[name]["source"] / task
            folder.mkdir(parents=True, exist_ok=True)
            for file in files:
                (folder / file).write_bytes(b"")
    return {name: spec["tasks"] for name, spec in suites.items()}


def test_suites_config_dry_runs(tmp_path, shared_data):
    """config/reproduce/suites.yaml: Genomic Benchmarks' eight sets, the 18 revised NT
    downstream tasks and GUE's 28 plan every task, both baselines on each, the human
    reference download, each suite's audit and table; nothing is fetched."""
    work = _workdir(tmp_path, shared_data)
    tasks = _suite_stubs(work)
    assert (len(tasks["gb"]), len(tasks["nt"]), len(tasks["gue"])) == (8, 18, 28)
    proc = snakemake(work, "-n", "--configfile", "config/reproduce/suites.yaml", timeout=600)
    assert proc.returncode == 0, fail_message(proc)
    out = proc.stdout
    assert out.count("rule suite_task:") == 8 + 18 + 28
    assert out.count("rule suite_audit:") == 3
    assert out.count("rule suite_table:") == 3
    assert "results/tasks/gue_EMP_H3/data.tsv" in out
    assert "results/finetune/nt_H3K4me3/onehot_cnn/metrics.json" in out
    assert "results/finetune/gb_human_nontata_promoters/kmer" in out
    assert out.count("rule download_task_file:") == 1  # one human genome for the 8 stubs
    assert not (work / "results").exists()
