"""The `dnalm` command line. Each stage module contributes subcommands through a
`register(subparsers)` function; the modules are listed in SUBCOMMAND_MODULES."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from dnalm import __version__
from dnalm.core.errors import DnalmError
from dnalm.core.log import setup_logging

SUBCOMMAND_MODULES: list[str] = [
    "dnalm.genome.samples",
    "dnalm.genome.download",
    "dnalm.genome.cds",
    "dnalm.tasks.cli",
    "dnalm.tokenization.build",
    "dnalm.tokenization.corpus",
    "dnalm.training.pretrain_cli",
    "dnalm.evaluation.inference",
    "dnalm.generation.sampling",
    "dnalm.evaluation.vep",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dnalm", description="DNA language models end to end (library behind the workflow)."
    )
    parser.add_argument("--version", action="version", version=f"dnalm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        return int(args.func(args) or 0)
    except DnalmError as err:
        print(f"dnalm: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
