"""The `dnalm` command line.

Each stage module contributes its subcommands through a ``register(subparsers)`` function.
:data:`COMMANDS` lists every subcommand with its help line and the module that registers it,
so ``dnalm --help`` (and a wrong command name) is answered without importing any stage
module: the chosen command's module alone is imported, to build its own parser and run.
Stage modules may import torch and transformers at their top; only the command that needs
them pays for it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NamedTuple

from dnalm import __version__
from dnalm.core.errors import DnalmError
from dnalm.core.log import setup_logging


class Command(NamedTuple):
    """One subcommand: its name, the help line ``dnalm --help`` shows, the module whose
    ``register(subparsers)`` adds it (the help line must be the one register uses;
    tests/test_cli.py checks both)."""

    name: str
    help: str
    module: str


#: the module of the sampling commands (generate, next)
SAMPLING = "dnalm.generation.sampling"

#: every subcommand, in the order ``dnalm --help`` lists them
COMMANDS: tuple[Command, ...] = (
    Command("samples", "validate a sample sheet and print its rows", "dnalm.genome.samples"),
    Command(
        "fetch",
        "download (or locate) and verify one genome source; prints its path",
        "dnalm.genome.download",
    ),
    Command("cds", "extract and QC the CDS of one sample", "dnalm.genome.cds"),
    Command("cds-qc", "summarise CDS QC tables across samples", "dnalm.genome.cds"),
    Command("task", "build a task dataset (data.tsv + summary.tsv)", "dnalm.tasks.cli"),
    Command("tokenizer", "build and save a tokenizer folder", "dnalm.tokenization.build"),
    Command("corpus", "build a tokenized pretraining corpus", "dnalm.tokenization.corpus"),
    Command("pretrain", "pretrain a gpt or mlm model on a corpus", "dnalm.training.pretrain_cli"),
    Command("score", "per-token log-likelihoods of FASTA sequences", "dnalm.evaluation.inference"),
    Command("generate", "sample continuations of a prefix (gpt)", SAMPLING),
    Command("next", "top-k next tokens after a prefix (gpt)", SAMPLING),
    Command(
        "vep",
        "zero-shot variant-effect scores (log-likelihood ratio alt vs ref)",
        "dnalm.evaluation.vep",
    ),
    Command(
        "publish",
        "check a model folder (card, provenance, safety, offline loading) and upload it to the Hub",
        "dnalm.modeling.publish",
    ),
)

#: the modules that register subcommands, in table order (each once)
SUBCOMMAND_MODULES: list[str] = list(dict.fromkeys(c.module for c in COMMANDS))

#: options of the top-level parser that end parsing before any command is read
_EXITING = ("-h", "--help", "--version")


class _OnlyOne:
    """What a stage module's ``register`` gets when one of its commands runs: the real
    subparsers action for that command, a detached parser (never used) for the others."""

    def __init__(self, subparsers, name: str) -> None:
        self._subparsers = subparsers
        self._name = name
        self.added = False

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        if name != self._name:
            return argparse.ArgumentParser(add_help=False)
        self.added = True
        return self._subparsers.add_parser(name, **kwargs)


def command_name(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names, found as argparse finds it: the first word that is not
    an option (None when there is none, or when ``--help``/``--version`` comes first and
    argparse answers before reading a command)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            return arg
        flag = arg.split("=", 1)[0]
        if flag in _EXITING or (len(flag) > 3 and any(o.startswith(flag) for o in _EXITING)):
            return None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of the ``dnalm`` command line. Every subcommand is listed from
    :data:`COMMANDS`; only `command` (when given) gets its real parser, built by its
    module's ``register``, which is the one module imported."""
    parser = argparse.ArgumentParser(
        prog="dnalm", description="DNA language models end to end (library behind the workflow)."
    )
    parser.add_argument("--version", action="version", version=f"dnalm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for entry in COMMANDS:
        if entry.name != command:
            sub.add_parser(entry.name, help=entry.help, add_help=False)
            continue
        only = _OnlyOne(sub, entry.name)
        importlib.import_module(entry.module).register(only)
        if not only.added:
            raise RuntimeError(f"{entry.module}.register() adds no {entry.name!r} command")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_name(argv))
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except DnalmError as err:
        print(f"dnalm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
