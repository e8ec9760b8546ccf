"""Genome and region windows (dnalm.genome.windows, regions, corpora) on real genomes: yeast
chrIV (sacCer3, with its GTF) and S. pyogenes; blocks never straddle splits, contig hold-out,
N handling, GPN-style regions, exclusion of task windows and the leakage table, and the
config errors that stop a run before any job."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta
from dnalm.genome.corpora import check_window_fits, corpus_spec, corpus_specs
from dnalm.genome.regions import overlaps_union, target_regions, union
from dnalm.genome.samples import Sample
from dnalm.genome.windows import (
    SPLITS,
    cut_windows,
    leakage_table,
    load_exclusions,
    parse_record_name,
    task_intervals,
    task_windows,
)
from tests.support.workflow_runner import make_workdir, snakemake

FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
SAMPLES = {
    "yeast": Sample("yeast", "S. cerevisiae", "y.fa.gz", "fasta_gff", annotation="y.gtf"),
    "spy": Sample("spy", "S. pyogenes", "s.gb", "gbff"),
    "hx": Sample("hx", "E. coli", "hx.fa", "cds_fasta"),
    "bare": Sample("bare", "E. coli", "g.fa", "fasta"),
}


@pytest.fixture(scope="module")
def yeast(shared_data) -> Path:
    return shared_data / "fasta_gff" / "sacCer3_chrIV.fa.gz"


@pytest.fixture(scope="module")
def yeast_features(shared_data) -> pd.DataFrame:
    """The features table (0-based half-open) from the yeast GTF: transcripts as genes."""
    gtf = pd.read_csv(shared_data / "fasta_gff/sacCer3_chrIV.annotation.gtf.gz", sep="\t",
                      header=None, comment="#")  # fmt: skip
    gtf = gtf[gtf[2].isin(["transcript", "exon", "CDS"])]
    name = gtf[8].str.extract(r'gene_id "([^"]+)"')[0]
    return pd.DataFrame({
        "contig": gtf[0], "start": gtf[3] - 1, "end": gtf[4], "strand": gtf[6],
        "type": gtf[2].replace({"transcript": "gene"}), "name": name,
    }).reset_index(drop=True)  # fmt: skip


def spec(**kw) -> dict:
    return corpus_spec("g", {"source": "genome", "samples": ["yeast"], **kw}, SAMPLES)


def outputs(folder: Path) -> dict[str, Path]:
    out = {p: folder / f"{p}.fa.gz" for p in SPLITS}
    return out | {k: folder / f"{k}.tsv" for k in ("summary", "contigs", "overlaps")}


def records(out) -> dict[str, list[tuple[str, int, int, str, str]]]:
    got = {}
    for p in SPLITS:
        got[p] = [(*parse_record_name(h), s) for h, s, _ in read_fasta(out[p])]
    return got


def genome_seq(path) -> str:
    return next(iter(read_fasta(path)))[1]


def test_reverse_complement_keeps_lower_case():
    assert reverse_complement("ACGTNacgtn") == "nacgtNACGT"
    assert reverse_complement("AAcc") == "ggTT"


def test_overlapping_windows_never_straddle_splits(tmp_path, yeast):
    s = spec(window=120, stride=60, both_strands=True, split={"block_size": 20_000})
    summary = cut_windows("yeast", yeast, outputs(tmp_path), s, FRACTIONS, corpus="g")
    got = records(outputs(tmp_path))
    seq = genome_seq(yeast)
    unions = {}
    for p in SPLITS:
        plus = [r for r in got[p] if r[3] == "+"]
        minus = [r for r in got[p] if r[3] == "-"]
        assert len(plus) == len(minus)  # each window followed by its reverse complement
        row = summary.set_index("split").loc[p]
        assert row["n_windows"] == len(got[p])
        assert row["nt"] == sum(e - b for _, b, e, _, _ in got[p])
        for contig, b, e, strand, sub in got[p][:200]:
            assert contig == "chrIV"
            want = seq[b:e] if strand == "+" else reverse_complement(seq[b:e])
            assert sub == want
        starts = np.array([r[1] for r in plus])
        ends = np.array([r[2] for r in plus])
        assert (starts // 20_000 == (ends - 1) // 20_000).all(), "a window spans two blocks"
        unions[p] = union(starts, ends)
    # overlapping windows (stride < window) exist, but never across two splits
    assert len(got["train"]) > 40_000
    assert len(got["test"]) > 0
    assert len(got["validation"]) > 0
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not overlaps_union(*unions[a], *unions[b]).any(), (a, b)
    # the same blocks go to the same split whatever the window
    s2 = spec(window=100, split={"block_size": 20_000})
    cut_windows("yeast", yeast, outputs(tmp_path / "b"), s2, FRACTIONS, corpus="g")
    got2 = records(outputs(tmp_path / "b"))
    blocks = lambda g: {r[1] // 20_000 for r in g}  # noqa: E731
    for p in SPLITS:
        assert blocks(got2[p]) == blocks(got[p])


def test_block_hold_out_on_spyogenes_and_yeast(tmp_path, shared_data, yeast):
    """The shared-data test config's genome corpus: 120-nt windows, stride 240, 20 kb blocks."""
    from Bio import SeqIO

    with gzip.open(shared_data / "genbank/Streptococcus_pyogenes_M1_GAS.gb.gz", "rt") as fh:
        rec = next(SeqIO.parse(fh, "genbank"))
    fa = tmp_path / "spy.fa"
    fa.write_text(f">{rec.id}\n{rec.seq}\n")
    sheet = {"spyogenes": SAMPLES["spy"], "yeast_chrIV": SAMPLES["yeast"]}  # the hash uses IDs
    s = corpus_spec(
        "genome",
        {"source": "genome", "samples": ["spyogenes", "yeast_chrIV"], "window": 120,
         "stride": 240, "split": {"block_size": 20_000}},
        sheet,
    )  # fmt: skip
    spy = cut_windows(
        "spyogenes", fa, outputs(tmp_path / "spy"), s, FRACTIONS, corpus="g"
    ).set_index("split")
    yst = cut_windows(
        "yeast_chrIV", yeast, outputs(tmp_path / "y"), s, FRACTIONS, corpus="g"
    ).set_index("split")
    # 1,852,441 bp in 93 blocks; 1,531,933 bp in 77 blocks
    assert spy["n_blocks"].sum() == 93
    assert yst["n_blocks"].sum() == 77
    assert spy.loc["train", "n_windows"] == 6360
    assert spy.loc["test", "n_windows"] == 664
    assert yst.loc["train", "n_windows"] == 5611
    assert yst.loc["test", "n_windows"] == 249
    assert (spy["n_dropped_n"] == 0).all()
    assert (yst["n_dropped_n"] == 0).all()


def test_contig_hold_out_and_missing_contig(tmp_path, yeast):
    s = spec(window=1000, split={"method": "contigs", "contigs": {"yeast": {"test": ["chrIV"]}}})
    summary = cut_windows("yeast", yeast, outputs(tmp_path), s, FRACTIONS, corpus="g").set_index(
        "split"
    )
    assert summary.loc["test", "n_windows"] == 1531
    assert summary.loc["train", "n_windows"] == 0
    bad = spec(window=1000, split={"method": "contigs", "contigs": {"yeast": {"test": ["chrV"]}}})
    with pytest.raises(ConfigError, match=r"corpora\.g\.split\.contigs\.yeast\.test: .*'chrV'"):
        cut_windows("yeast", yeast, outputs(tmp_path / "bad"), bad, FRACTIONS, corpus="g")
    assert not (tmp_path / "bad" / "train.fa.gz").exists()  # atomic: nothing left behind


def test_a_genome_with_two_records_of_one_name_is_refused(tmp_path):
    """Both header lines are named (not only the second), and no split file is left."""
    seq = "ACGT" * 300
    fa = tmp_path / "dup.fa"
    fa.write_text(f">chrA one\n{seq}\n>chrB\n{seq}\n>chrA two\n{seq}\n")
    with pytest.raises(InputFormatError) as err:
        cut_windows("yeast", fa, outputs(tmp_path / "o"), spec(window=500), FRACTIONS, corpus="g")
    assert str(err.value).startswith(
        f"{fa}: two records are named 'chrA' (headers at lines 1 and 5)"
    )
    assert not list((tmp_path / "o").glob("*.fa.gz"))


def test_n_windows_dropped_or_split(tmp_path, yeast):
    """The first 60 kb of chrIV with 2,000 bases set to N (soft-masked part kept lower case)."""
    seq = genome_seq(yeast)[:60_000]
    seq = seq[:10_000] + "N" * 2_000 + seq[12_000:30_000].lower() + seq[30_000:]
    fa = tmp_path / "n.fa"
    fa.write_text(f">chrIV\n{seq}\n")
    keep = spec(window=500, split={"block_size": 60_000})
    summary = cut_windows("yeast", fa, outputs(tmp_path / "k"), keep, FRACTIONS, corpus="g")
    # windows [10000, 10500) ... [11500, 12000) are all N: 4 dropped, the rest kept
    assert summary["n_dropped_n"].sum() == 4
    assert summary["n_windows"].sum() == 120 - 4
    split = spec(window=500, n_runs="split", min_length=100, split={"block_size": 60_000})
    cut_windows("yeast", fa, outputs(tmp_path / "s"), split, FRACTIONS, corpus="g")
    got = [r for rs in records(outputs(tmp_path / "s")).values() for r in rs]
    starts = {r[1] for r in got}
    assert 12_000 in starts  # windows restart right after the N run
    assert not any(r[1] < 12_000 and r[2] > 10_000 for r in got)
    lower = next(r for r in got if r[1] == 12_000)[4]
    assert lower == seq[12_000:12_500]
    assert lower.islower()


def test_promoter_and_intergenic_regions(tmp_path, yeast, yeast_features):
    length = len(genome_seq(yeast))
    genes = yeast_features[yeast_features["type"] == "gene"]
    prom = target_regions(yeast_features, "chrIV", length, ["promoter"], 500)
    plus = genes[genes["strand"] == "+"].iloc[5]
    minus = genes[genes["strand"] == "-"].iloc[5]
    for a, b in ((plus["start"] - 500, plus["start"]), (minus["end"], minus["end"] + 500)):
        assert overlaps_union(np.array([a]), np.array([b]), *prom).all()
        i = np.searchsorted(prom[1], a, side="right")
        assert prom[0][i] <= a
        assert prom[1][i] >= b
    inter = target_regions(yeast_features, "chrIV", length, ["intergenic"], 0)
    gene_union = union(genes["start"], genes["end"])
    assert not overlaps_union(*inter, *gene_union).any()
    assert (inter[1] - inter[0]).sum() + (gene_union[1] - gene_union[0]).sum() == length
    s = corpus_spec(
        "r",
        {"source": "regions", "samples": ["yeast"], "features": ["promoter", "intergenic"],
         "upstream": 500, "window": 120, "min_length": 60, "split": {"block_size": 20_000}},
        SAMPLES,
    )  # fmt: skip
    summary = cut_windows(
        "yeast", yeast, outputs(tmp_path), s, FRACTIONS, corpus="g", features=yeast_features
    )
    got = [r for rs in records(outputs(tmp_path)).values() for r in rs]
    target = target_regions(yeast_features, "chrIV", length, ["promoter", "intergenic"], 500)
    starts, ends = np.array([r[1] for r in got]), np.array([r[2] for r in got])
    # every window lies inside one target region and one block
    i = np.searchsorted(target[1], starts, side="right")
    assert ((target[0][i] <= starts) & (ends <= target[1][i])).all()
    assert (starts // 20_000 == (ends - 1) // 20_000).all()
    assert ((ends - starts) >= 60).all()
    assert ((ends - starts) <= 120).all()
    assert summary["n_windows"].sum() == len(got) == 4011


def test_task_windows_excluded_from_train_and_leakage_table(tmp_path, yeast, yeast_features):
    """Gene bodies of chrIV placed as a per-window task (test split every third), plus the
    DNA-LLM chr22 windows, which no yeast contig carries."""
    genes = yeast_features[yeast_features["type"] == "gene"].drop_duplicates("name").head(90)
    task = pd.DataFrame({
        "id": genes["name"], "chrom": "chrIV", "start": genes["start"], "end": genes["end"] - 1,
        "split": ["test", "train", "validation"] * 30,
    })  # fmt: skip
    chr22 = pd.DataFrame({"id": ["chr22_10510500_10510799"], "split": ["test"],
                          "chrom": ["chr22"], "start": [10510500], "end": [10510799]})  # fmt: skip
    exclude = {
        "task:genes": task_intervals(task, end_inclusive=True),
        "task:tf_binding": task_intervals(chr22, end_inclusive=True),
    }
    s = spec(window=120, split={"block_size": 20_000})
    out = outputs(tmp_path)
    summary = cut_windows("yeast", yeast, out, s, FRACTIONS, corpus="g", exclude=exclude).set_index(
        "split"
    )
    got = records(out)
    iv = exclude["task:genes"]
    u = union(iv["start"], iv["end"])
    train = got["train"]
    assert not overlaps_union([r[1] for r in train], [r[2] for r in train], *u).any()
    assert summary.loc["train", "n_excluded"] > 0
    val = got["validation"]
    assert overlaps_union([r[1] for r in val], [r[2] for r in val], *u).any()  # train only
    overlaps = pd.read_csv(out["overlaps"], sep="\t", dtype={"id": str})
    table = leakage_table(
        "g", pd.read_csv(out["contigs"], sep="\t"), overlaps, exclude, list(exclude)
    ).set_index(["source", "split"])
    genes_train = table.loc[("task:genes", "train")]
    assert genes_train["n_windows"] == 30
    assert genes_train["n_on_pretraining_contigs"] == 30
    assert genes_train["overlapping_before_exclusion"] > 0
    assert genes_train["overlapping"] == 0
    tested = set(task.loc[task["split"] == "test", "id"])
    hit_test = overlaps[(overlaps["split"] == "test") & (overlaps["source"] == "task:genes")]
    assert table.loc[("task:genes", "test"), "overlapping"] == len(set(hit_test["id"]) & tested)
    tf = table.loc[("task:tf_binding", "train")]
    assert tf["overlapping"] == 0
    assert tf["n_on_pretraining_contigs"] == 0
    assert "no pretraining contig is named chr22" in tf["contig_match"]


def test_corpus_config_errors():
    def err(raw, match, name="X"):
        with pytest.raises(ConfigError, match=match):
            corpus_spec(name, raw, SAMPLES)

    g = {"source": "genome", "samples": ["yeast"]}
    err({**g, "window": 100, "stride": 0}, r"corpora\.X\.stride: must be an integer >= 1")
    err({**g, "window": 0}, r"corpora\.X\.window: must be an integer >= 1")
    err(g, r"corpora\.X\.window: a genome corpus needs")
    err({"source": "regions", "samples": ["yeast"], "window": 100, "features": ["enhancer"]},
        r"corpora\.X\.features: unknown feature\(s\) \['enhancer'\]")  # fmt: skip
    err({"source": "regions", "samples": ["yeast"], "window": 100, "features": ["promoter"]},
        r"corpora\.X\.upstream")  # fmt: skip
    err({"source": "genome", "samples": ["hx"], "window": 100},
        r"corpora\.X\.samples: sample 'hx' is a cds_fasta sample")  # fmt: skip
    err({"source": "cds", "samples": ["bare"]}, r"corpora\.X\.samples: sample 'bare' has no CDS")
    err({**g, "window": 100, "split": {"method": "contigs", "contigs": {"spy": {"test": ["a"]}}}},
        r"corpora\.X\.split\.contigs\.spy: 'spy' is not a sample of corpus")  # fmt: skip
    err({**g, "window": 100, "split": {"method": "contigs"}}, r"corpora\.X\.split: method contigs")
    err({**g, "window": 100, "windw": 3}, r"corpora\.X: unknown key\(s\) \['windw'\]")
    ok = corpus_spec("X", {**g, "window": 2000}, SAMPLES)
    with pytest.raises(ConfigError, match=r"corpora\.X\.window: a window of 2000 nt is 2000 "
                       r"nucleotide tokens \+ BOS/EOS = 2002.*at most 254 nt"):  # fmt: skip
        check_window_fits("X", ok, "nucleotide", {"type": "nucleotide"}, 256)
    check_window_fits("X", ok, "kmer6", {"type": "kmer", "k": 6}, 512)  # 333 + 2 tokens fit
    check_window_fits("X", ok, "bpe", {"type": "bpe"}, 8)  # BPE lengths are not fixed
    # defaults: the cds corpus; genome corpora take only samples with a genome
    corpora = {"c": {"source": "cds"}, "g": {"source": "genome", "window": 10}}
    specs = corpus_specs({"corpora": corpora}, SAMPLES)
    assert specs["c"]["samples"] == ["yeast", "spy", "hx"]  # "bare" has no CDS
    assert specs["g"]["samples"] == ["yeast", "spy", "bare"]
    cds_samples = ["yeast", "spy", "hx"]
    assert corpus_specs({}, SAMPLES) == {"cds": {"source": "cds", "samples": cds_samples}}


def test_window_longer_than_context_stops_dry_run(tmp_path, shared_data):
    workdir = make_workdir(
        tmp_path / "wd",
        {
            "corpora": {"long": {"source": "genome", "window": 2000}},
            "pretrain": {
                "models": {
                    "gpt_long": {
                        "objective": "gpt",
                        "tokenizer": "nucleotide",
                        "preset": "tiny",
                        "corpus": "long",
                    }
                }
            },
            "corpus": {"block_size": 256},
        },
        keep=["yeast_chrIV", "spyogenes"],
    )
    proc = snakemake(workdir, "-n", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "corpora.long.window: a window of 2000 nt is 2000 nucleotide tokens" in out
    assert not (workdir / "results").exists()


def test_missing_held_out_contig_stops_dry_run(tmp_path, shared_data):
    """A contig list naming a contig the genome lacks stops the run before any job, with the
    key named; the GBFF record label (NC_002737) and the FASTA name (chrIV) are accepted."""

    def dry_run(contigs: dict, name: str):
        held = {"source": "genome", "window": 100, "samples": ["yeast_chrIV", "spyogenes"],
                "split": {"method": "contigs", "contigs": contigs}}  # fmt: skip
        model = {"objective": "gpt", "tokenizer": "nucleotide", "preset": "tiny", "corpus": "held"}
        workdir = make_workdir(
            tmp_path / name,
            {"corpora": {"held": held}, "pretrain": {"models": {"gpt_held": model}}},
            keep=["yeast_chrIV", "spyogenes"],
        )
        proc = snakemake(workdir, "-n", timeout=300)
        return proc, proc.stdout + proc.stderr, workdir

    proc, out, workdir = dry_run({"yeast_chrIV": {"test": ["chrV"]}}, "bad")
    assert proc.returncode != 0
    assert "corpora.held.split.contigs.yeast_chrIV.test: contig(s) ['chrV']" in out
    assert "its contigs: chrIV" in out
    assert not (workdir / "results").exists()
    proc, out, _ = dry_run(
        {"yeast_chrIV": {"test": ["chrIV"]}, "spyogenes": {"validation": ["NC_002737"]}}, "ok"
    )
    assert proc.returncode == 0, out[-3000:]


def test_exclusions_from_a_task_table_and_a_bed_file(tmp_path, yeast_features):
    genes = yeast_features[yeast_features["type"] == "gene"].head(4)
    bed = tmp_path / "genes.bed"
    lines = [f"{r.contig}\t{r.start}\t{r.end}\t{r.name}" for r in genes.itertuples()]
    bed.write_text("track name=genes\n" + "\n".join(lines) + "\n")
    table = tmp_path / "data.tsv"
    pd.DataFrame({
        "id": ["chr22_10510500_10510799"], "sequence": ["A" * 300], "split": ["test"],
        "targets": [",".join(["0"] * 300)], "chrom": ["chr22"], "start": [10510500],
        "end": [10510799],
    }).to_csv(table, sep="\t", index=False)  # fmt: skip
    got = load_exclusions({"tf_binding": (table, True)}, [str(bed)])
    assert list(got) == ["task:tf_binding", f"bed:{bed}"]
    tf = got["task:tf_binding"].iloc[0]
    assert (tf["chrom"], tf["start"], tf["end"]) == ("chr22", 10510500, 10510800)  # 300 bp
    regions = got[f"bed:{bed}"]
    assert list(regions["id"]) == list(genes["name"])
    assert (regions["end"].to_numpy() == genes["end"].to_numpy()).all()
    bad = tmp_path / "bad.bed"
    bad.write_text("chrIV\t100\tx\n")
    with pytest.raises(InputFormatError, match=r"bad\.bed:1: BED start/end must be integers"):
        load_exclusions({}, [str(bad)])
    # a sequence task's table with coordinates that are not integers: the item is named
    seq = tmp_path / "seq.tsv"
    pd.DataFrame({"id": ["a", "b"], "sequence": ["ACGT", "ACGT"], "split": ["test", "train"],
                  "label": ["x", "y"], "chrom": ["chrIV", "chrIV"], "start": ["10", "1e"],
                  "end": ["14", "20"]}).to_csv(seq, sep="\t", index=False)  # fmt: skip
    with pytest.raises(InputFormatError, match=r"seq\.tsv: task t, item b: start '1e' is not an"):
        load_exclusions({"t": (seq, False)}, [])


# --- task corpora (source: task): windows over one split of a task dataset -----------------


def test_task_corpus_spec_defaults_and_errors():
    spec = corpus_spec("tfc", {"source": "task", "task": "tf_binding", "window": 100}, SAMPLES)
    assert spec == {"source": "task", "samples": [], "task": "tf_binding",
                    "task_splits": ["train"], "window": 100, "stride": 100,
                    "min_length": 100, "seed": 42}  # fmt: skip
    # the window-key defaults the schema fills in are not errors; genome-only keys are
    filled = {"source": "task", "task": "t", "window": 10, "max_n_fraction": 0.1, "n_runs": "keep"}
    assert corpus_spec("tfc", filled, SAMPLES)["window"] == 10
    bad = [
        ({"source": "task", "window": 10}, "corpora.tfc.task: a task corpus needs"),
        ({"source": "task", "task": "t"}, "corpora.tfc.window: a task corpus needs"),
        ({"source": "task", "task": "t", "window": 10, "task_splits": ["dev"]},
         "corpora.tfc.task_splits: must be a non-empty list"),
        ({"source": "task", "task": "t", "window": 10, "samples": ["yeast"]},
         "corpora.tfc.samples: a task corpus takes its sequences from `task`"),
        ({"source": "task", "task": "t", "window": 10, "split": {"method": "blocks"}},
         "unknown key(s) ['split'] for source task"),
        ({"source": "task", "task": "t", "window": 10, "min_length": 11},
         "corpora.tfc.min_length: 11 is longer than the window (10)"),
    ]  # fmt: skip
    for raw, message in bad:
        with pytest.raises(ConfigError) as err:
            corpus_spec("tfc", raw, SAMPLES)
        assert message in str(err.value)


def test_task_windows_hold_only_the_named_task_split(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        seq = "".join(rng.choice(list("ACGT"), size=250))
        rows.append(
            {"id": f"w{i}", "sequence": seq, "split": ["train", "validation", "test"][i % 3]}
        )
    data = pd.DataFrame(rows)
    path = tmp_path / "data.tsv"
    data.to_csv(path, sep="\t", index=False)
    spec = corpus_spec(
        "tfc", {"source": "task", "task": "tf_binding", "window": 100, "min_length": 40}, None
    )
    out = {p: tmp_path / f"{p}.fa.gz" for p in SPLITS} | {"summary": tmp_path / "windows.tsv"}
    summary = task_windows(path, out, spec, FRACTIONS, corpus="tfc")
    seqs = dict(zip(data["id"], data["sequence"], strict=True))
    train_ids = set(data.loc[data["split"] == "train", "id"])
    item_split = {}
    for p in SPLITS:
        for name, seq, _ in read_fasta(out[p]):
            item, s, e, strand = parse_record_name(name)
            assert item in train_ids  # never a window of a validation or test task item
            assert seq == seqs[item][s:e]
            assert strand == "+"
            assert item_split.setdefault(item, p) == p  # a whole item goes to one split
    # 250 nt at window 100: 0-100, 100-200, 200-250 (50 >= min_length 40)
    assert set(item_split) == train_ids
    counts = summary.set_index("split")
    assert counts["n_items"].sum() == 100
    assert counts["n_windows"].sum() == 300
    assert counts["nt"].sum() == 100 * 250
    assert counts.loc["train", "n_items"] > counts.loc["test", "n_items"] > 0
    assert pd.read_csv(out["summary"], sep="\t")["n_windows"].sum() == 300
    # the same inputs give the same corpus
    out2 = {p: tmp_path / f"again_{p}.fa.gz" for p in SPLITS} | {"summary": tmp_path / "s2.tsv"}
    task_windows(path, out2, spec, FRACTIONS, corpus="tfc")
    assert out2["train"].read_bytes() == out["train"].read_bytes()  # gzip with mtime 0
    spec_none = {**spec, "task_splits": ["validation"]}
    data[data["split"] != "validation"].to_csv(path, sep="\t", index=False)
    with pytest.raises(InputFormatError, match="has no items in the splits"):
        task_windows(path, out, spec_none, FRACTIONS, corpus="tfc")


def test_task_corpus_through_the_workflow(tmp_path):
    """The embedded demo's DNA-LLM windows: a corpus of the tf_binding training split only,
    tokenized for pretraining; an unknown task stops the dry run, naming the key."""
    model = {"objective": "gpt", "tokenizer": "nucleotide", "preset": "tiny", "corpus": "tfc"}
    over = {
        "corpora": {
            "cds": {"source": "cds"},
            "tfc": {"source": "task", "task": "tf_binding", "window": 120},
        },
        "pretrain": {"models": {"gpt_tf": model}},
    }
    demo = Path(__file__).parent / "config" / "demo.yaml"
    off = {
        "probe": {"enabled": False, "finetuned": [], "external": {}},
        "finetune": {"runs": {}, "train": {}, "per_task": {}, "threads": 1},
        "reproduce": {"rows": []},  # its rows name fine-tuning runs
    }
    workdir = make_workdir(tmp_path / "wd", over, test_config=demo, keep=["phiX174"], replace=off)
    proc = snakemake(workdir, "results/corpus/tfc/nucleotide", timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    task = pd.read_csv(
        workdir / "results/tasks/tf_binding/data.tsv", sep="\t", usecols=["id", "split"]
    )
    held_out = set(task.loc[task["split"] != "train", "id"])
    names = [
        parse_record_name(n)[0]
        for p in SPLITS
        for n, _, _ in read_fasta(workdir / f"results/windows/tfc/task/{p}.fa.gz")
    ]
    assert names
    assert not held_out & set(names)
    assert set(names) == set(task.loc[task["split"] == "train", "id"])
    meta = (workdir / "results/corpus/tfc/nucleotide/meta.json").read_text()
    assert '"train"' in meta
    bad = {
        "corpora": {
            **over["corpora"],
            "tfc": {"source": "task", "task": "promoters", "window": 120},
        }
    }
    workdir = make_workdir(
        tmp_path / "bad", {**over, **bad}, test_config=demo, keep=["phiX174"], replace=off
    )
    proc = snakemake(workdir, "-n", timeout=300)
    assert proc.returncode != 0
    assert "corpora.tfc.task: 'promoters' is not a task of this configuration" in (
        proc.stdout + proc.stderr
    )
