"""The `dnalm` command line: subcommands are registered, errors are one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dnalm.cli import SUBCOMMAND_MODULES, build_parser, main


def test_every_module_registers(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    out = capsys.readouterr().out
    for command in ("samples", "fetch", "cds", "task", "tokenizer", "corpus"):
        assert command in out
    assert len(SUBCOMMAND_MODULES) >= 6


def test_samples_command_lists_rows(repo_root, shared_data, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    assert main(["samples", "tests/config/samples.tsv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 15
    assert lines[0].startswith("spyogenes\tStreptococcus pyogenes\tgbff\tlocal\t")


def test_user_error_is_one_line_and_exit_2(tmp_path):
    sheet = tmp_path / "s.tsv"
    sheet.write_text("sample\tspecies\tsource\tformat\na\tS\tGCF_000005845.2\tembl\n")
    proc = subprocess.run(
        [sys.executable, "-m", "dnalm.cli", "samples", str(sheet)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "unknown format 'embl'; use one of gbff, fasta_gff, cds_fasta, fasta"
    )
    assert "Traceback" not in proc.stderr


def test_tokenizer_and_corpus_commands(tmp_path, shared_data):
    fasta = shared_data / "cds_fasta/ecoli_highly_expressed_genes.fasta"
    assert main(["tokenizer", str(tmp_path / "tok"), "--spec", '{"type": "codon"}']) == 0
    assert (tmp_path / "tok/tokenizer.json").is_file()
    args = ["corpus", str(tmp_path / "tok"), str(tmp_path / "corpus"), "--block-size", "64"]
    for split in ("train", "validation", "test"):
        args += [f"--{split}", str(fasta)]
    assert main(args) == 0
    assert (tmp_path / "corpus/meta.json").is_file()
    assert main(["tokenizer", str(tmp_path / "x"), "--spec", "{not json"]) == 2
