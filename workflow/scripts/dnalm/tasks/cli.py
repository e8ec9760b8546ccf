"""The ``dnalm task`` subcommands (species fragments, TF binding, sequence tasks)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from dnalm.core.errors import ConfigError
from dnalm.core.io import refuse_overwrite
from dnalm.genome.samples import load_sample_sheet
from dnalm.kinds.tasks import SEQUENCE_TASK_KINDS
from dnalm.tasks.common import DEFAULT_FRACTIONS, DEFAULT_MAX_PER_CDS
from dnalm.tasks.sequence import build_sequence_task
from dnalm.tasks.species import build_species_fragments
from dnalm.tasks.tf_binding import build_tf_binding


def _parse_class_files(items: Sequence[str] | None, opt: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items or []:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ConfigError(f"{opt} expects CLASS=FASTA, got {item!r}")
        out.setdefault(label, []).append(path)
    return out


def _fractions_arg(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("give three comma-separated fractions, e.g. 0.8,0.1,0.1")
    return tuple(float(p) for p in parts)  # type: ignore[return-value]


def register(subparsers) -> None:
    """Add ``dnalm task species-fragments | tf-binding | sequence``."""
    p = subparsers.add_parser("task", help="build a task dataset (data.tsv + summary.tsv)")
    sub = p.add_subparsers(dest="task_command", metavar="TASK")
    sub.required = True

    sp = sub.add_parser("species-fragments", help="species classification from CDS fragments")
    sp.add_argument("sheet", help="sample sheet (rows with species_task true are used)")
    sp.add_argument("--splits-dir", default="results/splits", help="folder of {sample}/*.fa.gz")
    sp.add_argument("--out", required=True, help="output folder")
    sp.add_argument("--length", type=int, default=60)
    sp.add_argument("--n-train", type=int, default=1000)
    sp.add_argument("--n-validation", type=int, default=0)
    sp.add_argument("--n-test", type=int, default=1000)
    sp.add_argument("--max-per-cds", type=int, default=DEFAULT_MAX_PER_CDS)
    sp.add_argument("--balance", action="store_true", help="downsample species to the smallest")
    sp.add_argument("--seed", type=int, default=0)

    def run_species(args) -> int:
        refuse_overwrite(
            {"SHEET": args.sheet, "--splits-dir": args.splits_dir}, {"--out": args.out}, ["--out"]
        )
        base = Path(args.splits_dir)
        samples = [
            {
                "sample": s.sample,
                "species": s.species,
                "validation_fasta": base / s.sample / "validation.fa.gz",
                "test_fasta": base / s.sample / "test.fa.gz",
            }
            for s in load_sample_sheet(args.sheet, check_local_files=False)
            if s.species_task
        ]
        summary = build_species_fragments(
            samples, args.out, length=args.length, n_train=args.n_train,
            n_test=args.n_test, n_validation=args.n_validation, seed=args.seed,
            max_per_cds=args.max_per_cds, balance=args.balance,
        )  # fmt: skip
        print(summary.to_csv(sep="\t", index=False), end="")
        return 0

    sp.set_defaults(func=run_species)

    tf = sub.add_parser("tf-binding", help="per-base regression (TF binding scores)")
    tf.add_argument("sequences", help="sequences TSV (dnallm, tsv) or BED (bed)")
    tf.add_argument("--scores", help="scores file (dnallm, bed)")
    tf.add_argument("--format", dest="fmt", choices=("dnallm", "tsv", "bed"), default="dnallm")
    tf.add_argument("--genome", help="genome FASTA (bed format)")
    tf.add_argument("--out", required=True)
    tf.add_argument("--fractions", type=_fractions_arg, default=DEFAULT_FRACTIONS)
    tf.add_argument("--group-distance", type=int, default=0)
    tf.add_argument("--seed", type=int, default=0)

    def run_tf(args) -> int:
        refuse_overwrite(
            {"SEQUENCES": args.sequences, "--scores": args.scores, "--genome": args.genome},
            {"--out": args.out},
            ["--out"],
        )
        summary = build_tf_binding(
            args.out, args.sequences, scores=args.scores, fmt=args.fmt, genome=args.genome,
            fractions=args.fractions, seed=args.seed, group_distance=args.group_distance,
        )  # fmt: skip
        print(summary.to_csv(sep="\t", index=False), end="")
        return 0

    tf.set_defaults(func=run_tf)

    sq = sub.add_parser("sequence", help="sequence classification/regression from CSV or FASTA")
    sq.add_argument("--kind", choices=SEQUENCE_TASK_KINDS, default=SEQUENCE_TASK_KINDS[0])
    sq.add_argument("--table", help="CSV/TSV with sequence,label")
    sq.add_argument("--fasta", action="append", metavar="CLASS=FASTA", help="repeatable")
    sq.add_argument("--test-table")
    sq.add_argument("--test-fasta", action="append", metavar="CLASS=FASTA")
    sq.add_argument("--out", required=True)
    sq.add_argument("--fractions", type=_fractions_arg, default=DEFAULT_FRACTIONS)
    sq.add_argument("--seed", type=int, default=0)

    def run_seq(args) -> int:
        fasta = _parse_class_files(args.fasta, "--fasta")
        test_fasta = _parse_class_files(args.test_fasta, "--test-fasta")
        refuse_overwrite(
            {
                "--table": args.table,
                "--fasta": [p for ps in fasta.values() for p in ps],
                "--test-table": args.test_table,
                "--test-fasta": [p for ps in test_fasta.values() for p in ps],
            },
            {"--out": args.out},
            ["--out"],
        )
        summary = build_sequence_task(
            args.out, kind=args.kind, table=args.table,
            fasta_by_class=fasta,
            test_table=args.test_table,
            test_fasta_by_class=test_fasta,
            fractions=args.fractions, seed=args.seed,
        )  # fmt: skip
        print(summary.to_csv(sep="\t", index=False), end="")
        return 0

    sq.set_defaults(func=run_seq)
