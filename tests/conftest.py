"""Shared fixtures. Real data lives in ../shared/data (or $DNALM_SHARED_DATA); tests that
need it skip with the reason when it is absent. CI has it, so there they run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("DNALM_SHARED_DATA")
    return Path(env) if env else (REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(
            f"shared test data not found at {path}: set DNALM_SHARED_DATA or place "
            "../shared/data beside the repository"
        )
    return path
