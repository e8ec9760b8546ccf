"""The plan of a run: the config and the sample sheet, checked once and turned into typed
records (samples, models, runs, tasks, corpora, sweeps, targets) before Snakemake builds the
DAG. Torch-free: it runs while the workflow is parsed.

``PLAN = load(config)`` is all common.smk does with the config; every config error is a
DnalmError raised by :func:`load` (tests/test_plan.py checks them without Snakemake).
"""

from dnalm.plan.load import load
from dnalm.plan.plan import Plan

__all__ = ["Plan", "load"]
