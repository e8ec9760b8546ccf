"""``dnalm publish``: the checks on a model folder (each refusal), ``--dry-run``, and the
upload to a real HTTP server on 127.0.0.1 that answers the Hub calls huggingface_hub makes
(create the repository, validate the card's YAML, pre-upload, commit) and records them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from dnalm.cli import main
from dnalm.core.errors import ConfigError
from dnalm.core.hub import ExternalModel
from dnalm.core.hub import provenance as snapshot_record
from dnalm.core.provenance import external_base
from dnalm.modeling.publish import plan_upload, publish
from tests.support import hub_fixtures as hf
from tests.support.model_cards import carded_model

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    folder, _, _ = carded_model(tmp_path_factory.mktemp("publish"))
    return folder


@pytest.fixture
def folder(model_folder, tmp_path) -> Path:
    """A copy of the carded model folder that a test may break."""
    return Path(shutil.copytree(model_folder, tmp_path / "m", symlinks=True))


def refused(path: Path) -> dict[str, str]:
    return dict(plan_upload(path).refused)


def test_dry_run_lists_the_files_and_passes(model_folder, capsys):
    assert (model_folder / "checkpoints").is_dir()  # training state that must stay home
    code = main(["publish", "--model", str(model_folder), "--repo-id", "org/tiny", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    for name in ("README.md", "provenance.json", "config.json", "model.safetensors"):
        assert f"upload   {name}" in out
    assert "tokenizer.json" in out
    assert "left out checkpoints/" in out
    assert "REFUSED" not in out
    up = plan_upload(model_folder)
    assert not any(f.startswith("checkpoints/") for f in up.files)


@pytest.mark.parametrize("name", ["README.md", "provenance.json"])
def test_a_folder_without_its_card_or_provenance_is_refused(folder, name, capsys):
    (folder / name).unlink()
    assert name in refused(folder)
    code = main(["publish", "--model", str(folder), "--repo-id", "org/tiny", "--dry-run"])
    assert code == 1
    assert f"REFUSED  {name}" in capsys.readouterr().out


def test_a_card_that_does_not_parse_is_refused(folder):
    (folder / "README.md").write_text("---\nlibrary_name: [unclosed\n---\n# x\n")
    assert "does not parse" in refused(folder)["README.md"]


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "extra/state.pkl"])
def test_pickle_files_are_refused(folder, name):
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"\x80\x04pickle")
    assert "pickle" in refused(folder)[name]


def test_remote_code_without_a_pinned_hash_is_refused(folder):
    (folder / "modeling_x.py").write_text("raise SystemExit('remote code ran')\n")
    assert "without a pinned hash" in refused(folder)["modeling_x.py"]


def test_auto_map_without_a_pinned_hash_is_refused(folder):
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "org/elsewhere--modeling.Net"}
    (folder / "config.json").write_text(json.dumps(config))
    assert "without a pinned hash" in refused(folder)["config.json"]


def test_remote_code_is_accepted_only_with_its_pinned_hash(folder):
    code = folder / "modeling_x.py"
    code.write_text("X = 1\n")
    prov = json.loads((folder / "provenance.json").read_text())
    digest = hashlib.sha256(code.read_bytes()).hexdigest()
    prov["remote_code"] = {"revision": SHA, "files": {"modeling_x.py": digest}}
    (folder / "provenance.json").write_text(json.dumps(prov))
    assert "modeling_x.py" not in refused(folder)
    code.write_text("X = 2\n")  # changed after it was pinned
    assert (
        f"sha256 {hashlib.sha256(code.read_bytes()).hexdigest()}"
        in refused(folder)["modeling_x.py"]
    )


def test_code_of_a_pinned_external_base_model_is_accepted_as_recorded(folder, tmp_path):
    """A folder fine-tuned from an external model with remote code carries its code files;
    the provenance that finetune_card writes pins them from the fetch rule's record."""
    snapshot = hf.remote_code_folder(tmp_path / hf.REVISION)
    entry = ExternalModel("v2", "org/nt-v2-tiny", hf.REVISION, trust_remote_code=True)
    record = snapshot_record(entry, snapshot)
    for name in hf.CODE_FILES:
        shutil.copy(snapshot / name, folder / name)
    prov = json.loads((folder / "provenance.json").read_text())
    prov.update(external_base(record))
    pinned = {"revision": hf.REVISION, "files": hf.fixture_code_hashes(snapshot)}
    assert prov["remote_code"] == pinned
    (folder / "provenance.json").write_text(json.dumps(prov))
    assert refused(folder) == {}
    without = {**record, "entry": {**record["entry"], "trust_remote_code": False}}
    assert "remote_code" not in external_base(without)


def test_symlinks_and_files_outside_the_folder_are_refused(folder, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not yours")
    os.symlink(outside, folder / "notes.txt")
    os.symlink(tmp_path, folder / "elsewhere")
    got = refused(folder)
    assert "resolves outside the folder" in got["notes.txt"]
    assert "outside it" in got["elsewhere"]


def test_a_symlink_inside_the_folder_is_refused_and_hidden_files_left_out(folder):
    os.symlink("config.json", folder / "alias.json")
    (folder / ".model.safetensors.tmp").write_bytes(b"half written")
    up = plan_upload(folder)
    assert "a symlink" in dict(up.refused)["alias.json"]
    assert ".model.safetensors.tmp" in dict(up.left_out)
    assert ".model.safetensors.tmp" not in up.files


def test_a_folder_that_does_not_load_offline_is_refused(folder):
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    assert "does not load offline" in refused(folder)["."]


def test_repo_id_must_be_org_slash_name(model_folder):
    with pytest.raises(ConfigError, match="org/name"):
        publish(model_folder, "tiny", dry_run=True)


class HubRecorder(BaseHTTPRequestHandler):
    """The Hub calls of HfApi.create_repo and upload_folder, answered and recorded."""

    calls: ClassVar[list[tuple[str, str, dict, bytes]]] = []

    def _answer(self, obj) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.calls.append((self.command, self.path, dict(self.headers), data))
        base = f"http://127.0.0.1:{self.server.server_port}"
        if self.path == "/api/repos/create":
            req = json.loads(data)
            return self._answer({"url": f"{base}/{req['organization']}/{req['name']}"})
        if self.path == "/api/validate-yaml":
            return self._answer({"errors": [], "warnings": []})
        if "/preupload/" in self.path:
            files = json.loads(data)["files"]
            regular = {"uploadMode": "regular", "shouldIgnore": False}
            modes = [{"path": f["path"], **regular} for f in files]
            return self._answer({"files": modes})
        if "/commit/" in self.path:
            return self._answer({"commitUrl": f"{base}/org/tiny/commit/{SHA}", "commitOid": SHA})
        self.send_error(404)
        return None

    def do_GET(self):
        self.calls.append((self.command, self.path, dict(self.headers), b""))
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    HubRecorder.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", HubRecorder.calls
    server.shutdown()
    server.server_close()


def test_upload_sends_exactly_the_listed_files(model_folder, hub, monkeypatch, capsys):
    endpoint, calls = hub
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    argv = ["publish", "--model", str(model_folder), "--repo-id", "org/tiny", "--private"]
    argv += ["--revision-note", "first tiny model", "--endpoint", endpoint]
    assert main(argv) == 0, capsys.readouterr()
    paths = [path for _, path, _, _ in calls]
    assert paths[0] == "/api/repos/create"
    assert paths[-1] == "/api/models/org/tiny/commit/main"
    create = json.loads(calls[0][3])
    assert (create["organization"], create["name"], create["visibility"]) == (
        "org",
        "tiny",
        "private",
    )
    assert calls[0][2]["authorization"] == "Bearer hf_test_token"
    lines = [json.loads(line) for line in calls[-1][3].decode().splitlines() if line]
    assert lines[0]["value"]["summary"] == "first tiny model"
    sent = {
        f["value"]["path"]: base64.b64decode(f["value"]["content"])
        for f in lines
        if f["key"] == "file"
    }
    expected = plan_upload(model_folder).files
    assert sorted(sent) == sorted(expected)
    for name, content in sent.items():
        assert content == (model_folder / name).read_bytes(), name
    assert not any(p.startswith("checkpoints") for p in sent)


def test_nothing_is_sent_when_something_is_refused(folder, hub, capsys):
    endpoint, calls = hub
    (folder / "pytorch_model.bin").write_bytes(b"x")
    argv = ["publish", "--model", str(folder), "--repo-id", "org/tiny", "--endpoint", endpoint]
    assert main(argv) == 1
    assert calls == []
    assert "REFUSED  pytorch_model.bin" in capsys.readouterr().out
