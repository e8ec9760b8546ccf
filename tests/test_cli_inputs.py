"""What the `dnalm` commands do with their inputs, tried as a user would (the command line on
real files): no command writes over one of its inputs, default output paths never collide
with one, and a bad input (an empty or ambiguous FASTA, a VCF CHROM the FASTA spells
otherwise, a truncated weights file or corpus shard, a config.json that does not fit its
weights) is refused with one line that names the file and the fix. Also: every file a
pretraining or fine-tuning run writes gets the usual mode of a new file under the umask."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from dnalm.cli import main
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import make_corpus
from tests.support.vep_inputs import CONTIG, HEAD, TRAIN


@pytest.fixture(scope="module")
def gpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_inputs")
    corpus = make_corpus(root / "corpus", n_seqs=(20, 5, 5))
    pretrain(corpus, root / "gpt", "gpt", "tiny", {"context": 40}, TRAIN)
    return root / "gpt"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ------------------------------------------------------------------ no output over an input


def _files(t: Path) -> dict[str, Path]:
    return {
        "fa": write(t / "in.fa", f">s1\n{CONTIG}\n"),
        "vcf": write(t / "x.vcf", HEAD + "c1\t10\tok\tC\tT\t.\t.\t.\n"),
        "gbff": write(t / "g.gbff", "LOCUS x\n"),
        "tsv": write(t / "a.tsv", "cds_id\tkept\n"),
        "sheet": write(t / "d" / "s.tsv", "sample\tspecies\tsource\tformat\n"),
        "seqs": write(t / "seqs.tsv", "sequence\tlabel\n"),
        "table": write(t / "task" / "t.csv", "sequence,label\nACGT,a\n"),
        "tok": write(t / "tok" / "dnalm_tokenizer.json", "{}\n").parent,
        "corpus": write(t / "corpus" / "meta.json", "{}\n").parent,
        "cfg": write(t / "pc" / "c.json", "{}\n"),
    }


# (command line with {name} placeholders for _files, the output option, the input option)
CASES = {
    "score --out is the FASTA": (
        "score --model {model} --fasta {fa} --out {fa}", "--out", "--fasta"
    ),
    "score --totals is the FASTA": (
        "score --model {model} --fasta {fa} --out {t}/o.tsv --totals {fa}", "--totals", "--fasta"
    ),
    "score --out inside the model folder": (
        "score --model {model} --fasta {fa} --out {model}/config.json", "--out", "--model"
    ),
    "vep --out is the VCF": (
        "vep --model {model} --vcf {vcf} --fasta {fa} --out {vcf}", "--out", "--vcf"
    ),
    "vep --out-vcf is the VCF": (
        "vep --model {model} --vcf {vcf} --fasta {fa} --out {t}/v.tsv --out-vcf {vcf}",
        "--out-vcf", "--vcf",
    ),
    "vep default VCF copy is the VCF (out x.dnalm.tsv)": (
        "vep --model {model} --vcf {t}/x.dnalm.vcf --fasta {fa} --out {t}/x.tsv",
        "--out-vcf", "--vcf",
    ),
    "cds --fasta-out is the source": (
        "cds --sample s --format gbff --source {gbff} --fasta-out {gbff} --tsv-out {t}/o.tsv",
        "--fasta-out", "--source",
    ),
    "cds two outputs are one file": (
        "cds --sample s --format gbff --source {gbff} --fasta-out {t}/o --tsv-out {t}/o",
        "--tsv-out", "--fasta-out",
    ),
    "cds-qc --summary is a table": ("cds-qc {tsv} --summary {tsv}", "--summary", "TSV"),
    "task species-fragments --out holds the sheet": (
        "task species-fragments {sheet} --out {t}/d", "--out", "SHEET"
    ),
    "task tf-binding --out is the sequences": (
        "task tf-binding {seqs} --format tsv --out {seqs}", "--out", "SEQUENCES"
    ),
    "task sequence --out holds the table": (
        "task sequence --table {table} --out {t}/task", "--out", "--table"
    ),
    "tokenizer OUT_DIR holds the training FASTA": (
        "tokenizer {t} --spec {spec} --train-fasta {fa}", "OUT_DIR", "--train-fasta"
    ),
    "corpus OUT_DIR is the tokenizer": (
        "corpus {tok} {tok} --train {fa} --validation {fa} --test {fa}", "OUT_DIR", "TOKENIZER"
    ),
    "pretrain --out is the corpus": (
        "pretrain --corpus {corpus} --out {corpus} --objective gpt", "--out", "--corpus"
    ),
    "pretrain --out holds the config": (
        "pretrain --corpus {corpus} --out {t}/pc --objective gpt --config-json {cfg}",
        "--out", "--config-json",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_command_writes_over_its_input(case, gpt, tmp_path, capsys):
    line, out_opt, in_opt = CASES[case]
    model = tmp_path / "model"
    shutil.copytree(gpt, model)
    names = {k: str(v) for k, v in _files(tmp_path).items()}
    write(tmp_path / "x.dnalm.vcf", HEAD)
    argv = [
        w.format(t=tmp_path, model=model, spec='{"type":"nucleotide"}', **names)
        for w in line.split()
    ]
    before = snapshot(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dnalm: error: "), err
    assert f"{out_opt} " in err, err
    assert f"{in_opt} " in err, err
    assert "give " + out_opt in err, err
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced


def test_vep_default_vcf_copy_does_not_replace_the_input(gpt, tmp_path, capsys):
    """`--vcf x.vcf --out x.tsv`: the annotated copy used to default to x.vcf, the input."""
    fa = write(tmp_path / "g.fa", f">c1\n{CONTIG}\n")
    vcf = write(tmp_path / "x.vcf", HEAD + "c1\t10\tok\tC\tT\t.\t.\t.\n")
    before = vcf.read_bytes()
    args = ["vep", "--model", str(gpt), "--vcf", str(vcf), "--fasta", str(fa)]
    for _ in range(2):  # a rerun reads the same input again
        assert main([*args, "--out", str(tmp_path / "x.tsv"), "--window", "16"]) == 0
    assert vcf.read_bytes() == before
    copy = (tmp_path / "x.dnalm.vcf").read_text()
    (line,) = [ln for ln in copy.splitlines() if not ln.startswith("#")]
    assert line.count("DNALM_LLR=") == 1
    assert "x.dnalm.vcf" in capsys.readouterr().err


# ------------------------------------------------------------------ FASTA and VCF inputs


@pytest.mark.parametrize(("fasta_name", "vcf_chrom"), [("chr1", "1"), ("1", "chr1"), ("Chr1", "1")])
def test_vep_unknown_chrom_names_the_fasta_contigs_and_the_chr_fix(
    gpt, tmp_path, capsys, fasta_name, vcf_chrom
):
    fa = write(tmp_path / "g.fa", f">{fasta_name}\n{CONTIG}\n>chrM\nACGT\n")
    vcf = write(tmp_path / "v.vcf", HEAD + f"{vcf_chrom}\t10\tok\tC\tT\t.\t.\t.\n")
    argv = ["vep", "--model", str(gpt), "--vcf", str(vcf), "--fasta", str(fa)]
    assert main([*argv, "--out", str(tmp_path / "o.tsv")]) == 2
    err = capsys.readouterr().err
    assert f"{vcf}:3: contig {vcf_chrom!r} is not in {fa}" in err, err
    assert f"its contigs: {fasta_name}, chrM" in err, err
    assert f"the FASTA calls it {fasta_name!r}" in err, err
    assert "'chr' prefix" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "v.vcf"]


def test_vep_unknown_chrom_without_a_twin_lists_the_contigs(gpt, tmp_path, capsys):
    fa = write(tmp_path / "g.fa", f">c1\n{CONTIG}\n")
    vcf = write(tmp_path / "v.vcf", HEAD + "c9\t10\tok\tC\tT\t.\t.\t.\n")
    argv = ["vep", "--model", str(gpt), "--vcf", str(vcf), "--fasta", str(fa)]
    assert main([*argv, "--out", str(tmp_path / "o.tsv")]) == 2
    err = capsys.readouterr().err
    assert "(its contigs: c1)" in err, err
    assert "prefix" not in err, err


DUPLICATE = f">c1 first\n{CONTIG}\n>c2\nACGT\n>c1 again\n{CONTIG}\n"


@pytest.mark.parametrize("command", ["vep", "score"])
def test_a_fasta_with_two_records_of_one_name_is_refused(gpt, tmp_path, capsys, command):
    fa = write(tmp_path / "g.fa", DUPLICATE)
    vcf = write(tmp_path / "v.vcf", HEAD + "c1\t10\tok\tC\tT\t.\t.\t.\n")
    argv = [command, "--model", str(gpt), "--fasta", str(fa), "--out", str(tmp_path / "o.tsv")]
    if command == "vep":
        argv += ["--vcf", str(vcf), "--window", "16"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{fa}: two records are named 'c1' (headers at lines 1 and 5)" in err, err
    assert "remove or rename one" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa", "v.vcf"]


def test_score_refuses_an_empty_fasta(gpt, tmp_path, capsys):
    fa = write(tmp_path / "empty.fa", "\n")
    argv = ["score", "--model", str(gpt), "--fasta", str(fa), "--out", str(tmp_path / "o.tsv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{fa}: no FASTA records" in err, err
    assert "at least one sequence" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.fa"]  # no empty tables


# ------------------------------------------------------------------ model folders


def test_a_truncated_model_safetensors_is_named(gpt, tmp_path, capsys):
    model = shutil.copytree(gpt, tmp_path / "model")
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    fa = write(tmp_path / "in.fa", f">s1\n{CONTIG}\n")
    argv = ["score", "--model", str(model), "--fasta", str(fa), "--out", str(tmp_path / "o.tsv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{weights}: {len(data) // 2} bytes, but its header describes {len(data)}" in err
    assert "truncated or damaged" in err
    assert f"copy the model folder {model} again" in err
    assert not (tmp_path / "o.tsv").exists()


def test_a_config_vocab_size_that_does_not_fit_the_weights_is_named(gpt, tmp_path, capsys):
    model = shutil.copytree(gpt, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    vocab = config["vocab_size"]
    config["vocab_size"] = vocab + 4
    (model / "config.json").write_text(json.dumps(config))
    fa = write(tmp_path / "in.fa", f">s1\n{CONTIG}\n")
    argv = ["score", "--model", str(model), "--fasta", str(fa), "--out", str(tmp_path / "o.tsv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{model}: config.json does not fit model.safetensors" in err, err
    assert f"config.json says vocab_size {vocab + 4} but the weights have {vocab} tokens" in err
    assert "restore the folder's own config.json" in err
    assert not (tmp_path / "o.tsv").exists()


# ------------------------------------------------------------------ corpus shards


@pytest.fixture
def corpus(tmp_path):
    """A corpus built with the commands: 3 shards of train windows."""
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 200)) for _ in range(12)]
    fa = write(tmp_path / "in.fa", "".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    tok, out = tmp_path / "tok", tmp_path / "corpus"
    assert main(["tokenizer", str(tok), "--spec", '{"type": "nucleotide"}']) == 0
    split_args = ["--train", str(fa), "--validation", str(fa), "--test", str(fa)]
    args = ["corpus", str(tok), str(out), *split_args, "--block-size", "64"]
    assert main([*args, "--shard-tokens", str(64 * 16), "--min-length", "10"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["train"]["n_shards"] >= 2
    return out


def _pretrain(corpus: Path, out: Path) -> int:
    train = ["max_steps=1", "micro_batch_size=2", "eval_batches=1", "threads=1"]
    args = ["pretrain", "--corpus", str(corpus), "--out", str(out), "--objective", "gpt"]
    return main([*args, "--model-set", "context=64", *(f"--train-set={t}" for t in train)])


def test_meta_records_every_shard_file_size_and_checksum(corpus):
    import hashlib

    meta = json.loads((corpus / "meta.json").read_text())
    for split in meta["splits"]:
        for shard in meta[split]["shards"]:
            assert sorted(shard["files"]) == ["positions", "tokens"]
            for kind, record in shard["files"].items():
                data = (corpus / split / f"{shard['name']}.{kind}.npy").read_bytes()
                assert record == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_a_truncated_shard_is_named_with_the_fix(corpus, tmp_path, capsys):
    shard = corpus / "train" / "shard-00001.tokens.npy"
    size = shard.stat().st_size
    with open(shard, "r+b") as fh:
        fh.truncate(size - 100)
    assert _pretrain(corpus, tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert f"{shard}: {size - 100} bytes, but meta.json records {size}" in err, err
    assert f"delete {corpus} and rerun its corpus rule" in err
    assert "mmap length" not in err


def test_a_changed_shard_of_the_same_size_is_named(corpus, tmp_path, capsys):
    shard = corpus / "train" / "shard-00000.tokens.npy"
    data = bytearray(shard.read_bytes())
    data[-2] ^= 1  # the low byte of the last token id: another valid id, same size
    shard.write_bytes(bytes(data))
    assert _pretrain(corpus, tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert f"{shard}: sha256 " in err, err
    assert "but meta.json records" in err, err
    assert "rerun its corpus rule" in err


# ------------------------------------------------------------------ file modes


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}


def _wrong_modes(folder: Path) -> dict[str, str]:
    want = {True: 0o755, False: 0o644}
    return {
        name: oct(mode)
        for name, mode in _modes(folder).items()
        if mode != want[(folder / name).is_dir()]
    }


def test_every_file_of_a_fine_tuning_run_gets_the_umask_mode(umask_022, tmp_path):
    from dnalm.finetuning import finetune as ft
    from tests.test_finetuning_finetune import class_table, make_model_dir

    base = make_model_dir(tmp_path / "base", "gpt", context=64)
    table = class_table(n=60)
    settings = {"batch_size": 16, "max_epochs": 2, "patience": 2, "threads": 1, "warmup_steps": 1}
    out = tmp_path / "run"
    ft.finetune(base, table, out, {**settings, "regime": "full"}, task_name="t")
    names = _modes(out)
    assert "model/model.safetensors" in names
    assert "model/head.safetensors" in names
    assert any(n.startswith("checkpoints/") and n.endswith(".safetensors") for n in names), names
    assert _wrong_modes(out) == {}


def test_every_file_of_a_pretraining_run_gets_the_umask_mode(umask_022, tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_seqs=(20, 5, 5))
    pretrain(corpus, tmp_path / "m", "gpt", "tiny", {"context": 40}, TRAIN)
    names = _modes(tmp_path / "m")
    assert "model.safetensors" in names
    assert any(n.endswith(".safetensors") and "/" in n for n in names), names  # checkpoints
    assert _wrong_modes(tmp_path / "m") == {}


def test_every_file_of_a_one_hot_cnn_run_gets_the_umask_mode(umask_022, tmp_path):
    from dnalm.core.config import CNNTrainConfig
    from dnalm.finetuning.baselines import train_onehot_cnn
    from tests.test_finetuning_baselines import _motif_table

    cfg = CNNTrainConfig(max_epochs=2, channels=8, batch_size=32)
    train_onehot_cnn(_motif_table(120, 40, seed=1), tmp_path / "cnn", config=cfg)
    assert "model.safetensors" in _modes(tmp_path / "cnn")
    assert _wrong_modes(tmp_path / "cnn") == {}
