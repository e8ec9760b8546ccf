"""The workflow's per-sample data jobs as commands, which rules verify_sources and extract_cds
run with ``shell:`` (``{params.py} -m dnalm.genome.jobs verify-sources ...``, the Python of
dnalm.core.smk.job_python):

    python -m dnalm.genome.jobs verify-sources SAMPLE --primary-file F [--annotation-file=F]
        --record OUT --log LOG
    python -m dnalm.genome.jobs extract-cds SAMPLE CDS --primary-file F [--annotation-file=F]
        --fasta OUT --tsv OUT --log LOG [SPLIT --split-log LOG --train OUT --validation OUT
        --test OUT --assignment OUT]

SAMPLE is the sample's sheet row as flags (:func:`sample_args`), CDS the ``cds`` section of
the config (:func:`cds_args`) and SPLIT the split settings when the job also splits the
sample (splits.method identity; :func:`split_args`). The plan hands these flags to the rules
as params (dnalm.core.smk.ShellText: quoted, and not recorded for Snakemake's params rerun
trigger), so what a rule passes and what the command reads are spelled in this one module.

Why commands and not ``script:``: these two rules run once per sample, and Snakemake looks
up the source of every ``script:`` job while it builds the DAG (about 0.7 ms a job), which a
sheet of 10,000 genomes pays twice per sample (benchmarks/bench_dag.py). The work itself is
the library's (:func:`dnalm.genome.download.verify_sources`, :func:`dnalm.genome.cds.run_cds`,
:func:`dnalm.genome.splits.split_sample`); the job's log and its errors are handled as for a
script (:func:`dnalm.core.smk.run_logged`): a DnalmError is one line in the log and on the
terminal, and the job exits 1 with no output written (every output is written atomically).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import MISSING, fields
from typing import Any

from dnalm.core.errors import ConfigError
from dnalm.core.smk import run_logged, step_log
from dnalm.genome.cds import DropPolicy, run_cds
from dnalm.genome.download import verify_sources
from dnalm.genome.samples import Sample
from dnalm.genome.splits import SPLITS, split_sample

#: the columns of the sample's sheet row that the jobs read (the others, such as its line or
#: its pretrain flag, stay out of the command, so changing them reruns no job)
JOB_FIELDS = (
    "sample",
    "species",
    "source",
    "format",
    "annotation",
    "genetic_code",
    "md5",
    "sha256",
    "annotation_md5",
    "annotate",
    "annotate_mode",
)
#: how the command reads each type of a Sample field back from its flag
_FIELD_TYPES = {"str": str, "int | None": int}


def _job_fields():
    return [f for f in fields(Sample) if f.name in JOB_FIELDS]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def sample_args(sample: Sample) -> list[str]:
    """The sample's sheet row as command-line flags (``--sample=ID --species=NAME ...``; with
    ``=``, so that a value may start with a dash), the columns of :data:`JOB_FIELDS`; a field
    at its default (an empty column) is left out."""
    out = []
    for field in _job_fields():
        value = getattr(sample, field.name)
        if field.default is not MISSING and value == field.default:
            continue
        out.append(f"{_flag(field.name)}={value}")
    return out


def cds_args(cds: Mapping[str, Any]) -> list[str]:
    """The config's ``cds`` section (drop policy, allow_empty, max_drop_fraction) as flags;
    an unknown key or drop reason is refused here, at DAG build."""
    policy = dict(cds)
    allow_empty = bool(policy.pop("allow_empty", False))
    max_drop_fraction = policy.pop("max_drop_fraction", None)
    drop = DropPolicy.from_config(policy)
    out = ["--drop", *sorted(drop.drop), "--min-length", str(drop.min_length)]
    if allow_empty:
        out.append("--allow-empty")
    if max_drop_fraction is not None:
        out += ["--max-drop-fraction", repr(float(max_drop_fraction))]
    return out


def split_args(split: Mapping[str, Any]) -> list[str]:
    """The split settings (the plan's ``split_settings()``: seed, fractions, allow_empty) as
    flags, one ``--fraction NAME=VALUE`` per split."""
    out = ["--seed", str(int(split["seed"]))]
    for name, value in split["fractions"].items():
        out += ["--fraction", f"{name}={float(value)!r}"]
    if split.get("allow_empty"):
        out.append("--split-allow-empty")
    return out


def _fraction(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=NUMBER") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dnalm.genome.jobs",
        description="The workflow's per-sample data jobs (rules verify_sources, extract_cds).",
    )
    sub = parser.add_subparsers(dest="job", required=True)
    verify = sub.add_parser("verify-sources", help="verify a sample's files, write provenance")
    extract = sub.add_parser("extract-cds", help="extract (and split) a sample's CDS")
    for p in (verify, extract):
        group = p.add_argument_group("the sample's sheet row")
        for field in _job_fields():
            if field.type not in _FIELD_TYPES:
                raise TypeError(f"Sample.{field.name}: no flag type for {field.type!r}")
            default = None if field.default is MISSING else field.default
            group.add_argument(
                _flag(field.name),
                dest=f"sample_{field.name}",
                type=_FIELD_TYPES[field.type],
                required=field.default is MISSING,
                default=default,
            )
        p.add_argument("--primary-file", required=True, help="the genome (or CDS) file")
        p.add_argument("--annotation-file", default="", help="the GFF3/GTF, if any")
        p.add_argument("--log", required=True, help="the job's log file")
    verify.add_argument("--record", required=True, help="provenance.json to write")
    extract.add_argument("--drop", nargs="*", default=None, help="QC issues that drop a CDS")
    extract.add_argument("--min-length", type=int, default=0)
    extract.add_argument("--allow-empty", action="store_true")
    extract.add_argument("--max-drop-fraction", type=float, default=None)
    extract.add_argument("--fasta", required=True, help="kept CDS (FASTA) to write")
    extract.add_argument("--tsv", required=True, help="per-CDS QC table to write")
    split = extract.add_argument_group("the split, when this job also splits the sample")
    split.add_argument("--seed", type=int)
    split.add_argument("--fraction", type=_fraction, action="append", default=[])
    split.add_argument("--split-allow-empty", action="store_true")
    split.add_argument("--split-log")
    for name in (*SPLITS, "assignment"):
        split.add_argument(f"--{name}")
    return parser


def _sample(args: argparse.Namespace) -> Sample:
    return Sample(**{f.name: getattr(args, f"sample_{f.name}") for f in _job_fields()})


def _verify(args: argparse.Namespace, sample: Sample) -> None:
    verify_sources(sample, args.primary_file, args.annotation_file or None, args.record)


def _extract(args: argparse.Namespace, sample: Sample) -> None:
    split_files = {name: getattr(args, name) for name in (*SPLITS, "assignment")}
    splitting = args.seed is not None
    given = [name for name, path in split_files.items() if path] + (
        ["split-log"] if args.split_log else []
    )
    if splitting != bool(given) or (splitting and len(given) != len(split_files) + 1):
        raise ConfigError(
            f"sample {sample.sample}: extract-cds splits with --seed and all of --split-log, "
            f"--{', --'.join(split_files)}, or with none of them (got --seed "
            f"{args.seed}, {', '.join(given) or 'no split file'})"
        )
    policy = DropPolicy(
        **({} if args.drop is None else {"drop": frozenset(args.drop)}),
        min_length=args.min_length,
    )
    run_cds(
        sample.sample,
        sample.format,
        args.primary_file,
        args.fasta,
        args.tsv,
        annotation=args.annotation_file or None,
        genetic_code=sample.genetic_code,
        policy=policy,
        allow_empty=args.allow_empty,
        max_drop_fraction=args.max_drop_fraction,
        annotate=sample.annotate,
        annotate_mode=sample.annotate_mode,
    )
    if splitting:
        with step_log(args.split_log):
            split_sample(
                sample.sample,
                args.fasta,
                {name: split_files[name] for name in SPLITS},
                split_files["assignment"],
                seed=args.seed,
                fractions=dict(args.fraction) or None,
                allow_empty=args.split_allow_empty,
            )


JOBS = {"verify-sources": _verify, "extract-cds": _extract}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    sample = _sample(args)
    rule = args.job.replace("-", "_")
    run_logged(args.log, lambda: JOBS[args.job](args, sample), job=f"{rule} sample={sample.sample}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
