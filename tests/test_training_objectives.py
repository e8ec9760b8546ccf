"""Pretraining losses beyond cross-entropy (dnalm.training.objectives) and the token-level
reverse complement they use (dnalm.tokenization.revcomp): the rc loss on palindromes, the
reverse complement of packed windows against the string reverse complement, the DNA-walk loss
against a hand computation, the teacher-less input, the config checks, and a short
pretraining run per loss."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import torch
import yaml

from dnalm.core.alphabet import reverse_complement
from dnalm.core.errors import ConfigError
from dnalm.kinds.losses import LOSSES, check_losses, loss_settings
from dnalm.modeling.models import build_model, forward_logits, resolve_arch
from dnalm.tokenization.build import build_tokenizer
from dnalm.tokenization.revcomp import reverse_complement_windows, token_rc_map
from dnalm.training.lm_data import causal_labels
from dnalm.training.objectives import (
    Objective,
    ce_sum,
    teacherless_inputs,
    walk_loss_sum,
)
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import BOS, EOS, MASK, PAD, VOCAB, make_corpus
from tests.support.workflow_runner import make_workdir, snakemake

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())

META = {"pad_id": PAD, "unk_id": 1, "bos_id": BOS, "eos_id": EOS, "sep_id": None, "mask_id": MASK}


def _window(segments: list[list[int]], block: int) -> tuple[np.ndarray, np.ndarray]:
    """One packed window (1, block): the segments back to back, positions from 0 in each,
    then padding."""
    tok = [t for seg in segments for t in seg]
    pos = [i for seg in segments for i in range(len(seg))]
    pad = block - len(tok)
    return np.array([tok + [PAD] * pad]), np.array([pos + [0] * pad])


def _ids(seq: str) -> list[int]:
    return [VOCAB[c] for c in seq]


# --------------------------------------------------------------------------- reverse complement


def _specials(tok) -> dict:
    ids = tok.special_ids
    return {k: ids[k] for k in ("pad_id", "unk_id", "bos_id", "eos_id", "sep_id", "mask_id")}


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "nucleotide", "keep_case": True},
        {"type": "nucleotide"},
        {"type": "kmer", "k": 3},
        {"type": "kmer_overlapping", "k": 3},
    ],
)
def test_token_reverse_complement_of_a_packed_window_matches_the_string_one(spec):
    tok = build_tokenizer(spec)
    keep = spec.get("keep_case", False)
    seqs = ["ACGGTacgtTTAN" if keep else "ACGGTACGTTTAN", "GGATCCA"]
    segs = [[int(i) for i in tok.encode(s, add_special_tokens=True)] for s in seqs]
    chunk = [int(i) for i in tok.encode("TTGACCA")]  # the first chunk of a long CDS: BOS, no EOS
    segs.append([tok.bos_id, *chunk])
    tokens, positions = _window(segs, sum(map(len, segs)) + 3)
    rc_map = token_rc_map(tok._vocab, _specials(tok), tok.type)
    rc_tok, rc_pos = reverse_complement_windows(tokens, positions, rc_map)
    assert np.array_equal(rc_pos, positions)
    start = 0
    for seq, seg in zip([*seqs, "TTGACCA"], segs, strict=True):
        got = rc_tok[0, start : start + len(seg)]
        want = reverse_complement(seq) if keep else reverse_complement(seq.upper())
        assert tok.decode(got) == want
        if seg[-1] == tok.eos_id:  # a whole sequence: BOS first and EOS last on both strands
            assert got[0] == tok.bos_id
            assert got[-1] == tok.eos_id
        else:  # the start of a sequence is the end of its reverse complement
            assert got[-1] == tok.eos_id
            assert tok.bos_id not in got
        start += len(seg)
    assert (rc_tok[0, start:] == tok.pad_id).all()
    # the reverse complement of the reverse complement is the window
    back, _ = reverse_complement_windows(rc_tok, rc_pos, rc_map)
    assert np.array_equal(back, tokens)


@pytest.mark.parametrize("kind", ["codon", "bpe"])
def test_codon_and_bpe_vocabularies_have_no_token_reverse_complement(kind):
    tok = build_tokenizer({"type": "nucleotide"})
    with pytest.raises(ConfigError, match=f"a {kind} vocabulary has no token-level reverse"):
        token_rc_map(tok._vocab, _specials(tok), kind)
    spec = {"objective": "gpt", "tokenizer": "t", "loss": "rc"}
    with pytest.raises(ConfigError, match=rf"pretrain.models.m.loss: .*rc loss cannot .*{kind}"):
        loss_settings("m", spec, kind)
    # a vocabulary whose tokens' reverse complements are missing is refused by its content too
    with pytest.raises(ConfigError, match=r"'AAC'.*'GTT' is not in the vocabulary"):
        token_rc_map({"[PAD]": 0, "AAC": 1}, {"pad_id": 0}, None)


def _tiny_model(vocab_size: int = len(VOCAB)):
    torch.manual_seed(0)
    model = build_model("gpt", resolve_arch("gpt", "tiny"), vocab_size, META)
    return model.eval()


def _forward(model):
    return lambda x, pos: forward_logits(model, x, pos)


def test_rc_loss_of_palindromes_equals_the_forward_loss():
    model = _tiny_model()
    vocab = dict(VOCAB)
    plain = Objective("rc", {}, META, vocab, None)
    consistent = Objective("rc", {"consistency": 2.0}, META, vocab, None)
    with torch.no_grad():
        for segs in ([_ids("GAATTC")], [_ids("ACGT"), _ids("GAATTC")]):
            segs = [[BOS, *s, EOS] for s in segs]
            tokens, positions = (torch.from_numpy(a) for a in _window(segs, 16))
            y = causal_labels(tokens, positions, PAD)
            ce = ce_sum(_forward(model)(tokens, positions), y, None)
            for obj in (plain, consistent):  # equal strands: the consistency term is 0
                rc = obj.loss_sum(_forward(model), tokens, positions, y, None)
                assert torch.allclose(rc, ce, rtol=1e-5), (segs, float(rc), float(ce))
        # not a palindrome: the two strands score differently, and the consistency adds
        tokens, positions = (torch.from_numpy(a) for a in _window([[BOS, *_ids("AACG"), EOS]], 8))
        y = causal_labels(tokens, positions, PAD)
        ce = ce_sum(_forward(model)(tokens, positions), y, None)
        rc = plain.loss_sum(_forward(model), tokens, positions, y, None)
        rc_c = consistent.loss_sum(_forward(model), tokens, positions, y, None)
        assert not torch.allclose(rc, ce)
        assert float(rc_c) > float(rc)


# --------------------------------------------------------------------------- two_d


def test_walk_loss_is_zero_for_a_model_sure_of_the_next_base():
    tokens, positions = (torch.from_numpy(a) for a in _window([[BOS, *_ids("ACGGTA"), EOS]], 10))
    y = causal_labels(tokens, positions, PAD)
    logits = torch.zeros(1, 10, len(VOCAB))
    logits[0, :-1] = 40.0 * torch.nn.functional.one_hot(tokens[0, 1:], len(VOCAB))
    obj = Objective("two_d", {}, META, dict(VOCAB), None)
    loss = walk_loss_sum(logits, y, positions, obj.base_ids, obj.base_steps)
    assert float(loss) == pytest.approx(0.0, abs=1e-8)


def test_walk_loss_matches_a_hand_computation():
    # window: [BOS A C G EOS] [BOS T EOS]; logits[t] predict token t + 1
    tokens, positions = (torch.from_numpy(a) for a in _window([[BOS, *_ids("ACG"), EOS]], 5))
    tokens = torch.cat([tokens, torch.tensor([[BOS, VOCAB["T"], EOS]])], 1)
    positions = torch.cat([positions, torch.tensor([[0, 1, 2]])], 1)
    y = causal_labels(tokens, positions, PAD)
    a, c, g, t = (VOCAB[b] for b in "ACGT")
    logits = torch.full((1, 8, len(VOCAB)), -1e4)
    logits[0, 0, [a, c, g, t]] = 0.0  # uniform over the bases: expected step (0, 0)
    logits[0, 1, c] = logits[0, 1, EOS] = 5.0  # all base mass on C (EOS mass is left out)
    logits[0, 2, [a, g]] = 0.0  # A and G, 1/2 each: expected step (-1/2, 1/2)
    logits[0, 5, [a, c, g, t]] = 0.0  # second segment, uniform: (0, 0)
    # Steps (dnalm.core.walks): A (-1, 0), C (0, -1), G (0, 1), T (1, 0).
    # segment 1, target A: P = (0, 0),       W = (-1, 0)  -> |P - W|^2 = 1,   n = 1 -> 1
    #            target C: P = (0, -1),      W = (-1, -1) -> 1,               n = 2 -> 1/2
    #            target G: P = (-1/2, -1/2), W = (-1, 0)  -> 1/4 + 1/4 = 1/2, n = 3 -> 1/6
    #            target EOS: not a base, 0
    # segment 2 (the walk restarts), target T: P = (0, 0), W = (1, 0) -> 1, n = 1 -> 1
    #            target EOS: 0
    want = 1 + 1 / 2 + 1 / 6 + 1
    obj = Objective("two_d", {}, META, dict(VOCAB), None)
    got = walk_loss_sum(logits, y, positions, obj.base_ids, obj.base_steps)
    assert float(got) == pytest.approx(want, rel=1e-6)
    # two_d_ce adds the weighted cross-entropy
    both = Objective("two_d_ce", {"two_d_weight": 0.5}, META, dict(VOCAB), None)
    total = both.loss_sum(lambda x, p: logits, tokens, positions, y, None)
    assert float(total) == pytest.approx(float(ce_sum(logits, y, None)) + 0.5 * want, rel=1e-6)


def test_walk_loss_needs_a_nucleotide_vocabulary():
    kmer = build_tokenizer({"type": "kmer", "k": 3})
    with pytest.raises(ConfigError, match="two_d loss needs a nucleotide tokenizer"):
        Objective("two_d", {}, META, kmer._vocab, None)
    spec = {"objective": "gpt", "tokenizer": "kmer3", "loss": "two_d_ce"}
    with pytest.raises(ConfigError, match="two_d_ce loss cannot be used with the kmer"):
        loss_settings("m", spec, "kmer")


# --------------------------------------------------------------------------- headless


def test_teacherless_input_keeps_each_segment_start_and_the_prefix():
    segs = [[BOS, *_ids("ACG"), EOS], [BOS, *_ids("TT"), EOS]]
    tokens, positions = (torch.from_numpy(a) for a in _window(segs, 11))
    m = MASK
    got = teacherless_inputs(tokens, positions, m)
    assert got.tolist() == [[BOS, m, m, m, m, BOS, m, m, m, PAD, PAD]]
    got = teacherless_inputs(tokens, positions, m, prefix=1)
    a, t = VOCAB["A"], VOCAB["T"]
    assert got.tolist() == [[BOS, a, m, m, m, BOS, t, m, m, PAD, PAD]]


# --------------------------------------------------------------------------- config


def test_loss_config_checks_name_the_model_and_key():
    with pytest.raises(ConfigError, match=r"pretrain.models.bert.loss: 'rc' .*objective is 'mlm'"):
        loss_settings("bert", {"objective": "mlm", "loss": "rc"}, "nucleotide")
    with pytest.raises(ConfigError, match=r"pretrain.models.m.loss: unknown loss 'l2'"):
        loss_settings("m", {"objective": "gpt", "loss": "l2"}, None)
    with pytest.raises(ConfigError, match=r"m.loss_options: unknown rc loss setting 'consistensy'"):
        loss_settings("m", {"objective": "gpt", "loss": "rc", "loss_options": {"consistensy": 1}})
    with pytest.raises(ConfigError, match=r"m.loss_options.prefix: must be an integer >= 0"):
        loss_settings(
            "m", {"objective": "gpt", "loss": "headless", "loss_options": {"prefix": 1.5}}
        )
    assert loss_settings("m", {"objective": "mlm"}, "bpe") == ("ce", {})
    assert loss_settings("m", {"objective": "gpt", "loss": "rc"}, "kmer") == (
        "rc",
        {"consistency": 0.0},
    )
    config = {
        "tokenizers": {"codon": {"type": "codon"}},
        "pretrain": {"models": {"g": {"objective": "gpt", "tokenizer": "codon", "loss": "rc"}}},
    }
    with pytest.raises(ConfigError, match=r"pretrain.models.g.loss: the rc loss cannot .* codon"):
        check_losses(config)


def test_schema_takes_every_loss_and_its_options():
    # the schema's enums against the registry: tests/test_kinds.py
    models = {
        f"g_{loss}": {"objective": "gpt", "tokenizer": "nucleotide", "preset": "tiny", "loss": loss}
        for loss in LOSSES.names()
    }
    models["g_rc"]["loss_options"] = {"consistency": 0.5}
    config = {"samples": "x.tsv", "pretrain": {"models": models}}
    jsonschema.Draft202012Validator(SCHEMA).validate(config)
    models["g_rc"]["loss_options"] = {"consistency": -1}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(config)


def test_dry_run_refuses_rc_on_codons_before_any_job(tmp_path):
    models = {
        "gpt_codon": {"objective": "gpt", "tokenizer": "codon", "preset": "tiny", "loss": "rc"}
    }
    wd = make_workdir(tmp_path / "wd", {"pretrain": {"models": models}}, keep=["phiX174"])
    proc = snakemake(wd, "-n", timeout=300)
    assert proc.returncode != 0
    assert "pretrain.models.gpt_codon.loss: the rc loss cannot be used with the codon" in (
        proc.stdout + proc.stderr
    )
    assert not (wd / "results").exists()


# --------------------------------------------------------------------------- pretraining runs

FAST = {
    "max_steps": 16,
    "micro_batch_size": 8,
    "eval_interval": 8,
    "log_interval": 8,
    "warmup_steps": 2,
    "eval_batches": 2,
    "lr": 3e-3,
    "threads": 1,
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize(
    ("loss", "options"),
    [
        ("ce", {}),
        ("rc", {"consistency": 0.1}),
        ("two_d", {}),
        ("two_d_ce", {"two_d_weight": 0.5}),
        ("headless", {}),
    ],
)
def test_pretraining_with_each_loss_reports_plain_ce_and_the_objective(
    corpus, tmp_path, loss, options
):
    out = tmp_path / f"m_{loss}"
    spec = {"loss": loss, "loss_options": options}
    run = pretrain(corpus, out, "gpt", "tiny", {}, FAST, resume=False, loss=spec)
    with open(out / "curves.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["val_loss"]]
    assert [int(r["step"]) for r in rows] == [0, 8, 16]
    for r in rows:  # plain teacher-forced CE is always there, beside the objective
        assert float(r["bits_per_nt"]) > 0
        assert float(r["val_loss"]) > 0
        assert math.isfinite(float(r["val_loss_objective"]))
    first, last = (float(rows[i]["val_loss_objective"]) for i in (0, -1))
    assert last < first, (loss, first, last)  # the objective being optimised decreases
    if loss == "ce":
        assert all(r["val_loss_objective"] == r["val_loss_weighted"] for r in rows)
    else:
        assert any(r["val_loss_objective"] != r["val_loss"] for r in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["loss"] == loss == run["loss"]
    assert metrics["loss_options"] == loss_settings("m", {"objective": "gpt", **spec}, None)[1]
    assert math.isfinite(metrics["model"]["loss_objective"])
    assert metrics["model"]["bits_per_nt"] > 0
    assert metrics["baseline"]["bits_per_nt"] > 0
    best = min(float(r["val_loss_objective"]) for r in rows)  # curves.csv rounds
    assert run["best_val_loss"] == pytest.approx(best, rel=1e-5)


def test_a_changed_loss_starts_the_run_over(corpus, tmp_path, caplog):
    out = tmp_path / "m"
    short = {**FAST, "max_steps": 8}
    pretrain(corpus, out, "gpt", "tiny", {}, short, resume=False, loss={"loss": "rc"})
    again = pretrain(corpus, out, "gpt", "tiny", {}, short, loss={"loss": "rc"})
    assert again["steps"] == 8  # the finished run is picked up
    with caplog.at_level("WARNING"):
        run = pretrain(corpus, out, "gpt", "tiny", {}, short, loss={"loss": "headless"})
    assert run["loss"] == "headless"
    assert "loss: checkpoint 'rc', now 'headless'" in caplog.text


def test_a_masked_model_with_another_loss_is_refused(corpus, tmp_path):
    with pytest.raises(ConfigError, match=r"pretrain.models.bert.loss: 'rc' .*objective is 'mlm'"):
        pretrain(corpus, tmp_path / "bert", "mlm", "tiny", {}, FAST, loss={"loss": "rc"})
