"""Logging set-up shared by scripts and the CLI, and the tqdm settings (bars only on a TTY)."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO, stream=None) -> logging.Logger:
    root = logging.getLogger()
    root.handlers.clear()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level)
    return logging.getLogger("dnalm")


def progress_disabled(stream=None) -> bool:
    """tqdm's `disable` value: bars only when stderr is a terminal."""
    stream = stream or sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())
