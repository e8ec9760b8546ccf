"""One process of a multi-process pretraining run: ``python -m dnalm.training.worker RUN_JSON``,
what :func:`dnalm.training.distributed.launch` starts under torchrun (the run written by
:meth:`dnalm.training.run.PretrainRun.save`)."""

from __future__ import annotations

import logging
import sys

from dnalm.core.errors import DnalmError
from dnalm.core.log import setup_logging
from dnalm.training.pretrain import run_pretraining
from dnalm.training.run import PretrainRun


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dnalm.training.worker RUN_JSON", file=sys.stderr)
        return 2
    setup_logging(logging.INFO)
    try:
        run_pretraining(PretrainRun.load(args[0]))
    except DnalmError as err:
        print(f"dnalm: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
