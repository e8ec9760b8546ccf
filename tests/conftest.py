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


#: Test files that run longest (the two whole-workflow runs first, then the SLURM and
#: multi-process ones), in that order before all others. With `pytest -n 2 --dist loadfile
#: --no-loadscope-reorder` (tests/run.sh) each worker starts one of the two workflow runs at
#: once, so they overlap each other and the short files fill the cores afterwards, instead of
#: the second run starting late and ending the suite on a half-idle machine.
LONG_FIRST = (
    "test_readme.py",
    "test_workflow_e2e.py",
    "test_workflow_slurm.py",
    "test_training_pretrain.py",
    "test_training_distributed.py",
    "test_workflow_data.py",
    "test_external_models.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FIRST)))
