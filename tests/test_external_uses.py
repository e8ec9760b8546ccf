"""External models (``models.external``) where a pretrained model is used: fine-tuning in
every regime on classification and per-base tasks, zero-shot VEP, generation and the command
line, on the random-weight fixtures of tests/support/hub_fixtures.py (a BERT with
DNABERT-2's BPE tokenization, a character-level GPT-2, the NT-v1 and NT-v2 shapes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

from dnalm.core import hub
from dnalm.core.errors import ConfigError
from dnalm.plan import load
from tests.support import hub_fixtures as hf
from tests.support.workflow_runner import demo_config
from tests.test_external_models import _species_table
from tests.test_finetuning_finetune import per_base_table

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ext")
    return {
        "bert": hf.bert_bpe_folder(base / "bert_bpe"),
        "gpt": hf.causal_folder(base / "gpt_char"),
        "nt": hf.nt_v1_folder(base / "nt_v1"),
        "base": base,
    }


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


def _external(folder: Path, name: str, tmp_path: Path, **entry) -> dict:
    """{"entry", "record"} of a local fixture folder, as rule finetune passes them."""
    model = hub.external_model(name, {"source": str(folder), **entry})
    record = hub.write_provenance(tmp_path / f"{name}.json", hub.provenance(model, model.folder))
    return {"entry": model.spec(), "record": str(record)}


# ---------------------------------------------------------------------------- the fixtures


def test_bpe_bert_fixture_has_dnabert2_tokenization(folders):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    folder = folders["bert"]
    spec = json.loads((folder / "tokenizer.json").read_text())
    assert spec["model"]["type"] == "BPE"
    assert spec["model"]["merges"]  # learnt merges: tokens of several nucleotides
    tok = AutoTokenizer.from_pretrained(str(folder))
    pieces = tok.convert_ids_to_tokens(tok("ACGTACGTTTGAACGT")["input_ids"])
    assert (pieces[0], pieces[-1]) == ("[CLS]", "[SEP]")
    assert "".join(pieces[1:-1]) == "ACGTACGTTTGAACGT"
    assert max(len(p) for p in pieces[1:-1]) > 1
    model = AutoModelForMaskedLM.from_pretrained(str(folder))
    assert type(model).__name__ == "BertForMaskedLM"
    assert model.num_parameters() < 5000


def test_causal_fixture_is_character_level(folders):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folders["gpt"]))
    assert tok.convert_ids_to_tokens(tok("ACGT")["input_ids"]) == ["<s>", "A", "C", "G", "T"]
    model = AutoModelForCausalLM.from_pretrained(str(folders["gpt"]))
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert model.num_parameters() < 5000


# ------------------------------------------------------------------------------ the plan


def test_every_regime_and_per_base_tasks_are_planned_for_external_models(folders):
    runs = {
        f"bert_{regime}": {"model": "bert", "regime": regime, "freeze_layers": 1,
                           "tasks": ["species_fragments", "tf_binding"]}
        for regime in hub.FINETUNE_REGIMES
    }  # fmt: skip
    plan = load(
        demo_config(
            models={"external": {"bert": {"source": str(folders["bert"])}}},
            finetune={"runs": runs},
        )
    )
    assert set(hub.FINETUNE_REGIMES) == {"frozen", "partial", "full", "lora"}
    for run in runs:
        assert plan.run_tasks(run) == ["species_fragments", "tf_binding"]
        assert plan.finetune_external(run)["entry"]["source"] == str(folders["bert"])


# ------------------------------------------------------------------------------ fine-tuning


def _count(modules) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.mark.parametrize(
    ("fixture", "regime", "task"),
    [
        ("bert", "partial", "classification"),
        ("bert", "full", "per_base"),
        ("nt", "partial", "per_base"),
        ("bert", "lora", "per_base"),
    ],
)
def test_finetune_external_in_every_regime(folders, tmp_path, fixture, regime, task):
    """`partial` freezes the embeddings and the first freeze_layers blocks found in the
    loaded model, `full` trains it all; per-base tasks map each base to the token of the
    external tokenizer that covers it (BPE tokens of several bases included)."""
    from transformers import AutoModelForMaskedLM

    from dnalm.finetuning.finetune import finetune
    from dnalm.modeling.loader import load_model_folder

    table = _species_table() if task == "classification" else per_base_table(n=40, length=30)
    cfg = {"regime": regime, "max_epochs": 1, "batch_size": 8, "device": "cpu",
           "freeze_layers": 1, "lora_r": 2, "head_hidden": 4}  # fmt: skip
    out = tmp_path / "run"
    metrics = finetune(
        "unused", table, out, cfg, run_name=f"{fixture}_{regime}", model_name=fixture,
        task_name="toy", external=_external(folders[fixture], fixture, tmp_path),
    )  # fmt: skip
    assert metrics["regime"] == regime
    assert metrics["kind"] == ("classification" if task == "classification" else
                               "per_base_regression")  # fmt: skip
    backbone = AutoModelForMaskedLM.from_pretrained(str(folders[fixture])).base_model
    emb = _count(m for m in backbone.modules() if isinstance(m, nn.Embedding))
    blocks = backbone.encoder.layer
    head = metrics["trainable_params"] - (
        {"full": _count([backbone]), "partial": _count([backbone]) - emb - _count([blocks[0]])}
    ).get(regime, 0)
    if regime == "lora":
        assert metrics["lora_layers_merged"] == 2 * len(blocks)
    else:
        assert 0 < head < 400  # the task head only is left
    if task == "per_base":
        assert "bases_uncovered_test" in metrics
        assert metrics["bases_uncovered_test"] == 0  # every base has its token
    reloaded = load_model_folder(out / "model", kind="finetuned")
    assert reloaded.finetune["kind"] == metrics["kind"]


def test_partial_without_a_list_of_blocks_names_the_run():
    from dnalm.modeling.task_model import transformer_blocks

    message = (
        r"finetune\.runs\.r: cannot find the list of transformer blocks of Sequential "
        r".*use regime frozen, full or lora"
    )
    with pytest.raises(ConfigError, match=message):
        transformer_blocks(nn.Sequential(nn.Linear(2, 2)), "finetune.runs.r")


CHILD_PARTIAL = """
import json, sys
from dnalm.finetuning.finetune import finetune
from tests.test_finetuning_finetune import per_base_table
external = {"entry": json.loads(sys.argv[1]), "record": sys.argv[2]}
out = {}
for regime in ("frozen", "partial"):
    metrics = finetune("unused", per_base_table(n=40, length=30), sys.argv[3] + regime,
                       {"regime": regime, "freeze_layers": 1, "max_epochs": 1, "batch_size": 8,
                        "device": "cpu", "head_hidden": 4}, model_name="v2", external=external)
    out[regime] = metrics["trainable_params"]
print(json.dumps(out))
"""


def test_partial_finds_the_blocks_of_a_remote_code_model(tmp_path):
    """NT-v2's shape keeps its blocks in ``esm.layer`` (no usual path): partial fine-tuning
    finds them as the model's list of like modules and freezes the first, per-base."""
    home = tmp_path / "hf"
    snap = hf.hub_cache(home, "org/nt-v2-tiny", hf.remote_code_folder(tmp_path / "src"),
                        hf.REVISION)  # fmt: skip
    spec = {"name": "v2", "source": "org/nt-v2-tiny", "revision": hf.REVISION,
            "objective": "mlm", "trust_remote_code": True}  # fmt: skip
    model = hub.external_model("v2", spec)
    record = hub.write_provenance(tmp_path / "provenance.json", hub.provenance(model, snap))
    env = {**os.environ, "PYTHONPATH": f"{SCRIPTS}{os.pathsep}{REPO}", "HF_HOME": str(home),
           "HF_HUB_OFFLINE": "1"}  # fmt: skip
    env.pop("HF_HUB_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_PARTIAL, json.dumps(spec), str(record), str(tmp_path / "r")],
        capture_output=True, text=True, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # frozen: the two embeddings and the one block; trained besides the head: the final
    # norm (weight and bias of hidden size 8)
    assert out["partial"] - out["frozen"] == 2 * 8


# --------------------------------------------------------- scoring, VEP, generation, CLI

CONTIG = "ATGGCGTACGTTAGCCGATCGATCGGCTAGCTAGGATCCGATCGTAGCTAGCTAGGCTAACGTAGCTTGA" * 2
HEAD = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def _config(tmp_path: Path, folders: dict, **entries) -> Path:
    """A workflow config file declaring the fixtures as models.external entries."""
    import yaml

    ext = {"bert": {"source": str(folders["bert"])},
           "gpt": {"source": str(folders["gpt"]), "objective": "gpt"}, **entries}  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"models": {"external": ext}}))
    return path


def _vep(tmp_path: Path, argv_model: list[str], ref: str, alt: str, contig: str) -> float:
    from dnalm.cli import main

    (tmp_path / "g.fa").write_text(f">c1\n{contig}\n")
    (tmp_path / "v.vcf").write_text(HEAD + f"c1\t40\tsnv\t{ref}\t{alt}\t.\t.\t.\n")
    out = tmp_path / f"{argv_model[-1].replace('/', '_')}_{ref}{alt}.tsv"
    argv = ["vep", *argv_model, "--vcf", str(tmp_path / "v.vcf"), "--fasta",
            str(tmp_path / "g.fa"), "--out", str(out), "--window", "32"]  # fmt: skip
    assert main(argv) == 0
    import pandas as pd

    return float(pd.read_csv(out, sep="\t")["score"].iloc[0])


@pytest.mark.parametrize("name", ["bert", "gpt"])
def test_vep_scores_with_an_external_entry_from_the_command_line(folders, tmp_path, name):
    """``dnalm vep --external NAME --config FILE``: the masked marginal of the BPE BERT (the
    BPE tokens the SNV changes masked), the log-likelihood ratio of the causal one; a score
    changes sign when REF and ALT are swapped (the genome carrying ALT)."""
    cfg = _config(tmp_path, folders)
    ref = CONTIG[39]
    alt = "A" if ref != "A" else "C"
    with_alt = CONTIG[:39] + alt + CONTIG[40:]
    argv = ["--external", name, "--config", str(cfg)]
    forward = _vep(tmp_path, argv, ref, alt, CONTIG)
    backward = _vep(tmp_path, argv, alt, ref, with_alt)
    assert forward != 0.0
    assert backward == pytest.approx(-forward, abs=1e-5)


def test_score_and_generate_with_external_models(folders, tmp_path, capsys):
    """score and generate take an external entry (``--external``) or the external folder
    (``--model``: a folder without code of its own); generation from a masked entry is
    refused."""
    import pandas as pd

    from dnalm.cli import main

    cfg = _config(tmp_path, folders)
    fa = tmp_path / "in.fa"
    fa.write_text(f">s1\n{CONTIG[:40]}\n")
    for argv_model, out in ((["--external", "gpt", "--config", str(cfg)], "a.tsv"),
                            (["--model", str(folders["gpt"])], "b.tsv")):  # fmt: skip
        argv = ["score", *argv_model, "--fasta", str(fa), "--out", str(tmp_path / out)]
        assert main(argv) == 0
    a, b = (pd.read_csv(tmp_path / f"{x}.totals.tsv", sep="\t") for x in "ab")
    assert a["n_tokens"].iloc[0] == 40  # one token a nucleotide, after <s>
    # the folder as a model folder: its eos token ends the sequence ([EOS] of a CDS)
    assert b["n_tokens"].iloc[0] == 41
    assert a["log_likelihood"].iloc[0] > b["log_likelihood"].iloc[0]
    capsys.readouterr()
    argv = ["generate", "--external", "gpt", "--config", str(cfg), "--prefix", "ATG", "-n",
            "2", "--max-new-tokens", "12", "--seed", "1"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.split()
    seqs = [x for x in lines if not x.startswith((">", "prefix="))]
    assert len(seqs) == 2
    assert all(s.startswith("ATG") and set(s) <= set("ACGTN") and len(s) > 3 for s in seqs)
    argv = ["next", "--external", "bert", "--config", str(cfg), "--prefix", "ATG"]
    assert main(argv) == 2
    assert "causal" in capsys.readouterr().err


def test_command_line_refuses_remote_code_it_cannot_pin(folders, tmp_path, capsys):
    """--external on a remote-code entry: without a 40-hex revision refused by the entry's
    check; pinned but never fetched by the workflow (no record of its code's hashes here)
    refused too, naming the record to make. Nothing of its code runs."""
    from dnalm.cli import main

    marker = tmp_path / "marker"
    remote = hf.remote_code_folder(tmp_path / "v2", marker=marker)
    unpinned = {"source": str(remote), "trust_remote_code": True}
    pinned = {**unpinned, "revision": hf.REVISION}
    cfg = _config(tmp_path, folders, v2=unpinned, v2p=pinned)
    fa = tmp_path / "in.fa"
    fa.write_text(f">s1\n{CONTIG[:30]}\n")
    for name, message in (
        ("v2", "models.external.v2: trust_remote_code is true but the entry has"),
        ("v2p", "resources/external/v2p/provenance.json is missing here"),
    ):
        argv = ["score", "--external", name, "--config", str(cfg), "--fasta", str(fa),
                "--out", str(tmp_path / "o.tsv")]  # fmt: skip
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "o.tsv").exists()
    argv = ["score", "--external", "nope", "--config", str(cfg), "--fasta", str(fa), "--out",
            str(tmp_path / "o.tsv")]  # fmt: skip
    assert main(argv) == 2
    assert "has no models.external.nope (entries: bert, gpt, v2, v2p)" in capsys.readouterr().err


# ------------------------------------------------------------- VEP and generation: the plan


def test_vep_and_generation_plan_external_entries(folders):
    """vep.models may name a masked or causal entry, generate.models a causal one; the rules
    read its provenance record instead of a model folder and get the entry as `external`."""
    from dnalm.plan.plan import wildcards

    ext = {"bert": {"source": str(folders["bert"])},
           "gpt": {"source": str(folders["gpt"]), "objective": "gpt"}}  # fmt: skip
    generate = {"models": ["gpt"], "reference_model": "gpt_nucleotide"}
    plan = load(
        demo_config(models={"external": ext}, vep={"models": ["bert", "gpt"]}, generate=generate)
    )
    assert plan.vep_models() == ["bert", "gpt"]
    assert plan.generate_models() == ["gpt"]
    inputs = plan.vep_score_inputs(wildcards(sample="spyogenes", model="bert"))
    assert inputs["provenance"] == "resources/external/bert/provenance.json"
    assert "weights" not in inputs
    assert plan.generate_inputs(wildcards(model="gpt"))["provenance"] == (
        "resources/external/gpt/provenance.json"
    )
    assert plan.model_external("gpt")["entry"]["objective"] == "gpt"
    assert plan.model_external("gpt_nucleotide") == {}
    assert plan.generate_unit("gpt") == 1
    assert plan.generate_corpus("gpt") == plan.generate_corpus("gpt_nucleotide")


def test_an_encoder_entry_cannot_score_variants(folders):
    """(Generation from a masked entry is refused in tests/test_external_models.py.)"""
    ext = {"bert": {"source": str(folders["bert"])},
           "enc": {"source": str(folders["bert"]), "objective": "encoder"}}  # fmt: skip
    message = (
        r"vep\.models: models\.external\.enc has objective 'encoder', which cannot be used "
        r"for vep \(needs objective mlm or gpt\)"
    )
    with pytest.raises(ConfigError, match=message):
        load(demo_config(models={"external": ext}, vep={"models": ["enc"]}))


# ------------------------------------------------------------------------------ attribution


def test_attribution_of_a_fine_tuned_external_model(folders, tmp_path):
    """interpret explains a run fine-tuned from an external model: its folder's own
    transformers tokenizer (BPE, [CLS] first) maps bases to tokens for the gradients."""
    from dnalm.finetuning.finetune import finetune
    from dnalm.interpretation.run import interpret_run

    run = tmp_path / "run"
    table = _species_table()
    finetune("unused", table, run, {"regime": "full", "max_epochs": 1, "batch_size": 8,
             "device": "cpu"}, model_name="bert", external=_external(folders["bert"], "bert",
             tmp_path))  # fmt: skip
    summary = interpret_run(run, table, tmp_path / "out", {"n_windows": 4, "ig_steps": 2},
                            run_name="bert_full", task_name="toy")  # fmt: skip
    assert set(summary["model_family"]) == {"token"}
    assert {"ism", "grad_x_input", "ig"} <= set(summary["method"])
    import numpy as np

    arrays = np.load(tmp_path / "out" / "attributions.npz")
    assert arrays["mask"].sum() == 4 * 30  # every base of the 4 windows has its BPE token
    assert np.abs(arrays["ig"]).sum() > 0


def test_interpret_refuses_a_remote_code_run_naming_it(tmp_path):
    remote = hf.remote_code_folder(tmp_path / "v2")
    entry = {"source": str(remote), "revision": hf.REVISION, "trust_remote_code": True}
    over = {
        "models": {"external": {"v2": entry}},
        "finetune": {"runs": {"v2_frozen": {"model": "v2", "regime": "frozen",
                                            "tasks": ["species_fragments"]}}},
        "interpret": {"enabled": True, "runs": {"species_fragments": ["v2_frozen"]}},
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"interpret\.runs\.species_fragments: run "
                       r"'v2_frozen' fine-tunes models\.external\.v2"):  # fmt: skip
        load(demo_config(**over))
