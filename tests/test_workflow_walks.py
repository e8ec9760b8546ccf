"""The walk and CGR rules through the real workflow on two shared genomes, and the
natural-vs-generated figures from generation-stage files placed where that stage writes them."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from tests.support.workflow_runner import fail_message, make_workdir, slim_config, snakemake
from tests.test_report_figures import assert_figure

WALK_FIGURES = ["results/figures/walks/walks.png", "results/figures/walks/cgr.png"]
GENERATED_FIGURES = [
    "results/figures/walks/generated_cgr.png",
    "results/figures/walks/generated_umap.png",
]


def workdir(tmp_path, shared_data, generated: bool, enabled: bool = True, generate: bool = False):
    tmp_path.mkdir(parents=True, exist_ok=True)
    sheet = tmp_path / "sheet.tsv"
    gb = shared_data / "genbank"
    sheet.write_text(
        "sample\tspecies\tsource\tformat\tspecies_task\n"
        f"ctrachomatis\tChlamydia trachomatis\t{gb / 'ct.gbk.gz'}\tgbff\tfalse\n"
        f"mgallisepticum\tMycoplasma gallisepticum\t{gb / 'Mgallisepticum.gbff.gz'}\tgbff\tfalse\n"
    )
    return make_workdir(
        tmp_path / "wd",
        sheet=sheet,
        config_overrides={
            "walks": {"enabled": enabled, "generated": generated, "k": 4, "max_sequences": 40},
            "splits": {"method": "identity"},
        },
        replace={**slim_config(), **({"generate": {"enabled": True}} if generate else {})},
    )


def dry_run_rules(wd, *targets) -> set[str]:
    proc = snakemake(wd, "-n", "--quiet", "rules", *targets)
    assert proc.returncode == 0, fail_message(proc)
    return set(proc.stdout.split()) | set(proc.stderr.split())


def test_walk_rules_are_default_targets_behind_their_switches(tmp_path, shared_data):
    rules = dry_run_rules(workdir(tmp_path / "on", shared_data, generated=False))
    assert "walk_figures" in rules
    assert "walk_generated_figures" not in rules
    # generated on: its figures follow the generation stage (off in the slim config, on here)
    rules = dry_run_rules(workdir(tmp_path / "gen_off", shared_data, generated=True))
    assert "generate" not in rules
    assert "walk_generated_figures" not in rules
    wd = workdir(tmp_path / "gen", shared_data, generated=True, generate=True)
    rules = dry_run_rules(wd)
    assert {"generate", "walk_generated_figures"} <= rules
    rules = dry_run_rules(workdir(tmp_path / "off", shared_data, False, enabled=False))
    assert "walk_figures" not in rules
    assert "extract_cds" in rules  # the rest of the workflow is still there


def write_fa(path, seqs):
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as fh:
        fh.writelines(f">g{i}\n{s}\n" for i, s in enumerate(seqs))


@pytest.mark.slow
def test_walk_and_cgr_figures_run_on_two_genomes(tmp_path, shared_data):
    wd = workdir(tmp_path, shared_data, generated=True, generate=True)
    proc = snakemake(wd, *WALK_FIGURES)
    assert proc.returncode == 0, fail_message(proc)
    for fig in WALK_FIGURES:
        texts, _ = assert_figure([wd / fig, (wd / fig).with_suffix(".svg")], wd / fig)
        assert any(t.startswith("ctrachomatis (40)") for t in texts), texts
        assert any(t.startswith("mgallisepticum (40)") for t in texts), texts
    log = (wd / "results/logs/figures/walks.log").read_text()
    assert "ctrachomatis:" in log
    assert "held-out CDS" in log

    # The generation stage's files for the one causal model: natural held-out CDS, "generated"
    # ones (shuffled natural CDS) and "Markov" ones (random GC-rich sequences).
    from dnalm.core.io import read_fasta

    natural = [s for _, s, _ in read_fasta(wd / "results/splits/ctrachomatis/test.fa.gz")]
    rng = np.random.default_rng(0)
    out = wd / "results/generate/gpt_nucleotide"
    write_fa(out / "natural.fa.gz", natural)
    write_fa(out / "samples.fa.gz", ["".join(rng.permutation(list(s))) for s in natural])
    p = [0.15, 0.35, 0.35, 0.15]
    write_fa(out / "markov.fa.gz", ["".join(rng.choice(list("ACGT"), 600, p=p)) for _ in natural])
    # only these rules: the generation stage's rules must not rebuild the files placed here
    proc = snakemake(wd, *GENERATED_FIGURES, "--allowed-rules", "walk_generated_figures")
    assert proc.returncode == 0, fail_message(proc)
    for fig in GENERATED_FIGURES:
        assert_figure([wd / fig, (wd / fig).with_suffix(".svg")], wd / fig)
    coords = pd.read_csv(wd / "results/figures/walks/generated_umap.tsv", sep="\t")
    n = min(len(natural), 40)
    assert coords["source"].value_counts().to_dict() == {
        "natural": n, "gpt_nucleotide": n, "markov": n,
    }  # fmt: skip
