"""The README's main-job command, run exactly as written (extracted by
tests/support/readme.py), on a copy of the repository in an empty folder with nothing beside
it: no ../shared, no virtual environment, no results. It must set up, run the embedded demo
end to end and write the report."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.support.readme import readme_commands

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


@pytest.mark.slow
def test_main_command_runs_from_a_fresh_copy(tmp_path):
    empty = tmp_path / "empty"
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
        timeout=1800,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    report = repo / "results" / "report.html"
    assert report.is_file(), tail
    assert report.stat().st_size > 1_000_000, tail
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
