"""Glue for the thin scripts in workflow/scripts and the jobs run as ``python -m
dnalm.<stage>.<module>``: send stderr and logging to the rule's log file, hold the job's GPU
slots (dnalm.core.gpuslots: a job with `gpu` resources sees only its own devices), and turn
a DnalmError into one clear line in that log and on the terminal (plus a non-zero exit, after
which Snakemake deletes the job's outputs); and the Python a `shell:` rule runs
(:func:`job_python`)."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import traceback
from collections.abc import Callable, Sequence

from dnalm.core import gpuslots
from dnalm.core.errors import DnalmError
from dnalm.core.log import setup_logging


def quiet_library_progress_bars() -> None:
    """No Hugging Face progress bars ("Loading weights", "Writing model shards"): in a log
    file each is a line of carriage-return redraws per model load or save. Our own bars
    already switch off when stderr is not a terminal (dnalm.core.log.progress_disabled)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # for imports still to come
    if "transformers" in sys.modules:  # imported already: its switch was read at import
        # lazy: only when transformers is already imported (its switch)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def gpu_count(snakemake) -> int:
    """The job's `gpu` resource (0 when the rule declares none)."""
    try:
        return int(getattr(snakemake.resources, "gpu", 0) or 0)
    except (TypeError, ValueError):
        return 0


def job_name(snakemake) -> str:
    """The rule and wildcards of the job, for messages ("finetune run=a ftask=b")."""
    wildcards = getattr(snakemake, "wildcards", None)
    items = dict(wildcards.items()) if hasattr(wildcards, "items") else {}
    return " ".join(
        [str(getattr(snakemake, "rule", "job"))] + [f"{k}={v}" for k, v in items.items()]
    )


def run_script(snakemake, main: Callable[[object], None]) -> None:
    """Run `main(snakemake)` with stderr redirected to the rule's first log file (without
    library progress bars there), holding the job's GPU slots first (before torch touches
    CUDA; see dnalm.core.gpuslots)."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    run_logged(
        log_path,
        lambda: main(snakemake),
        job=job_name(snakemake),
        gpus=gpu_count(snakemake),
    )


def run_logged(log_path, main: Callable[[], None], *, job: str, gpus: int = 0) -> None:
    """Run `main()` as a job of the workflow: stderr and logging go to `log_path` (when
    given; without library progress bars there), the job's GPU slots are held while it runs,
    and a DnalmError becomes one line in the log and on the job's own stderr (the terminal
    that runs Snakemake) and exit status 1; any other error's traceback goes to the log and
    the error on. What a `script:` job (:func:`run_script`) and a job run as
    ``python -m dnalm.<stage>.<module>`` (dnalm.genome.jobs) share."""
    if log_path:
        quiet_library_progress_bars()
    log_fh = open(log_path, "w", buffering=1) if log_path else sys.stderr  # noqa: SIM115
    with contextlib.ExitStack() as stack:
        if log_path:
            stack.callback(log_fh.close)
        sys.stderr = log_fh
        logger = setup_logging(logging.INFO, stream=log_fh)
        try:
            gpuslots.claim(gpus, job=job)
            main()
        except DnalmError as err:
            logger.error("%s", err)
            print(f"dnalm error: {err}", file=sys.__stderr__)
            sys.exit(1)
        except Exception:
            traceback.print_exc(file=log_fh)
            raise
        finally:
            gpuslots.release()
            sys.stderr = sys.__stderr__


class ShellText:
    """Text that a `shell:` rule's command takes as is from a param (``{params.py}``, not
    ``:q``: the text is quoted already), and that Snakemake leaves out of the params it
    records to rerun a job when they change (it records plain values only: str, list, dict,
    ...). For what is no setting of the job's result, or is recorded by another param: the
    Python that runs the job (:func:`job_python`; a moved venv or ``--sdm conda`` redoes no
    data) and a sample's sheet row as flags (dnalm.genome.jobs), which the script rules took
    as a Sample object, unrecorded as well."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    @classmethod
    def words(cls, words: Sequence[object]) -> ShellText:
        """The words of a command line, each quoted for the shell where it needs it."""
        return cls(shlex.join(str(w) for w in words))

    def __format__(self, spec: str) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"ShellText({self.text!r})"


def job_python(conda: bool, scripts: str | os.PathLike, executable: str = sys.executable) -> str:
    """The start of a `shell:` rule's command that runs a module of the library
    (``{PY} -m dnalm.<stage>.<module> ...``): the library's folder `scripts` first on
    PYTHONPATH, then the Python that runs the job. With `conda` (Snakemake deploys the rules'
    conda environments: ``--sdm conda``) that is the environment's ``python``, which
    Snakemake puts first on the job's PATH; otherwise `executable`, the interpreter that runs
    Snakemake, so that ``.venv/bin/snakemake`` works without activating the venv."""
    python = "python" if conda else shlex.quote(str(executable))
    return f"PYTHONPATH={shlex.quote(str(scripts))}${{PYTHONPATH:+:$PYTHONPATH}} {python}"


@contextlib.contextmanager
def step_log(path):
    """Send stderr and logging to `path` while a job does the step of another rule's log
    (extract_cds splitting the sample it extracted writes results/logs/splits/{sample}.log
    as split_cds does); its error goes there too, then on to run_script, which ends the job.
    Back to the job's first log after."""
    previous = sys.stderr
    with open(path, "w", buffering=1) as fh:
        sys.stderr = fh
        logger = setup_logging(logging.INFO, stream=fh)
        try:
            yield
        except DnalmError as err:
            logger.error("%s", err)
            raise
        except Exception:
            traceback.print_exc(file=fh)
            raise
        finally:
            sys.stderr = previous
            setup_logging(logging.INFO, stream=previous)
