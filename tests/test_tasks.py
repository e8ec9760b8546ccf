"""Task datasets (dnalm.tasks): real TF-binding and ChIP-seq data from ../shared/data,
species fragments from small split FASTAs written here, and every kind of bad input."""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import read_fasta
from dnalm.tasks.cli import register
from dnalm.tasks.common import load_task, normalize_sequence, targets_matrix
from dnalm.tasks.sequence import build_sequence_task
from dnalm.tasks.species import build_species_fragments
from dnalm.tasks.tf_binding import build_tf_binding, group_windows

# --------------------------------------------------------------------------- helpers


def _rand_seq(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ACGT") for _ in range(n))


def _write_fa(path: Path, records: list[tuple[str, str]]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt") as fh:
        for h, s in records:
            fh.write(f">{h} some description\n")
            for i in range(0, len(s), 70):
                fh.write(s[i : i + 70] + "\n")
    return path


def _split_fastas(tmp: Path, sample: str, n_val: int, n_test: int, seed: int) -> dict[str, Path]:
    """results/splits/{sample}/{validation,test}.fa.gz with random CDS of 300-900 nt."""
    rng = random.Random(seed)
    out = {}
    for split, n in (("validation", n_val), ("test", n_test)):
        recs = []
        for i in range(n):
            length = 3 * rng.randint(100, 300)
            seq = "ATG" + _rand_seq(rng, length - 6) + "TAA"
            if i % 5 == 0:  # some N runs: windows over them must be skipped
                pos = rng.randrange(3, length - 20)
                seq = seq[:pos] + "NNNNN" + seq[pos + 5 :]
            recs.append((f"{sample}_{split}_cds{i}", seq))
        d = tmp / "splits" / sample
        d.mkdir(parents=True, exist_ok=True)
        out[split] = _write_fa(d / f"{split}.fa.gz", recs)
    return out


def _species_samples(tmp: Path, spec: list[tuple[str, str, int, int]]) -> list[dict]:
    samples = []
    for k, (sample, species, n_val, n_test) in enumerate(spec):
        paths = _split_fastas(tmp, sample, n_val, n_test, seed=100 + k)
        samples.append(
            {
                "sample": sample,
                "species": species,
                "validation_fasta": paths["validation"],
                "test_fasta": paths["test"],
            }
        )
    return samples


def _cds_index(samples: list[dict]) -> dict[tuple[str, str], tuple[str, str]]:
    """(sample, cds_id) -> (pretraining split, sequence)."""
    idx = {}
    for s in samples:
        for split in ("validation", "test"):
            for header, seq, _ in read_fasta(s[f"{split}_fasta"]):
                idx[(s["sample"], header.split()[0])] = (split, seq)
    return idx


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- real data


def test_tf_binding_real_data(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "tasks" / "tf_binding"
    summary = build_tf_binding(
        tmp_path / "tf", d / "chr22_sequences.txt.gz", d / "chr22_scores.txt.gz", seed=0
    )
    df = load_task(tmp_path / "tf")
    assert len(df) == 23139
    assert df.attrs["kind"] == "per_base_regression"
    mat = targets_matrix(df)  # (N, L)
    assert mat.shape == (23139, 300)
    assert (df["sequence"].str.len() == 300).all()
    nz = float((mat != 0).mean())
    assert nz == pytest.approx(0.039, abs=0.002)
    total = summary[(summary["split"] == "all") & (summary["label"] == "*")].iloc[0]
    assert total["nonzero_target_fraction"] == pytest.approx(nz, rel=1e-6)
    # first window of the file, first score column: values read back exactly
    raw = pd.read_csv(d / "chr22_scores.txt.gz", sep="\t", usecols=[0])
    first = df.set_index("id").loc[raw.columns[0]]
    assert np.array_equal(
        np.array(first["targets"].split(","), dtype=np.float64), raw.iloc[:, 0].to_numpy()
    )
    # fractions near 0.8 / 0.1 / 0.1
    frac = df["split"].value_counts(normalize=True)
    for split, want in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
        assert frac[split] == pytest.approx(want, abs=0.02)
    # no two overlapping or abutting windows straddle splits (checked from the coordinates,
    # independently of the grouping code)
    pos = df[["chrom", "start", "end", "split"]].sort_values(["chrom", "start"])
    starts, ends = pos["start"].to_numpy(), pos["end"].to_numpy()
    same_chrom = pos["chrom"].to_numpy()[1:] == pos["chrom"].to_numpy()[:-1]
    run_end = np.maximum.accumulate(ends)[:-1]
    touching = same_chrom & (starts[1:] <= run_end + 1)
    assert touching.sum() > 1000  # the real data has thousands of abutting windows
    splits = pos["split"].to_numpy()
    assert (splits[1:][touching] == splits[:-1][touching]).all()
    meta = json.loads((tmp_path / "tf" / "task.json").read_text())
    assert meta["params"]["grouped_by_position"] is True
    assert meta["n_rows"]["train"] + meta["n_rows"]["validation"] + meta["n_rows"]["test"] == 23139


def test_chipseq_fasta_with_provided_test(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "tasks" / "chipseq_oct4_vs_mafk"
    build_sequence_task(
        tmp_path / "chip",
        fasta_by_class={"oct4": d / "oct4_train.fa.gz", "mafk": d / "mafk_train.fa.gz"},
        test_fasta_by_class={"oct4": d / "oct4_test.fa", "mafk": d / "mafk_test.fa"},
        seed=3,
    )
    df = load_task(tmp_path / "chip")
    counts = df.groupby(["split", "label"]).size()
    assert counts["test"].to_dict() == {"mafk": 100, "oct4": 100}
    assert (df["split"] == "test").sum() == 200
    fit = df[df["split"] != "test"]
    assert len(fit) == 3897 + 3900
    # validation carved from train in the ratio 0.1 : 0.8, stratified
    assert (fit["split"] == "validation").mean() == pytest.approx(1 / 9, abs=0.01)
    val = fit[fit["split"] == "validation"]["label"].value_counts(normalize=True)
    assert val["oct4"] == pytest.approx(0.5, abs=0.02)
    assert df["sequence"].str.fullmatch("[ACGT]+").all()  # soft-masked input upper-cased
    assert df["id"].is_unique
    assert set(df.loc[df["split"] == "test", "source"].map(lambda p: Path(p).name)) == {
        "oct4_test.fa",
        "mafk_test.fa",
    }
    assert json.loads((tmp_path / "chip" / "task.json").read_text())["labels"] == ["mafk", "oct4"]


def test_chipseq_carved_test_is_stratified(shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "tasks" / "chipseq_oct4_vs_mafk"
    summary = build_sequence_task(
        tmp_path / "chip",
        fasta_by_class={"oct4": d / "oct4_train.fa.gz", "mafk": d / "mafk_train.fa.gz"},
        fractions=(0.7, 0.1, 0.2),
        seed=1,
    )
    test = summary[summary["split"] == "test"].set_index("label")["n"]
    assert test["oct4"] == pytest.approx(0.2 * 3897, abs=2)
    assert test["mafk"] == pytest.approx(0.2 * 3900, abs=2)


# --------------------------------------------------------------------------- species fragments


def test_species_fragments(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    samples = _species_samples(
        tmp_path,
        [
            ("ecoA", "Escherichia coli", 30, 30),
            ("ecoB", "Escherichia coli", 30, 30),  # a second genome of the same species
            ("bsub", "Bacillus subtilis", 60, 60),
            ("tiny", "Tinyus minimus", 3, 3),  # too few CDS for 200 fragments
        ],
    )
    with caplog.at_level(logging.WARNING, logger="dnalm.tasks"):
        summary = build_species_fragments(
            samples, tmp_path / "sp", length=60, n_train=200, n_test=150, seed=5, max_per_cds=5
        )
    df = load_task(tmp_path / "sp")
    idx = _cds_index(samples)
    assert set(df["label"]) == {"Escherichia coli", "Bacillus subtilis", "Tinyus minimus"}
    assert set(df.loc[df["label"] == "Escherichia coli", "sample"]) == {"ecoA", "ecoB"}
    for r in df.itertuples():
        split, cds = idx[(r.sample, r.cds_id)]
        assert r.offset % 3 == 0
        assert len(r.sequence) == 60
        assert r.sequence == cds[r.offset : r.offset + 60]
        assert set(r.sequence) <= set("ACGT")
        # task train from pretraining-validation CDS, task test from pretraining-test CDS
        assert split == {"train": "validation", "test": "test"}[r.split]
    key = df["sample"] + ":" + df["cds_id"]
    assert not set(key[df["split"] == "train"]) & set(key[df["split"] == "test"])
    assert df["sequence"].is_unique
    assert key.value_counts().max() <= 5
    # fragments of one CDS do not overlap
    for _, g in df.groupby(key):
        offs = np.sort(g["offset"].to_numpy())
        assert (np.diff(offs) >= 60).all()
    counts = df.groupby(["split", "label"]).size()
    assert counts[("train", "Escherichia coli")] == 200
    assert counts[("test", "Bacillus subtilis")] == 150
    # spread: 60 CDS and 200 fragments -> every CDS used before any gets a fourth
    bsub = df[(df["label"] == "Bacillus subtilis") & (df["split"] == "train")]
    assert bsub["cds_id"].nunique() == 60
    assert bsub["cds_id"].value_counts().max() == 4
    tiny = summary[(summary["label"] == "Tinyus minimus") & (summary["split"] == "train")].iloc[0]
    assert 0 < tiny["n"] < tiny["n_requested"] == 200
    assert tiny["n_cds_available"] == 3
    assert tiny["n"] <= 3 * 5
    assert any("Tinyus minimus" in m and "only" in m for m in caplog.messages)


def test_species_fragments_seeded_and_balance(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    samples = _species_samples(tmp_path, [("a", "Species a", 20, 20), ("b", "Species b", 4, 4)])
    kw = {"length": 30, "n_train": 50, "n_test": 50, "max_per_cds": 4}
    build_species_fragments(samples, tmp_path / "s1", seed=1, **kw)
    build_species_fragments(samples, tmp_path / "s2", seed=1, **kw)
    build_species_fragments(samples, tmp_path / "s3", seed=2, **kw)
    text = [(tmp_path / f"s{i}" / "data.tsv").read_text() for i in (1, 2, 3)]
    assert text[0] == text[1]
    assert text[0] != text[2]
    unbalanced = load_task(tmp_path / "s1").groupby(["split", "label"]).size()
    assert unbalanced[("train", "Species a")] == 50
    assert unbalanced[("train", "Species b")] == 16  # 4 CDS x max 4
    with caplog.at_level(logging.WARNING, logger="dnalm.tasks"):
        build_species_fragments(samples, tmp_path / "bal", seed=1, balance=True, **kw)
    bal = load_task(tmp_path / "bal").groupby(["split", "label"]).size()
    assert bal[("train", "Species a")] == bal[("train", "Species b")] == 16
    assert bal[("test", "Species a")] == bal[("test", "Species b")]
    assert any("balance" in m for m in caplog.messages)


def test_species_fragments_identical_cds_never_in_both(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    samples = _species_samples(tmp_path, [("a", "A", 6, 6), ("b", "B", 6, 6)])
    # plant a copy of one validation CDS into a's test split (hand-made input)
    val = list(read_fasta(samples[0]["validation_fasta"]))
    test = list(read_fasta(samples[0]["test_fasta"]))
    test.append(("copy_of_val0", val[1][1], 0))
    _write_fa(samples[0]["test_fasta"], [(h.split()[0], s) for h, s, _ in test])
    with caplog.at_level(logging.WARNING, logger="dnalm.tasks"):
        build_species_fragments(samples, tmp_path / "sp", length=60, n_train=30, n_test=30)
    df = load_task(tmp_path / "sp")
    assert "copy_of_val0" not in set(df["cds_id"])
    assert any("identical to a validation-split CDS" in m for m in caplog.messages)


def test_species_fragments_validation_split_is_disjoint(tmp_path: Path) -> None:
    samples = _species_samples(tmp_path, [("a", "A", 40, 20), ("b", "B", 40, 20)])
    build_species_fragments(
        samples, tmp_path / "sp", length=60, n_train=40, n_validation=10, n_test=20
    )
    df = load_task(tmp_path / "sp")
    key = df["sample"] + ":" + df["cds_id"]
    by = {s: set(key[df["split"] == s]) for s in ("train", "validation", "test")}
    assert by["validation"]
    assert not by["train"] & by["validation"]
    assert not by["validation"] & by["test"]
    assert (df[df["split"] == "validation"].groupby("label").size() == 10).all()


@pytest.mark.parametrize(
    ("n_val", "n_test", "split"), [(0, 0, "train"), (0, 3, "train"), (3, 0, "test")]
)
def test_species_fragments_too_small_sample_is_named(
    tmp_path: Path, n_val: int, n_test: int, split: str
) -> None:
    """A sample whose held-out CDS give no fragment of a split is named with the fix (it is
    neither dropped silently from the task nor blamed on another sample), and nothing is
    written."""
    samples = _species_samples(
        tmp_path, [("a", "A", 10, 10), ("b", "B", 10, 10), ("tiny", "T", n_val, n_test)]
    )
    src = "validation" if split == "train" else "test"
    with pytest.raises(
        InputFormatError,
        match=rf"sample\(s\) tiny \(species 'T'\) give no {split} fragment of 60 nt: .*"
        rf"splits/tiny/{src}\.fa\.gz.*species_task: false for tiny in the sample sheet",
    ):
        build_species_fragments(samples, tmp_path / "sp", length=60, n_train=20, n_test=20)
    assert not (tmp_path / "sp").exists()


def test_species_fragments_bad_config(tmp_path: Path) -> None:
    samples = _species_samples(tmp_path, [("a", "A", 3, 3)])
    with pytest.raises(ConfigError, match=r"at least 2 species"):
        build_species_fragments(samples, tmp_path / "x")
    with pytest.raises(ConfigError, match="lacks \\['test_fasta'\\]"):
        build_species_fragments([{"sample": "a", "species": "A", "validation_fasta": "v"}], "x")
    missing = [dict(samples[0]), dict(samples[0], sample="b", species="B")]
    missing[1]["test_fasta"] = tmp_path / "nope.fa.gz"
    with pytest.raises(InputFormatError, match=r"nope.fa.gz: input file not found"):
        build_species_fragments(missing, tmp_path / "x")
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- tf binding formats


def _dnallm_files(tmp: Path, names: list[str], seqs: list[str], scores: list[list[str]]):
    seq_path = _write(
        tmp / "seqs.txt",
        "sequence\twindow_name\n"
        + "".join(f"{s}\t{n}\n" for s, n in zip(seqs, names, strict=True)),
    )
    n_rows = max(len(c) for c in scores)
    lines = ["\t".join(names)]
    for i in range(n_rows):
        lines.append("\t".join(c[i] if i < len(c) else "" for c in scores))
    return seq_path, _write(tmp / "scores.txt", "\n".join(lines) + "\n")


def test_tf_dnallm_small_and_bad_inputs(tmp_path: Path) -> None:
    names = ["chr1_100_104", "chr1_105_109", "chr1_500_504", "chr2_100_104"]
    seqs = ["acgta", "CCGUA", "ACRTA", "GGGGG"]  # lower case, U, IUPAC R
    cols = [["0", "1.5", "0", "0", "2"]] + [["0"] * 5] * 3
    s, sc = _dnallm_files(tmp_path, names, seqs, cols)
    summary = build_tf_binding(tmp_path / "ok", s, sc, fractions=(0.5, 0.25, 0.25))
    df = load_task(tmp_path / "ok", targets_as_arrays=True).set_index("id")
    assert df.loc["chr1_100_104", "sequence"] == "ACGTA"
    assert df.loc["chr1_105_109", "sequence"] == "CCGTA"
    assert df.loc["chr1_500_504", "sequence"] == "ACNTA"
    assert df.loc["chr1_100_104", "targets"].tolist() == [0, 1.5, 0, 0, 2]
    # abutting windows chr1:100-104 and chr1:105-109 form one group
    assert df.loc["chr1_100_104", "group"] == df.loc["chr1_105_109", "group"]
    assert df.loc["chr1_100_104", "split"] == df.loc["chr1_105_109", "split"]
    tot = summary[(summary["split"] == "all") & (summary["label"] == "*")].iloc[0]
    assert tot["bases_iupac_to_n"] == 1
    assert tot["bases_u_to_t"] == 1
    assert tot["n_with_N"] == 1
    assert tot["nonzero_target_fraction"] == pytest.approx(2 / 20)

    bad_names = [*names[:2], "chr1_500_999", names[3]]
    s2 = _write(
        tmp_path / "seqs_bad.txt",
        "sequence\twindow_name\n"
        + "".join(f"{q}\t{n}\n" for q, n in zip(seqs, bad_names, strict=True)),
    )
    with pytest.raises(InputFormatError, match=r"first mismatch at window 3: 'chr1_500_999'"):
        build_tf_binding(tmp_path / "x", s2, sc)

    nan_cols = [["0", "nan", "0", "0", "0"]] + [["0"] * 5] * 3
    s, sc = _dnallm_files(tmp_path, names, seqs, nan_cols)
    with pytest.raises(InputFormatError, match=r"window 'chr1_100_104'.*NaN score at base 2"):
        build_tf_binding(tmp_path / "x", s, sc)

    short_cols = [["0"] * 5, ["0"] * 4] + [["0"] * 5] * 2
    s, sc = _dnallm_files(tmp_path, names, seqs, short_cols)
    with pytest.raises(InputFormatError, match=r"window 'chr1_105_109': 4 score.*5 bases"):
        build_tf_binding(tmp_path / "x", s, sc)

    s, sc = _dnallm_files(tmp_path, ["w1", "w2", "w3", "w4"], seqs, cols)
    with pytest.raises(InputFormatError, match=r"window name 'w1' does not give a position"):
        build_tf_binding(tmp_path / "x", s, sc)

    s = _write(tmp_path / "nocol.txt", "seq\twindow_name\nACGTA\tchr1_1_5\n")
    with pytest.raises(InputFormatError, match=r"missing column\(s\) \['sequence'\]"):
        build_tf_binding(tmp_path / "x", s, sc)
    assert not (tmp_path / "x").exists()


def test_group_windows_single_linkage() -> None:
    chrom = ["c1", "c1", "c1", "c1", "c2", "c1"]
    start = np.array([0, 250, 560, 900, 0, 100])
    end = np.array([299, 549, 859, 1199, 299, 199])
    g = group_windows(chrom, start, end)
    # 0-299, 100-199, 250-549 overlap; 560-859 is 10 bp away; 900 is 40 bp away
    assert g[0] == g[1] == g[5]
    assert len({g[0], g[2], g[3], g[4]}) == 4
    g10 = group_windows(chrom, start, end, distance=10)
    assert g10[0] == g10[2]
    assert g10[2] != g10[3]


def test_tf_tsv_format_groups_overlaps_and_bad_rows(tmp_path: Path) -> None:
    rng = random.Random(0)
    rows = ["chrom\tstart\tsequence\ttargets"]
    for block in range(60):  # 60 chains of 3 overlapping 20-bp windows
        for k in range(3):
            s = _rand_seq(rng, 20)
            t = ",".join(str(rng.choice([0, 0, 7.5])) for _ in range(20))
            rows.append(f"chr1\t{block * 1000 + k * 10}\t{s}\t{t}")
    path = _write(tmp_path / "pb.tsv", "\n".join(rows) + "\n")
    build_tf_binding(tmp_path / "a", path, fmt="tsv", seed=4)
    build_tf_binding(tmp_path / "b", path, fmt="tsv", seed=4)
    df = load_task(tmp_path / "a")
    assert (tmp_path / "a" / "data.tsv").read_bytes() == (tmp_path / "b" / "data.tsv").read_bytes()
    assert df["group"].nunique() == 60
    assert (df.groupby("group")["split"].nunique() == 1).all()
    assert set(df["split"]) == {"train", "validation", "test"}

    bad_len = _write(tmp_path / "len.tsv", "sequence\ttargets\nACGT\t0,0,0,0\nACGTA\t0,1\n")
    with pytest.raises(InputFormatError, match=r"len.tsv:3: 2 target\(s\) for a sequence of 5"):
        build_tf_binding(tmp_path / "x", bad_len, fmt="tsv")
    nan = _write(tmp_path / "nan.tsv", "sequence\ttargets\nACGT\t0,NaN,0,0\n")
    with pytest.raises(InputFormatError, match=r"nan.tsv:2: NaN target at base 2"):
        build_tf_binding(tmp_path / "x", nan, fmt="tsv")
    empty = _write(tmp_path / "empty.tsv", "sequence\ttargets\nACGT\t0,0,0,0\n\t\n")
    with pytest.raises(InputFormatError, match=r"empty.tsv:3: empty sequence"):
        build_tf_binding(tmp_path / "x", empty, fmt="tsv")
    assert not (tmp_path / "x").exists()


def test_tf_bed_format(tmp_path: Path) -> None:
    rng = random.Random(1)
    chrom = _rand_seq(rng, 400)
    genome = _write(tmp_path / "genome.fa", f">chrA\n{chrom}\n")
    bed = _write(
        tmp_path / "w.bed", "track name=x\nchrA\t10\t20\tw1\t0\t+\nchrA\t15\t25\tw2\t0\t-\n"
    )
    scores = _write(tmp_path / "s.tsv", "name\tscores\nw1\t" + ",".join(["1"] * 10) + "\n"
                    "w2\t" + ",".join(["0"] * 9 + ["2"]) + "\n")  # fmt: skip
    build_tf_binding(tmp_path / "t", bed, scores, fmt="bed", genome=genome)
    df = load_task(tmp_path / "t").set_index("id")
    comp = str.maketrans("ACGT", "TGCA")
    assert df.loc["w1", "sequence"] == chrom[10:20]
    assert df.loc["w2", "sequence"] == chrom[15:25].translate(comp)[::-1]
    assert df.loc["w1", "split"] == df.loc["w2", "split"]  # overlapping windows
    out_of_range = _write(tmp_path / "bad.bed", "chrA\t390\t410\tw1\n")
    with pytest.raises(InputFormatError, match=r"bad.bed:1: interval chrA:390-410 outside"):
        build_tf_binding(tmp_path / "x", out_of_range, scores, fmt="bed", genome=genome)
    no_score = _write(tmp_path / "ns.bed", "chrA\t0\t10\tw9\n")
    with pytest.raises(InputFormatError, match=r"ns.bed:1: window 'w9' has no scores"):
        build_tf_binding(tmp_path / "x", no_score, scores, fmt="bed", genome=genome)


# --------------------------------------------------------------------------- user tables


def test_normalize_sequence_rules() -> None:
    assert normalize_sequence(" acgu ", "f:1") == ("ACGT", 0, 1)
    assert normalize_sequence("ACRYSWKMBDHVN", "f:1") == ("AC" + "N" * 11, 10, 0)
    with pytest.raises(InputFormatError, match=r"f:7: invalid character '-' at position 3"):
        normalize_sequence("AC-GT", "f:7")
    with pytest.raises(InputFormatError, match=r"f:2: empty sequence"):
        normalize_sequence("  ", "f:2")


def test_sequence_classification_table_bad_inputs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(2)
    lines = ["sequence,label"]
    for i in range(60):
        lines.append(f"{_rand_seq(rng, 30)},{'pos' if i % 2 else 'neg'}")
    lines[1] = "acgtRYacgu,neg"  # lower case, IUPAC, U
    table = _write(tmp_path / "train.txt", "\n".join(lines) + "\n")  # comma sniffed from content
    summary = build_sequence_task(tmp_path / "ok", table=table, seed=0)
    df = load_task(tmp_path / "ok")
    assert "ACGTNNACGT" in set(df["sequence"])
    tot = summary[(summary["split"] == "all") & (summary["label"] == "*")].iloc[0]
    assert (tot["bases_iupac_to_n"], tot["bases_u_to_t"]) == (2, 1)
    assert set(df["split"]) == {"train", "validation", "test"}
    assert (df.groupby("split")["label"].nunique() == 2).all()

    bad = _write(tmp_path / "bad.tsv", "sequence\tlabel\nACGT\tneg\n\tpos\n")
    with pytest.raises(InputFormatError, match=r"bad.tsv:3: empty sequence"):
        build_sequence_task(tmp_path / "x", table=bad)
    nolabel = _write(tmp_path / "nolabel.csv", "sequence,label\nACGT,\n")
    with pytest.raises(InputFormatError, match=r"nolabel.csv:2: empty label"):
        build_sequence_task(tmp_path / "x", table=nolabel)
    cols = _write(tmp_path / "cols.csv", "seq,class\nACGT,a\n")
    with pytest.raises(InputFormatError, match=r"cols.csv: missing column\(s\).*\['sequence', "):
        build_sequence_task(tmp_path / "x", table=cols)

    test_new = _write(tmp_path / "test.csv", "sequence,label\nACGTAC,neg\nCCCCGG,alien\n")
    with pytest.raises(InputFormatError, match=r"label 'alien'.*test.csv:3.*never in train"):
        build_sequence_task(tmp_path / "x", table=table, test_table=test_new)
    assert not (tmp_path / "x").exists()

    test_one = _write(tmp_path / "test1.csv", "sequence,label\nACGTAC,neg\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dnalm.tasks"):
        build_sequence_task(tmp_path / "w", table=table, test_table=test_one)
    assert any("['pos']" in m and "test split" in m for m in caplog.messages)
    assert (load_task(tmp_path / "w")["split"] == "test").sum() == 1


def test_sequence_fasta_classes_and_split_column(tmp_path: Path) -> None:
    rng = random.Random(3)
    fa = {c: _write_fa(tmp_path / f"{c}.fa", [(f"{c}{i}", _rand_seq(rng, 25)) for i in range(40)])
          for c in ("x", "y")}  # fmt: skip
    # a duplicated sequence must stay in one split
    dup = _rand_seq(rng, 25)
    _write_fa(tmp_path / "x.fa", [*((f"x{i}", s) for i, (_, s, _) in
              enumerate(read_fasta(fa["x"]))), ("xdup1", dup), ("xdup2", dup)])  # fmt: skip
    build_sequence_task(tmp_path / "t", fasta_by_class=fa, seed=9)
    df = load_task(tmp_path / "t").set_index("id")
    assert df.loc["xdup1", "split"] == df.loc["xdup2", "split"]
    assert df.loc["x0", "label"] == "x"

    rows = [f"r{i}\t{_rand_seq(rng, 12)}\t{i % 2}\t{'test' if i < 6 else ''}" for i in range(40)]
    table = _write(tmp_path / "s.tsv", "id\tsequence\tlabel\tsplit\n" + "\n".join(rows) + "\n")
    build_sequence_task(tmp_path / "s", table=table)
    df = load_task(tmp_path / "s")
    assert df.loc[df["split"] == "test", "id"].tolist() == [f"r{i}" for i in range(6)]
    assert df["label"].map(type).eq(str).all()  # '0'/'1' stay class names

    badsplit = _write(tmp_path / "bs.tsv", "sequence\tlabel\tsplit\nACGT\t1\tdev\n")
    with pytest.raises(InputFormatError, match=r"bs.tsv:2: split 'dev' is not one of"):
        build_sequence_task(tmp_path / "x", table=badsplit)
    with pytest.raises(ConfigError, match=r"not FASTA"):
        build_sequence_task(tmp_path / "x", kind="regression", fasta_by_class=fa)


def test_sequence_regression(tmp_path: Path) -> None:
    rng = random.Random(4)
    rows = [f"{_rand_seq(rng, 20)}\t{i / 10}" for i in range(200)]
    table = _write(tmp_path / "r.tsv", "sequence\tlabel\n" + "\n".join(rows) + "\n")
    summary = build_sequence_task(tmp_path / "r", kind="regression", table=table)
    df = load_task(tmp_path / "r")
    assert df["label"].dtype == np.float64
    assert df["label"].sum() == pytest.approx(sum(i / 10 for i in range(200)))
    # stratified by deciles: every split spans the label range
    for split in ("validation", "test"):
        y = df.loc[df["split"] == split, "label"]
        assert len(y) == 20
        assert y.min() < 3
        assert y.max() > 17
    tot = summary[(summary["split"] == "all") & (summary["label"] == "*")].iloc[0]
    assert tot["label_mean"] == pytest.approx(9.95)

    nan = _write(tmp_path / "nan.tsv", "sequence\tlabel\nACGT\t1.0\nACGG\tNaN\n")
    with pytest.raises(InputFormatError, match=r"nan.tsv:3: label is 'NaN'"):
        build_sequence_task(tmp_path / "x", kind="regression", table=nan)
    word = _write(tmp_path / "w.tsv", "sequence\tlabel\nACGT\thigh\n")
    with pytest.raises(InputFormatError, match=r"w.tsv:2: label 'high' is not a number"):
        build_sequence_task(tmp_path / "x", kind="regression", table=word)
    with pytest.raises(ConfigError, match=r"sum to 1"):
        build_sequence_task(tmp_path / "x", kind="regression", table=table, fractions=(0.5, 0.5, 1))


def test_cli_register(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    rng = random.Random(5)
    for c in ("a", "b"):
        _write_fa(tmp_path / f"{c}.fa", [(f"{c}{i}", _rand_seq(rng, 15)) for i in range(30)])
    args = parser.parse_args(
        ["task", "sequence", "--fasta", f"a={tmp_path / 'a.fa'}", "--fasta",
         f"b={tmp_path / 'b.fa'}", "--out", str(tmp_path / "o"), "--fractions", "0.6,0.2,0.2"]
    )  # fmt: skip
    assert args.func(args) == 0
    df = load_task(tmp_path / "o")
    assert len(df) == 60
    assert (df["split"] == "test").sum() == 12
    assert math.isclose((df["split"] == "validation").sum(), 12, abs_tol=1)


def test_tf_tsv_without_positions_groups_identical_sequences(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(6)
    seqs = [_rand_seq(rng, 8) for _ in range(30)]
    rows = [f"{s}\t{','.join(['0'] * 8)}" for s in seqs + seqs[:5]]  # 5 duplicated windows
    path = _write(tmp_path / "nopos.tsv", "sequence\ttargets\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="dnalm.tasks"):
        build_tf_binding(tmp_path / "t", path, fmt="tsv")
    assert any("cannot be grouped by position" in m for m in caplog.messages)
    df = load_task(tmp_path / "t")
    assert len(df) == 35
    assert (df.groupby("sequence")["split"].nunique() == 1).all()
    assert df["id"].is_unique


def test_cli_species_fragments_from_sheet(tmp_path: Path) -> None:
    spec = [("s1", "Alpha one", 10, 10), ("s2", "Beta two", 10, 10), ("s3", "Gamma", 10, 10)]
    _species_samples(tmp_path, spec)
    sheet = ["sample\tspecies\tsource\tformat\tgenetic_code\tpretrain\tspecies_task"]
    for sample, species, _, _ in spec:
        flag = "false" if sample == "s3" else "true"
        sheet.append(f"{sample}\t{species}\t{tmp_path}/{sample}.fa\tcds_fasta\t11\ttrue\t{flag}")
    sheet_path = _write(tmp_path / "samples.tsv", "\n".join(sheet) + "\n")
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["task", "species-fragments", str(sheet_path), "--splits-dir", str(tmp_path / "splits"),
         "--out", str(tmp_path / "o"), "--n-train", "20", "--n-test", "20"]
    )  # fmt: skip
    assert args.func(args) == 0
    df = load_task(tmp_path / "o")
    assert set(df["label"]) == {"Alpha one", "Beta two"}  # s3 is not flagged species_task
    assert (df.groupby(["split", "label"]).size() == 20).all()
