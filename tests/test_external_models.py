"""External models (``models.external``: dnalm.core.hub, dnalm.plan.external,
dnalm.modeling.external) on fixtures in the exact Hugging Face Hub layout
(tests/support/hub_fixtures.py): random weights, nothing downloaded, the Hub cache read with
HF_HUB_OFFLINE=1. Remote code runs only in a child process with its own HF_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dnalm.core import hub
from dnalm.core.errors import ConfigError, DnalmError, InputFormatError
from dnalm.plan import load
from dnalm.plan.plan import wildcards
from tests.support import hub_fixtures as hf
from tests.support.workflow_runner import deep_merge, demo_config

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hub")
    return {
        "nt": hf.nt_v1_folder(base / "nt_v1"),
        "remote": hf.remote_code_folder(base / "nt_v2", marker=base / "remote_marker"),
        "remote_marker": base / "remote_marker",
        "pickle": hf.pickle_only_folder(base / "pickle_only", base / "pickle_marker"),
        "pickle_marker": base / "pickle_marker",
        "base": base,
    }


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


# ---------------------------------------------------------------------------- the fixtures


def test_nt_v1_fixture_has_the_hub_files_and_tokenizer(fixtures):
    from transformers import AutoConfig, AutoTokenizer

    folder = fixtures["nt"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    vocab = (folder / "vocab.txt").read_text().split()
    assert len(vocab) == 6 + 4**6 + 5
    assert vocab[:3] == ["<unk>", "<pad>", "<mask>"]
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert type(tok).__name__ == "EsmTokenizer"
    assert tok.convert_ids_to_tokens(tok("ACGTACGTACGT")["input_ids"]) == [
        "<cls>", "ACGTAC", "GTACGT", "<eos>"
    ]  # fmt: skip
    cfg = AutoConfig.from_pretrained(str(folder))
    assert (cfg.model_type, cfg.position_embedding_type) == ("esm", "absolute")
    assert cfg.architectures == ["EsmForMaskedLM"]


def test_hub_id_resolves_offline_from_the_cache(fixtures, tmp_path, monkeypatch):
    home = tmp_path / "hf"
    snap = hf.hub_cache(home, "org/nt-tiny", fixtures["nt"], hf.REVISION)
    assert (home / "hub/models--org--nt-tiny/refs/main").read_text() == hf.REVISION
    assert (snap / "config.json").is_symlink()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    pinned = hub.external_model("nt", {"source": "org/nt-tiny", "revision": hf.REVISION})
    assert not pinned.local
    assert hub.snapshot_folder(pinned, download=True) == snap
    main = hub.external_model("nt", {"source": "org/nt-tiny"})
    assert hub.snapshot_folder(main) == snap  # refs/main
    other = hub.external_model("nt", {"source": "org/nt-tiny", "revision": "f" * 40})
    with pytest.raises(ConfigError, match=r"models\.external\.nt: org/nt-tiny at revision f{40} "
                       r"is not in the Hugging Face cache .*fetch_external_model"):  # fmt: skip
        hub.snapshot_folder(other, download=True)


def test_provenance_records_every_code_and_weight_file(fixtures):
    model = hub.external_model(
        "v2", {"source": str(fixtures["remote"]), "revision": hf.REVISION,
               "trust_remote_code": True}
    )  # fmt: skip
    record = hub.provenance(model, fixtures["remote"])
    assert record["files"]["code"] == hf.fixture_code_hashes(fixtures["remote"])
    assert set(record["files"]["weights"]) == {"model.safetensors"}
    assert {"config.json", "vocab.txt"} <= set(record["files"]["other"])
    hub.verify_snapshot(model, fixtures["remote"], record)  # unchanged: passes


def test_changed_code_file_is_refused_with_both_hashes(fixtures, tmp_path):
    folder = hf.remote_code_folder(tmp_path / "v2")
    model = hub.external_model(
        "v2", {"source": str(folder), "revision": hf.REVISION, "trust_remote_code": True}
    )
    record = hub.provenance(model, folder)
    old = record["files"]["code"]["modeling_esm.py"]
    with open(folder / "modeling_esm.py", "a") as fh:
        fh.write("\nimport os  # changed\n")
    new = hub.file_hashes(folder)["code"]["modeling_esm.py"]
    with pytest.raises(ConfigError) as err:
        hub.verify_snapshot(model, folder, record)
    assert f"has sha256 {new}" in str(err.value)
    assert f"sha256 {old} was recorded" in str(err.value)
    assert "models.external.v2" in str(err.value)
    assert "modeling_esm.py" in str(err.value)
    (folder / "extra.py").write_text("x = 1\n")
    (folder / "modeling_esm.py").write_text(hf.MODELING_MODULE.format(marker=""))
    with pytest.raises(ConfigError, match=r"code file\(s\) extra\.py .* were not there"):
        hub.verify_snapshot(model, folder, record)


# ------------------------------------------------------------------------- the plan's checks


def _plan(over: dict):
    return load(demo_config(**over))


def test_remote_code_needs_a_full_commit_hash(fixtures):
    for revision in (None, "main", "abc123"):
        entry = {"source": str(fixtures["remote"]), "trust_remote_code": True}
        if revision:
            entry["revision"] = revision
        with pytest.raises(ConfigError, match=r"models\.external\.v2: trust_remote_code is true "
                           r"but the entry has .*40-hex commit"):  # fmt: skip
            _plan({"models": {"external": {"v2": entry}}})


def test_a_hub_entry_without_its_commit_names_the_key_and_where_to_find_it():
    """A hub id with trust_remote_code and revision null (what a shipped config leaves to the
    user): the error names the key to set and the page of the repository's commits."""
    entry = {"source": "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species",
             "revision": None, "trust_remote_code": True}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        _plan({"models": {"external": {"nt50m": entry}}})
    msg = str(err.value)
    assert "set models.external.nt50m.revision to the full 40-hex commit hash" in msg
    url = "https://huggingface.co/InstaDeepAI/nucleotide-transformer-v2-50m-multi-species"
    assert f"{url}/commits/main" in msg


def test_auto_map_without_the_opt_in_is_refused(fixtures):
    marker = fixtures["remote_marker"]
    message = (
        r"models\.external\.v2: .*config\.json asks for the model's own code through auto_map "
        r"\(esm_config\.py, modeling_esm\.py\)"
    )
    with pytest.raises(ConfigError, match=message):
        _plan({"models": {"external": {"v2": {"source": str(fixtures["remote"])}}}})
    assert not marker.exists()


def test_pickle_only_folder_is_refused_and_never_read(fixtures):
    with pytest.raises(InputFormatError, match=r"models\.external\.pk: .* has only pickle "
                       r"weights \(pytorch_model\.bin\)"):  # fmt: skip
        _plan({"models": {"external": {"pk": {"source": str(fixtures["pickle"])}}}})
    assert not fixtures["pickle_marker"].exists()


def test_external_entries_in_runs_and_probes(fixtures):
    over = {
        "models": {"external": {"nt": {"source": str(fixtures["nt"])}}},
        "finetune": {"runs": {"nt_frozen": {"model": "nt", "regime": "frozen",
                                            "tasks": ["species_fragments"]}}},
        "probe": {"external": {"nt_probe": {"model": "nt"}}},
    }  # fmt: skip
    plan = _plan(over)
    record = "resources/external/nt/provenance.json"
    assert plan.finetune_inputs(wildcards(run="nt_frozen", ftask="species_fragments")) == {
        "provenance": record,
        "task": "results/tasks/species_fragments/data.tsv",
    }
    assert plan.finetune_external("nt_frozen")["entry"]["source"] == str(fixtures["nt"])
    assert plan.finetune_external("gpt_nucleotide_frozen") == {}
    assert plan.embed_inputs(wildcards(eregime="external", ename="nt_probe"))["provenance"] == (
        record
    )
    params = plan.probe_external_params("nt_probe")
    assert params["entry"]["name"] == "nt"
    assert params["record"] == record
    assert "results/finetune/species_fragments/nt_frozen/metrics.json" in plan.finetune_results(
        wildcards(ftask="species_fragments")
    )


@pytest.mark.parametrize(
    ("over", "message"),
    [
        (
            {"generate": {"models": ["nt"]}},
            r"generate\.models: models\.external\.nt has objective 'mlm', which cannot be used "
            r"for generate \(needs objective gpt\)",
        ),
        (
            {
                "pretrain": {
                    "models": {"nt": {"objective": "mlm", "tokenizer": "kmer6", "preset": "tiny"}}
                }
            },
            r"models\.external: \['nt'\] are also names under pretrain\.models",
        ),
    ],
)
def test_what_an_external_model_cannot_do_is_refused(fixtures, over, message):
    base = {"models": {"external": {"nt": {"source": str(fixtures["nt"])}}}}
    with pytest.raises(DnalmError, match=message):
        _plan(deep_merge(base, over))


def test_revision_and_objective_are_checked_by_the_schema(fixtures):
    with pytest.raises(ConfigError, match="objective"):
        _plan({"models": {"external": {"nt": {"source": str(fixtures["nt"]),
                                              "objective": "seq2seq"}}}})  # fmt: skip


# ----------------------------------------------------------------- loading (remote code)

CHILD = """
import json, sys
from pathlib import Path
from dnalm.core import hub
from dnalm.core.errors import DnalmError
from dnalm.modeling.external import load_external
spec, record = json.loads(sys.argv[1]), sys.argv[2]
try:
    loaded = load_external(spec, record, device="cpu")
except DnalmError as err:
    print(json.dumps({"error": str(err)}))
else:
    print(json.dumps({"class": type(loaded.model).__name__,
                      "tokenizer": type(loaded.tokenizer.hf).__name__,
                      "bos": loaded.tokenizer.bos_id}))
"""


def _child(spec: dict, record: Path, home: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": f"{SCRIPTS}{os.pathsep}{REPO}",
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec), str(record)],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_changed_remote_code_is_refused_before_it_is_imported(tmp_path):
    """The fetch recorded the code's hashes; after a change the load stops before
    transformers imports the module (its import writes the marker); unchanged, the same
    load runs the module (the marker appears), so the marker does show an import."""
    home, marker = tmp_path / "hf", tmp_path / "marker"
    folder = hf.remote_code_folder(tmp_path / "src", marker=marker)
    snap = hf.hub_cache(home, "org/nt-v2-tiny", folder, hf.REVISION)
    spec = {"name": "v2", "source": "org/nt-v2-tiny", "revision": hf.REVISION,
            "objective": "mlm", "trust_remote_code": True}  # fmt: skip
    model = hub.external_model("v2", spec)
    record = hub.write_provenance(tmp_path / "provenance.json", hub.provenance(model, snap))
    blob = (snap / "modeling_esm.py").resolve()
    original = blob.read_text()
    blob.write_text(original.replace("class GatedMLP", "# edited\nclass GatedMLP"))
    out = _child(spec, record, home)
    assert "modeling_esm.py" in out["error"]
    assert "was recorded when the model was fetched" in (out["error"])
    assert not marker.exists()
    blob.write_text(original)
    out = _child(spec, record, home)
    assert out == {"class": "EsmForMaskedLM", "tokenizer": "EsmTokenizer", "bos": 3}
    assert marker.read_text() == "imported"


# ------------------------------------------------------------------------------ fine-tuning


def _species_table(n: int = 48, width: int = 30, seed: int = 0):
    """A two-class table: class a is GC-rich, class b AT-rich (so a probe can tell them)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "a" if i % 2 else "b"
        p = [0.1, 0.4, 0.4, 0.1] if label == "a" else [0.4, 0.1, 0.1, 0.4]
        seq = "".join(rng.choice(list("ACGT"), size=width, p=p))
        split = "train" if i < n * 0.6 else "validation" if i < n * 0.8 else "test"
        rows.append({"id": f"s{i}", "sequence": seq, "label": label, "split": split})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("regime", ["frozen", "lora"])
def test_finetune_an_external_native_esm(fixtures, tmp_path, regime):
    """The NT-v1-shaped folder fine-tuned through its entry and record: its own EsmTokenizer
    (<cls> first), the backbone frozen (only the head trains) or with LoRA on the query and
    value projections found by name; the fine-tuned folder loads back with its tokenizer."""
    from transformers import AutoTokenizer

    from dnalm.finetuning.finetune import finetune
    from dnalm.modeling.loader import load_model_folder

    spec = {"source": str(fixtures["nt"])}
    model = hub.external_model("nt", spec)
    record = hub.write_provenance(tmp_path / "prov.json", hub.provenance(model, model.folder))
    out = tmp_path / "run"
    metrics = finetune(
        "unused",
        _species_table(),
        out,
        {"regime": regime, "max_epochs": 1, "batch_size": 8, "device": "cpu", "lora_r": 2},
        run_name=f"nt_{regime}",
        model_name="nt",
        task_name="toy",
        external={"entry": model.spec(), "record": str(record)},
    )
    assert metrics["regime"] == regime
    assert metrics["backbone"] == "nt"
    assert metrics["tokenizer"] == "EsmTokenizer"
    assert metrics["objective"] == "mlm"
    head = 8 * 2 + 2  # hidden size 8 -> 2 classes
    if regime == "frozen":
        assert metrics["trainable_params"] == head
    else:  # rank-2 adapters (8 -> 2 -> 8) on query and value of the one layer
        assert metrics["trainable_params"] == head + 2 * 2 * (8 + 8)
        assert metrics["lora_layers_merged"] == 2
    assert 0.0 <= metrics["metrics"]["accuracy"] <= 1.0
    folder = out / "model"
    assert (folder / "vocab.txt").read_text() == (fixtures["nt"] / "vocab.txt").read_text()
    assert type(AutoTokenizer.from_pretrained(str(folder))).__name__ == "EsmTokenizer"
    assert load_model_folder(folder, kind="finetuned").finetune["labels"] == ["a", "b"]


def test_a_probed_fine_tuned_external_model_needs_its_before_embedding(fixtures):
    over = {
        "models": {"external": {"nt": {"source": str(fixtures["nt"])}}},
        "finetune": {"runs": {"nt_frozen": {"model": "nt", "regime": "frozen",
                                            "tasks": ["species_fragments"]}}},
        "probe": {"finetuned": ["nt_frozen"]},
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"probe\.finetuned: run 'nt_frozen' fine-tunes the "
                       r"external model models\.external\.nt, whose embedding before"):  # fmt: skip
        _plan(over)
    plan = _plan(deep_merge(over, {"probe": {"external": {"nt_before": {"model": "nt"}}}}))
    assert plan.umap_before("nt_frozen") == "results/probe/umap/external/nt_before.tsv"
    assert plan.umap_before("mlm_kmer6_partial") == "results/probe/umap/pretrained/mlm_kmer6.tsv"


def test_lora_targets_are_found_by_name_or_refused_naming_the_layers():
    from torch import nn

    from dnalm.modeling.external import lora_targets

    class Attn(nn.Module):
        def __init__(self, names):
            super().__init__()
            for n in names:
                setattr(self, n, nn.Linear(4, 4))

    assert lora_targets(Attn(["q_proj", "k_proj", "v_proj"]), "w") == ["q_proj", "v_proj"]
    assert lora_targets(Attn(["query", "key", "value"]), "w") == ["query", "value"]
    with pytest.raises(ConfigError, match=r"finetune\.runs\.r: no attention projections LoRA "
                       r"knows in Attn \(its linear layers: mix, mlp\)"):  # fmt: skip
        lora_targets(Attn(["mix", "mlp"]), "finetune.runs.r")


CHILD_USES = """
import json, sys
import pandas as pd
from dnalm.evaluation.embed import embed_table, load_embeddings
from dnalm.finetuning.finetune import finetune
from tests.test_external_models import _species_table
external = {"entry": json.loads(sys.argv[1]), "record": sys.argv[2]}
out = sys.argv[3]
table = _species_table()
embed_table("unused", table, out + "/emb.npz", batch_size=16, external=external)
emb = load_embeddings(out + "/emb.npz")
metrics = finetune("unused", table, out + "/run", {"regime": "lora", "max_epochs": 1,
                   "batch_size": 8, "device": "cpu", "lora_r": 2}, model_name="v2",
                   external=external)
print(json.dumps({"shape": list(emb.embeddings.shape), "trust": emb.meta["trust_remote_code"],
                  "lora": metrics["lora_layers_merged"], "tokenizer": metrics["tokenizer"]}))
"""


def test_pinned_remote_code_model_is_embedded_and_fine_tuned(tmp_path):
    """The NT-v2-shaped fixture from the Hub cache, opted in and pinned: the probe's embedding
    and a LoRA fine-tuning run both load its own code (LoRA on its query and value layers,
    found by name in the loaded module)."""
    home = tmp_path / "hf"
    folder = hf.remote_code_folder(tmp_path / "src")
    snap = hf.hub_cache(home, "org/nt-v2-tiny", folder, hf.REVISION)
    spec = {"name": "v2", "source": "org/nt-v2-tiny", "revision": hf.REVISION,
            "objective": "mlm", "trust_remote_code": True}  # fmt: skip
    model = hub.external_model("v2", spec)
    record = hub.write_provenance(tmp_path / "provenance.json", hub.provenance(model, snap))
    env = {**os.environ, "PYTHONPATH": f"{SCRIPTS}{os.pathsep}{REPO}", "HF_HOME": str(home),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_USES, json.dumps(spec), str(record), str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"shape": [48, 8], "trust": True, "lora": 2, "tokenizer": "EsmTokenizer"}


def test_unpinned_remote_code_of_the_older_probe_form_is_reported(fixtures):
    """probe.external.X {model, trust_remote_code: true} keeps working, and the run's log
    (Plan.notes, printed by common.smk) says that its code is unpinned and how to pin it."""
    plan = _plan({"probe": {"external": {"old": {"model": "org/m", "trust_remote_code": True}}}})
    notes = [n for n in plan.notes() if n.startswith("probe.external.old:")]
    assert len(notes) == 1
    assert "unpinned and unrecorded" in notes[0]
    assert "declare it under models.external with a 40-hex revision" in notes[0]
    plan = _plan({"probe": {"external": {"old": {"model": "org/m"}}}})
    assert not [n for n in plan.notes() if n.startswith("probe.external")]


def test_a_probed_fine_tuned_remote_code_run_is_planned_with_its_record(fixtures):
    """probe.finetuned of a run on an entry with its own code: its embedding reads the
    entry's provenance record (the fine-tuned folder's code is checked against it) and the
    embed rule is told which entry the folder was fine-tuned from."""
    remote = {"source": str(fixtures["remote"]), "revision": hf.REVISION,
              "trust_remote_code": True}  # fmt: skip
    over = {
        "models": {"external": {"v2": remote}},
        "finetune": {"runs": {"v2_frozen": {"model": "v2", "regime": "frozen",
                                            "tasks": ["species_fragments"]}}},
        "probe": {"finetuned": ["v2_frozen"], "external": {"v2_before": {"model": "v2"}}},
    }  # fmt: skip
    plan = _plan(over)
    inputs = plan.embed_inputs(wildcards(eregime="fine-tuned", ename="v2_frozen"))
    assert inputs["provenance"] == "resources/external/v2/provenance.json"
    assert plan.embed_external("fine-tuned", "v2_frozen") == {
        "finetuned_from": plan.external["v2"].spec()
    }
    assert plan.umap_before("v2_frozen") == "results/probe/umap/external/v2_before.tsv"
    # runs on our own models, and external entries without code of their own: unchanged
    assert plan.embed_external("fine-tuned", "mlm_kmer6_partial") == {}
    assert "provenance" not in plan.embed_inputs(
        wildcards(eregime="fine-tuned", ename="mlm_kmer6_partial")
    )


CHILD_FINETUNED = """
import json, sys
from dnalm.core.errors import DnalmError
from dnalm.evaluation.embed import embed_table, load_embeddings
from dnalm.finetuning.finetune import finetune
from tests.test_external_models import _species_table
external = {"entry": json.loads(sys.argv[1]), "record": sys.argv[2]}
out, step = sys.argv[3], sys.argv[4]
table = _species_table()
if step == "finetune":
    finetune("unused", table, out + "/run", {"regime": "frozen", "max_epochs": 1,
             "batch_size": 8, "device": "cpu"}, model_name="v2", external=external)
    print(json.dumps({"done": True}))
else:
    try:
        embed_table(out + "/run/model", table, out + "/emb.npz", batch_size=16,
                    regime="fine-tuned", remote_code=external)
    except DnalmError as err:
        print(json.dumps({"error": str(err)}))
    else:
        emb = load_embeddings(out + "/emb.npz")
        print(json.dumps({"shape": list(emb.embeddings.shape),
                          "trust": emb.meta["trust_remote_code"]}))
"""


def test_a_fine_tuned_remote_code_model_carries_its_pinned_code(tmp_path):
    """A run fine-tuned from an entry with its own code: the folder holds exactly the
    entry's recorded code files (listed with their sha256 in finetune.json) and is embedded
    with that code; a code file changed after fine-tuning stops the embedding, naming it and
    both hashes, before the module is imported (its import writes the marker)."""
    home, marker = tmp_path / "hf", tmp_path / "marker"
    folder = hf.remote_code_folder(tmp_path / "src", marker=marker)
    snap = hf.hub_cache(home, "org/nt-v2-tiny", folder, hf.REVISION)
    spec = {"name": "v2", "source": "org/nt-v2-tiny", "revision": hf.REVISION,
            "objective": "mlm", "trust_remote_code": True}  # fmt: skip
    model = hub.external_model("v2", spec)
    record = hub.write_provenance(tmp_path / "provenance.json", hub.provenance(model, snap))
    code = json.loads(record.read_text())["files"]["code"]

    def child(step: str) -> dict:
        env = {**os.environ, "PYTHONPATH": f"{SCRIPTS}{os.pathsep}{REPO}",
               "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}  # fmt: skip
        env.pop("HF_HUB_CACHE", None)
        proc = subprocess.run(
            [sys.executable, "-c", CHILD_FINETUNED, json.dumps(spec), str(record),
             str(tmp_path), step],
            capture_output=True, text=True, env=env, cwd=REPO, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    assert child("finetune") == {"done": True}
    saved = tmp_path / "run" / "model"
    assert sorted(p.name for p in saved.glob("*.py")) == sorted(hf.CODE_FILES)
    assert json.loads((saved / "finetune.json").read_text())["remote_code"] == code
    assert (
        json.loads((saved / "config.json").read_text())["auto_map"]["AutoModelForMaskedLM"]
        == (hf.AUTO_MAP["AutoModelForMaskedLM"])
    )
    assert child("embed") == {"shape": [48, 8], "trust": True}
    marker.unlink()
    edited = saved / "modeling_esm.py"
    edited.write_text(edited.read_text().replace("class GatedMLP", "# edited\nclass GatedMLP"))
    out = child("embed")
    assert str(edited) in out["error"]
    assert code["modeling_esm.py"] in out["error"]
    assert "fine-tuned from it" in out["error"]
    assert not marker.exists()


@pytest.mark.parametrize("model_type", ["GPN", "ConvNet"])
def test_a_model_type_only_its_own_package_registers_is_refused_naming_it(tmp_path, model_type):
    """GPN's Hub folders (songlab/gpn-brassicales) have no code of their own: `import
    gpn.model` registers their model type. The loader imports no such package, so the entry
    is refused before anything is loaded, naming the type and the package."""
    from dnalm.modeling.external import prepare

    folder = hf.gpn_folder(tmp_path / "gpn", model_type=model_type)
    spec = {"name": "gpn", "source": str(folder), "objective": "mlm"}
    model = hub.external_model("gpn", spec)
    _plan({"models": {"external": {"gpn": {"source": str(folder)}}}})  # the folder's files pass
    record = hub.write_provenance(tmp_path / "provenance.json", hub.provenance(model, folder))
    with pytest.raises(InputFormatError) as err:
        prepare(spec, record)
    msg = str(err.value)
    assert msg.startswith("models.external.gpn: ")
    assert f"has model_type {model_type!r}, which transformers does not know" in msg
    assert "the Python package 'gpn' when `import gpn.model` runs" in msg


def test_the_nt_v2_config_shape_loads_as_a_masked_lm_with_its_own_code(tmp_path):
    """NT-v2-50M's config.json (auto_map without AutoModel, three architectures): objective
    mlm loads the repository's EsmForMaskedLM (its import writes the marker); objective
    encoder would get transformers' own EsmModel, which lacks NT-v2's gated MLP, and is
    refused naming the objective and the auto_map, before anything is imported."""
    home, marker = tmp_path / "hf", tmp_path / "marker"
    folder = hf.remote_code_folder(tmp_path / "src", marker=marker, auto_map=hf.NT_V2_AUTO_MAP,
                                   architectures=hf.NT_V2_ARCHITECTURES)  # fmt: skip
    snap = hf.hub_cache(home, "org/nt-v2-50m-shape", folder, hf.REVISION)
    for objective in ("mlm", "encoder"):
        spec = {"name": "nt50m", "source": "org/nt-v2-50m-shape", "revision": hf.REVISION,
                "objective": objective, "trust_remote_code": True}  # fmt: skip
        model = hub.external_model("nt50m", spec)
        record = hub.write_provenance(tmp_path / f"{objective}.json", hub.provenance(model, snap))
        if marker.exists():
            marker.unlink()
        out = _child(spec, record, home)
        if objective == "mlm":
            assert out == {"class": "EsmForMaskedLM", "tokenizer": "EsmTokenizer", "bos": 3}
            assert marker.read_text() == "imported"
        else:
            assert out["error"].startswith(
                "models.external.nt50m.objective: 'encoder' loads with AutoModel, which the "
                "auto_map of"
            )
            assert "AutoModelForMaskedLM, AutoModelForSequenceClassification" in out["error"]
            assert not marker.exists()


def test_the_dnabert2_files_are_refused_for_their_pickle_weights(tmp_path):
    """DNABERT-2-117M's repository has only pytorch_model.bin: refused at DAG build, opted
    in or not, before any of its code or the pickle runs (both would write the marker)."""
    marker = tmp_path / "marker"
    folder = hf.dnabert2_folder(tmp_path / "dnabert2", marker)
    for extra in ({}, {"trust_remote_code": True, "revision": hf.REVISION}):
        entry = {"source": str(folder), **extra}
        with pytest.raises(InputFormatError, match=r"models\.external\.dnabert2: .* has only "
                           r"pickle weights \(pytorch_model\.bin\)"):  # fmt: skip
            _plan({"models": {"external": {"dnabert2": entry}}})
    assert not marker.exists()


def test_external_shapes_take_the_layer_probe(fixtures, tmp_path):
    """Every layer and pooling of the Hub-shaped fixtures (native ESM, NT-v2-shaped remote
    code, BPE BERT, native causal), from one pass; 'cls' on the causal one is refused naming
    probe.pooling."""
    from dnalm.evaluation.embed import embed_table
    from dnalm.evaluation.embeddings import load_layer_embeddings

    table = _species_table(n=8)
    every = ["mean", "cls", "last", "max"]
    cases = {
        "nt": (fixtures["nt"], False, every, 2),
        "remote": (fixtures["remote"], True, every, 2),
        "bpe": (hf.bert_bpe_folder(tmp_path / "bpe"), False, every, 3),
        "causal": (hf.causal_folder(tmp_path / "causal"), False, ["mean", "last", "max"], 3),
    }
    for name, (folder, trust, poolings, n_states) in cases.items():
        out = tmp_path / f"{name}_layers.npz"
        embed_table(
            folder, table, tmp_path / f"{name}.npz", device="cpu", trust_remote_code=trust,
            layers="all", poolings=poolings, layers_out=out,
        )  # fmt: skip
        grid = load_layer_embeddings(out)
        assert grid.layers.tolist() == list(range(n_states)), name
        assert grid.embeddings.shape[:3] == (8, n_states, len(poolings)), name
    with pytest.raises(ConfigError, match=r"probe\.pooling: .*causal.* is a causal model"):
        embed_table(
            cases["causal"][0], table, tmp_path / "x.npz", device="cpu", layers="all",
            poolings=["mean", "cls"], layers_out=tmp_path / "x_layers.npz",
        )  # fmt: skip
