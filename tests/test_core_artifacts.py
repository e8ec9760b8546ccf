"""The names of the stage output files (dnalm.core.artifacts) and the readers of the JSON
records several stages share."""

from __future__ import annotations

import json

import pytest

from dnalm.core import artifacts
from dnalm.core.errors import InputFormatError


def test_every_name_is_one_file_name():
    assert len(set(artifacts.ALL)) == len(artifacts.ALL)
    assert all(name and "/" not in name for name in artifacts.ALL)
    assert artifacts.METRICS_JSON in artifacts.ALL
    assert artifacts.RUN_JSON in artifacts.ALL


def test_readers_return_the_object_and_name_the_file(tmp_path):
    (tmp_path / artifacts.RUN_JSON).write_text(json.dumps({"steps": 3}), encoding="utf-8")
    assert artifacts.read_run_record(tmp_path) == {"steps": 3}
    with pytest.raises(InputFormatError, match=r"metrics\.json: test metrics not found"):
        artifacts.read_metrics(tmp_path)
    (tmp_path / artifacts.METRICS_JSON).write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputFormatError, match="must hold a JSON object"):
        artifacts.read_metrics(tmp_path, "pretraining test metrics")
