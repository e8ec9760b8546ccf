"""The embedded demo (tests/config/demo.yaml) runs every rule of the workflow, or names the
rule here with the reason it cannot run there. Dry runs only: Snakemake's own list of the
workflow's rules against the rules of the jobs the demo plans from scratch (--forceall, so
results already in the repository change nothing)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
DEMO = ["--configfile", "tests/config/demo.yaml"]

# The rules the demo does not run, each with the reason; the README's demo paragraph says the
# same. Everything else must run.
LEFT_OUT = {
    "download_primary": (
        "fetches a genome from NCBI or a URL, and the demo is offline (its genomes are files "
        "in tests/data); tests/test_workflow_data.py runs it against a local HTTP server"
    ),
    "download_annotation": (
        "fetches the GFF3/GTF of a genome given as a URL, and the demo is offline; "
        "tests/test_workflow_data.py runs the download stage against a local HTTP server"
    ),
    "download_task_file": (
        "fetches a task file given as a URL, and the demo's task files are in tests/data; "
        "tests/test_workflow_data.py runs it against a local HTTP server"
    ),
    "fetch_external_model": (
        "needs a published model (a Hub id or its folder), and the demo ships none; "
        "tests/test_workflow_external.py runs it on a folder in the Hub's layout built at test "
        "time, fine-tuned and probed on the demo data"
    ),
    "suite_task": (
        "builds the task of a benchmark suite (config suites), and the demo names none yet; "
        "tests/test_workflow_suites.py runs it on a Genomic Benchmarks set built at test time "
        "from the shared genomes, its reference served by a local HTTP server"
    ),
    "suite_audit": (
        "audits the test items of a benchmark suite for leakage, and the demo names no suite "
        "yet; tests/test_workflow_suites.py runs it on the same Genomic Benchmarks set"
    ),
    "suite_table": (
        "tabulates a benchmark suite over its tasks, and the demo names no suite yet; "
        "tests/test_workflow_suites.py runs it on the same Genomic Benchmarks set"
    ),
}
# Snakemake's target rule, planned by every run.
ALWAYS = {"all"}


def run_snakemake(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "workflow/scripts"), str(REPO)])}
    proc = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc.stdout + proc.stderr


def workflow_rules() -> set[str]:
    """Every rule the workflow declares (snakemake --list-rules)."""
    out = run_snakemake(*DEMO, "--list-rules")
    return {line.strip() for line in out.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}


def demo_rules() -> dict[str, int]:
    """Rule -> number of jobs the demo runs from scratch (the dry run's job table)."""
    out = run_snakemake(*DEMO, "--dry-run", "--forceall", "--quiet", "rules")
    table = out.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
        elif counts and not line.strip():
            break
    return counts


def test_demo_runs_every_rule_or_names_why_not():
    declared = workflow_rules()
    assert {"pretrain", "finetune", "reproduce_table"} <= declared, sorted(declared)
    planned = demo_rules()
    assert planned, "the demo's dry run planned no jobs"
    missing = sorted(declared - set(planned) - set(LEFT_OUT) - ALWAYS)
    assert not missing, (
        "rules the demo (tests/config/demo.yaml) does not run: "
        + ", ".join(missing)
        + "; run each in the demo, or add it to LEFT_OUT in tests/test_demo.py with the reason "
        "(and to the README's demo paragraph)"
    )
    unknown = sorted(set(LEFT_OUT) - declared)
    assert not unknown, f"LEFT_OUT names rules the workflow does not have: {unknown}"
    stale = sorted(set(LEFT_OUT) & set(planned))
    assert not stale, f"LEFT_OUT names rules the demo runs now; drop them from it: {stale}"
