"""Benchmark-suite formats: the on-disk layouts of the public suites a ``suites`` config entry
can read, declared once.

A :class:`SuiteFormat` says where a task's files lie in the suite's folder (relative to
``<source>/<task>``), which of its splits the suite provides (a suite without a validation
split gets one carved from its train split with the entry's ``validation`` share and
``seed``), and the suite's official metric, which the comparison table names beside our
standard metrics. The readers live in :mod:`dnalm.tasks.suites` (``read_<format>``);
tests/test_layout.py checks that every format has its reader and tests/test_kinds.py that
the config schema's enum is this registry.

Torch-free and pandas-free: the plan reads it at DAG build.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnalm.kinds import Kind, Registry


@dataclass(frozen=True)
class SuiteFormat(Kind):
    """One suite format (see the module docstring)."""

    #: the suite's official metric: a classification metric of dnalm.kinds.tasks
    metric: str
    #: files every task folder must hold, relative to it (a trailing ``/*`` : one per class,
    #: named by the task's metadata)
    files: tuple[str, ...]
    #: files a task folder may hold (a provided validation split)
    optional_files: tuple[str, ...] = ()
    #: the suite's split names -> ours
    splits: tuple[tuple[str, str], ...] = (("train", "train"), ("test", "test"))
    #: where the layout is documented
    reference: str = ""


SUITE_FORMATS: Registry[SuiteFormat] = Registry("suite format")

SUITE_FORMATS.register(
    SuiteFormat(
        name="genomic_benchmarks",
        summary="Genomic Benchmarks coordinates: metadata.yaml + train|test/<class>.csv.gz",
        metric="accuracy",
        files=("metadata.yaml",),
        reference="github.com/ML-Bioinfo-CEITEC/genomic_benchmarks (datasets/, loc2seq)",
    )
)
SUITE_FORMATS.register(
    SuiteFormat(
        name="nt_downstream",
        summary="Nucleotide Transformer downstream tasks: train.parquet, test.parquet",
        metric="mcc",
        files=("train.parquet", "test.parquet"),
        reference="huggingface.co/datasets/InstaDeepAI/nucleotide_transformer_downstream_tasks",
    )
)
SUITE_FORMATS.register(
    SuiteFormat(
        name="gue",
        summary="GUE (DNABERT-2): train.csv, dev.csv, test.csv with sequence,label",
        metric="mcc",
        files=("train.csv", "dev.csv", "test.csv"),
        splits=(("train", "train"), ("dev", "validation"), ("test", "test")),
        reference="github.com/MAGICS-LAB/DNABERT_2 (GUE)",
    )
)
SUITE_FORMATS.register(
    SuiteFormat(
        name="csv",
        summary="a plain folder: train.csv, test.csv and optional dev.csv (sequence,label)",
        metric="accuracy",
        files=("train.csv", "test.csv"),
        optional_files=("dev.csv",),
        splits=(("train", "train"), ("dev", "validation"), ("test", "test")),
    )
)

#: the format names, in declaration order
FORMATS: tuple[str, ...] = SUITE_FORMATS.names()


def suite_task_name(suite: str, task: str) -> str:
    """The task name of task `task` of suite `suite` (its folder under results/tasks):
    ``<suite>_<task>``, a ``/`` of a nested task folder (GUE's ``prom/prom_300_all``) as
    ``_``."""
    return f"{suite}_{task.strip('/').replace('/', '_')}"
