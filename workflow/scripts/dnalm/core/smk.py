"""Glue for the thin scripts in workflow/scripts: send stderr and logging to the rule's
log file, hold the job's GPU slots (dnalm.core.gpuslots: a job with `gpu` resources sees
only its own devices), and turn a DnalmError into one clear line in that log (plus a
non-zero exit, after which Snakemake deletes the job's outputs)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Callable

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
    if log_path:
        quiet_library_progress_bars()
    log_fh = open(log_path, "w", buffering=1) if log_path else sys.stderr  # noqa: SIM115
    with contextlib.ExitStack() as stack:
        if log_path:
            stack.callback(log_fh.close)
        sys.stderr = log_fh
        logger = setup_logging(logging.INFO, stream=log_fh)
        try:
            gpuslots.claim(gpu_count(snakemake), job=job_name(snakemake))
            main(snakemake)
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
