"""The `dnalm` command line: subcommands are registered, errors are one clear line, and it
starts without importing what only the command that runs needs."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.cli import COMMANDS, SUBCOMMAND_MODULES, build_parser, command_name, main

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"


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
    assert len(lines) == 16
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


def test_every_table_entry_is_its_modules_command():
    """Each COMMANDS entry's module has register(), which adds that command with the same
    help line; and together the modules add no command the table lacks."""
    added: dict[str, str] = {}
    for module in SUBCOMMAND_MODULES:
        mod = importlib.import_module(module)
        assert callable(getattr(mod, "register", None)), f"{module} has no register()"
        sub = argparse.ArgumentParser().add_subparsers()
        mod.register(sub)
        for action in sub._choices_actions:
            added[action.dest] = (action.help, module)
    table = {c.name: (c.help, c.module) for c in COMMANDS}
    assert added == table


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_has_help(command, capsys):
    """In this process (the commands whose stage imports torch would take seconds each in a
    new one); test_help_runs_as_a_module runs one through ``python -m dnalm.cli``."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: dnalm {command} ")


def test_help_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "dnalm.cli", "cds", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SCRIPTS)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("usage: dnalm cds ")


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        ([], None),
        (["--help"], None),
        (["--version", "cds"], None),
        (["-v", "cds", "--help"], "cds"),
        (["--verbose", "task", "sequence"], "task"),
        (["--verb", "score"], "score"),
        (["bogus"], "bogus"),
    ],
)
def test_command_name(argv, name):
    assert command_name(argv) == name


@pytest.mark.parametrize("argv", [["--help"], ["cds", "--help"], ["cds-qc", "--help"]])
def test_help_imports_no_torch(argv):
    """`dnalm --help` lists every command without importing torch or transformers, and
    `dnalm cds --help` (CDS extraction needs neither) does not import them either."""
    code = (
        "import json, sys\n"
        "from dnalm.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('torch', 'transformers', 'pandas', 'sklearn', 'scipy', 'matplotlib')\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SCRIPTS)},
        check=True,
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
