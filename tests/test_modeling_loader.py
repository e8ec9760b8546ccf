"""The one model-folder loader: kinds, tokenizer, run record, and the folders it refuses in
one line without running anything (pickle weights, a model type that needs remote code).
Also the inference CLI's count and prefix checks, which sit on top of it."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from dnalm.cli import main
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation import inference as inf
from dnalm.generation import sampling as smp
from dnalm.modeling import models as dmodels
from dnalm.modeling.loader import check_folder, load_model_folder
from dnalm.tokenization import build as dtok


def make_folder(folder, objective="gpt", seed=0):
    tok = dtok.build_tokenizer({"type": "nucleotide"})
    tok.save(folder)
    arch = dmodels.resolve_arch(objective, "tiny", {"context": 32, "n_layer": 1})
    torch.manual_seed(seed)
    net = dmodels.build_model(objective, arch, tok.vocab_size, tok.special_ids)
    net.save_pretrained(str(folder))
    (folder / "run.json").write_text(json.dumps({"tokenizer": "nt", "tokenizer_hash": tok.hash}))
    return folder, net


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("loader") / "gpt")[0]


class Payload:
    """A pickle that would create `marker` if it were ever unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
def test_lm_kind_loads_model_tokenizer_and_run_record(objective, tmp_path):
    folder, net = make_folder(tmp_path / objective, objective)
    loaded = load_model_folder(folder, kind="lm")
    assert loaded.objective == objective
    assert not loaded.model.training
    assert loaded.dna_tokenizer
    assert loaded.tokenizer.vocab_size == net.config.vocab_size
    assert loaded.run["tokenizer"] == "nt"
    for (k, a), b in zip(net.state_dict().items(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_auto_kind_and_seeded_random_init(gpt_dir):
    auto = load_model_folder(gpt_dir, kind="auto")
    assert auto.objective == "gpt"
    assert auto.tokenizer is None
    a = load_model_folder(gpt_dir, kind="backbone", random_init=True, seed=3).model
    b = load_model_folder(gpt_dir, kind="backbone", random_init=True, seed=3).model
    key = "model.decoder.layers.0.self_attn.q_proj.weight"
    assert torch.equal(a.state_dict()[key], b.state_dict()[key])
    assert not torch.equal(a.state_dict()[key], auto.model.state_dict()[key])


def test_pickle_weights_are_refused_in_one_line_and_never_unpickled(tmp_path):
    folder, _ = make_folder(tmp_path / "pickled")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "executed"
    with open(folder / "pytorch_model.bin", "wb") as fh:
        pickle.dump(Payload(marker), fh)
    for kind in ("lm", "backbone", "auto"):
        with pytest.raises(InputFormatError) as err:
            load_model_folder(folder, kind=kind)
        msg = str(err.value)
        assert "\n" not in msg
        assert str(folder) in msg
        assert "pytorch_model.bin" in msg
        assert "pickle weights are never loaded (nothing in them was executed)" in msg
        assert "save_pretrained(folder, safe_serialization=True)" in msg
    # not even for an external model whose custom code the user trusts
    with pytest.raises(InputFormatError, match="pickle weights are never loaded"):
        load_model_folder(folder, kind="auto", trust_remote_code=True)
    assert not marker.exists()


def test_unknown_model_type_with_auto_map_is_refused_without_running_its_code(tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    marker = tmp_path / "executed"
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "evil",
                "architectures": ["EvilForCausalLM"],
                "auto_map": {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"},
            }
        )
    )
    for kind in ("lm", "backbone", "auto"):
        with pytest.raises(ConfigError) as err:
            load_model_folder(folder, kind=kind)
        msg = str(err.value)
        assert "\n" not in msg
        assert str(folder) in msg
        assert "model_type 'evil'" in msg
        assert "auto_map" in msg
        assert "remote code is never executed" in msg
    assert not marker.exists()


def test_folders_that_are_not_model_folders(gpt_dir, tmp_path):
    with pytest.raises(ConfigError, match="no such model folder"):
        load_model_folder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFormatError, match=r"no config\.json"):
        check_folder(empty)
    (empty / "config.json").write_text("{not json")
    with pytest.raises(InputFormatError, match="not valid JSON"):
        check_folder(empty)
    (empty / "config.json").write_text((gpt_dir / "config.json").read_text())
    with pytest.raises(InputFormatError, match=r"no model\.safetensors"):
        check_folder(empty)
    with pytest.raises(InputFormatError, match=r"no finetune\.json"):
        load_model_folder(gpt_dir, kind="finetuned")
    with pytest.raises(ConfigError, match="remote code is never executed"):
        load_model_folder(gpt_dir, kind="lm", trust_remote_code=True)
    with pytest.raises(ConfigError, match="unknown model folder kind"):
        load_model_folder(gpt_dir, kind="pickle")


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--model", "m", "-n", "0"],
        ["generate", "--model", "m", "--max-new-tokens", "-5"],
        ["generate", "--model", "m", "--top-k", "0"],
        ["next", "--model", "m", "--prefix", "ACG", "-k", "0"],
    ],
)
def test_cli_rejects_non_positive_counts(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "must be a positive integer" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("command", ["generate", "next"])
def test_cli_bad_prefix_names_the_prefix(command, gpt_dir, capsys):
    assert main([command, "--model", str(gpt_dir), "--prefix", "ACGZT"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dnalm: error: prefix 'ACGZT': character 'Z' at position 4 ")
    assert "input FASTA" not in err
    assert err.count("\n") == 1  # refused before the model loads


def test_cli_generate_and_next_still_work(gpt_dir, capsys):
    assert main(["next", "--model", str(gpt_dir), "--prefix", "acg", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["generate", "--model", str(gpt_dir), "-n", "2", "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.count(">sample") == 2


def test_library_rejects_bad_counts_and_prefixes(gpt_dir):
    lm = inf.LoadedModel.from_folder(gpt_dir)
    with pytest.raises(ConfigError, match="n must be a positive integer, got 0"):
        smp.generate(lm, "ATG", n=0)
    with pytest.raises(ConfigError, match="max_new_tokens must be a positive integer"):
        smp.generate(lm, "ATG", max_new_tokens=-5)
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        smp.next_tokens(lm, "ATG", k=0)
    with pytest.raises(ConfigError, match=r"prefix 'AT-G': character '-' at position 3"):
        smp.next_tokens(lm, "AT-G")
