"""Using trained model folders: score (causal and pseudo-log-likelihood), generate, next."""

from __future__ import annotations

import argparse
import csv
import math
import shutil

import numpy as np
import pytest
import torch

from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.evaluation import inference as inf
from dnalm.generation import sampling as smp
from dnalm.training.pretrain import pretrain
from tests.support.lm_corpus import VOCAB, make_corpus, save_tokenizer

TRAIN = {
    "max_steps": 40,
    "micro_batch_size": 8,
    "eval_interval": 20,
    "warmup_steps": 3,
    "eval_batches": 2,
    "threads": 1,
    "test_eval": False,
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    corpus = make_corpus(root / "corpus")
    out = {}
    for objective in ("gpt", "mlm"):
        pretrain(corpus, root / objective, objective, "tiny", {"context": 40}, TRAIN)
        out[objective] = root / objective
    return out


def test_causal_scores_match_the_model_and_sum_to_the_total(models, tmp_path):
    fasta = tmp_path / "in.fa"
    fasta.write_text(">s1 first\nACGTACGTAC\n>s2\nTTTTGGGA\n")
    per, tot = tmp_path / "per.tsv", tmp_path / "tot.tsv"
    assert inf.score_fasta(models["gpt"], fasta, per, tot) == 2
    with open(per) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    with open(tot) as fh:
        totals = {r["id"]: r for r in csv.DictReader(fh, delimiter="\t")}
    s1 = [r for r in rows if r["id"] == "s1"]
    assert [r["token"] for r in s1] == [*"ACGTACGTAC", "[EOS]"]
    assert math.isclose(
        sum(float(r["log_likelihood"]) for r in s1),
        float(totals["s1"]["log_likelihood"]),
        abs_tol=1e-4,
    )
    assert int(totals["s1"]["n_nt"]) == 10
    # independent check of one value against the model's own softmax
    lm = inf.LoadedModel.from_folder(models["gpt"])
    ids = lm.encode("ACGTACGTAC")
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids[:3]])).logits[0, -1]
    expected = float(torch.log_softmax(logits, -1)[ids[3]])
    assert math.isclose(float(s1[2]["log_likelihood"]), expected, abs_tol=1e-5)
    # the trained chain prefers the successor nucleotide (A->C->G->T->A)
    assert float(s1[1]["log_likelihood"]) > math.log(0.3)


def test_long_sequences_use_a_sliding_window(models):
    lm = inf.LoadedModel.from_folder(models["gpt"])
    ids = lm.encode("ACGT" * 30)  # 122 tokens > context 40
    ll = inf.score_ids(lm, ids)
    assert np.isnan(ll[0])
    assert np.isfinite(ll[1:]).all()


def test_pseudo_log_likelihood_for_mlm(models):
    lm = inf.LoadedModel.from_folder(models["mlm"])
    ids = lm.encode("ACGTACGT")
    ll = inf.score_ids(lm, ids)
    assert np.isnan(ll[0])
    assert np.isnan(ll[-1])
    assert (ll[1:-1] < 0).all()
    assert np.isfinite(ll[1:-1]).all()
    with pytest.raises(ConfigError, match="longer than the masked model's context"):
        inf.score_ids(lm, lm.encode("A" * 60))
    with pytest.raises(ConfigError, match="needs a causal"):
        smp.next_tokens(lm, "ACG")


def test_next_and_generate(models):
    lm = inf.LoadedModel.from_folder(models["gpt"])
    top = smp.next_tokens(lm, "ACGTA", k=3)
    probs = [p for _, p in top]
    everything = smp.next_tokens(lm, "ACGTA", k=100)
    texts = {t for t, _ in everything}
    eos = lm.token_text(lm.eos_id)
    others = {lm.token_text(i) for i in lm.special if i != lm.eos_id}
    assert not texts & others  # no PAD/BOS/MASK/UNK candidates
    assert len(everything) == lm.model.config.vocab_size - len(others)
    assert eos in texts  # the end of a sequence is a real next token
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1 + 1e-6
    a = smp.generate(lm, "ATG", n=3, max_new_tokens=30, temperature=0.8, top_k=4, seed=1)
    b = smp.generate(lm, "ATG", n=3, max_new_tokens=30, temperature=0.8, top_k=4, seed=1)
    assert a == b
    assert all(s.startswith("ATG") and set(s) <= set("ACGTN") for s in a)
    assert all(len(s) <= 33 for s in a)
    stops = smp.generate(lm, "ATG", n=5, max_new_tokens=60, seed=2, stop_codon=True)
    for s in stops:
        if len(s) % 3 == 0 and s[-3:] in smp.STOP_CODONS:
            assert not any(s[i : i + 3] in smp.STOP_CODONS for i in range(3, len(s) - 3, 3))


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])
    logits = probs.log()

    def kept(p):
        return set(torch.isfinite(smp.filter_logits(logits, top_p=p)).nonzero().flatten().tolist())

    assert kept(0.5) == {1}  # the top token alone reaches 0.5
    assert kept(0.79) == {1, 3}
    assert kept(0.81) == {1, 3, 2}  # 0.5 + 0.3 = 0.8 < 0.81
    assert kept(0.96) == {0, 1, 2, 3}
    assert kept(0.01) == {1}  # never empty
    assert kept(1.0) == {0, 1, 2, 3}
    assert set(
        torch.isfinite(smp.filter_logits(logits, top_k=3, top_p=0.7)).nonzero().flatten().tolist()
    ) == {1, 3}
    with pytest.raises(ConfigError, match="top_p"):
        smp._check_sampling(1.0, None, 1.5)


def test_generate_with_top_p(models):
    lm = inf.LoadedModel.from_folder(models["gpt"])
    # with a tiny nucleus every step takes the most probable token: sampling is greedy
    a = smp.generate(lm, "ACG", n=2, max_new_tokens=20, seed=1, top_p=1e-6)
    b = smp.generate(lm, "ACG", n=2, max_new_tokens=20, seed=7, top_p=1e-6)
    assert a == b
    assert a[0] == a[1]
    ids = smp.encode_prefix(lm, "ACG")
    greedy = smp.next_tokens(lm, "ACG", k=1)[0][0]
    if greedy != lm.token_text(lm.eos_id):
        assert a[0][3] == greedy
    gen = torch.Generator().manual_seed(0)
    seq, why = smp.sample_continuation(lm, ids, 5, 1.0, None, gen, top_p=0.9)
    assert why in {"eos", "length_cap"}
    assert seq.startswith("ACG")
    assert len(seq) <= 8


def test_tokenizer_of_another_vocabulary_is_rejected(models, tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(models["gpt"], folder)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    tok.add_tokens(["X"])
    tok.save_pretrained(folder)
    with pytest.raises(InputFormatError, match=f"tokenizer has {len(VOCAB) + 1} tokens"):
        inf.LoadedModel.from_folder(folder)


def test_cli_commands(models, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    smp.register(sub)
    args = parser.parse_args(["next", "--model", str(models["gpt"]), "--prefix", "ACG"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("token\tprobability\n")
    args = parser.parse_args(
        ["generate", "--model", str(models["gpt"]), "-n", "2", "--max-new-tokens", "10"]
    )
    assert args.func(args) == 0
    assert capsys.readouterr().out.count(">sample") == 2


def test_loading_a_folder_without_model_is_an_error(tmp_path):
    save_tokenizer(tmp_path)
    with pytest.raises(InputFormatError, match=r"no config\.json"):
        inf.LoadedModel.from_folder(tmp_path)


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
def test_rc_average_score_is_strand_symmetric(models, objective, tmp_path):
    from dnalm.core.alphabet import reverse_complement

    seq = "ACGTTGCAGGATAAGCTTAC"
    fasta = tmp_path / "in.fa"
    fasta.write_text(f">f\n{seq}\n>r\n{reverse_complement(seq)}\n")

    def totals(rc_average):
        per, tot = tmp_path / "per.tsv", tmp_path / "tot.tsv"
        inf.score_fasta(models[objective], fasta, per, tot, rc_average=rc_average)
        with open(tot) as fh:
            rows = {r["id"]: r for r in csv.DictReader(fh, delimiter="\t")}
        with open(per) as fh:
            return rows, list(csv.DictReader(fh, delimiter="\t"))

    plain, _ = totals(False)
    assert plain["f"]["log_likelihood"] != plain["r"]["log_likelihood"]
    rc, per = totals(True)
    for key in ("log_likelihood", "mean_per_token", "bits_per_nt"):
        assert rc["f"][key] == rc["r"][key], key
    assert rc["f"]["log_likelihood_forward"] == plain["f"]["log_likelihood"]
    assert rc["f"]["log_likelihood_reverse"] == plain["r"]["log_likelihood"]
    mean = (float(plain["f"]["log_likelihood"]) + float(plain["r"]["log_likelihood"])) / 2
    assert math.isclose(float(rc["f"]["log_likelihood"]), mean, abs_tol=2e-6)
    # the reverse strand's per-token rows are flipped back: indices run downwards
    minus = [int(r["index"]) for r in per if r["id"] == "f" and r["strand"] == "-"]
    assert len(minus) > 1
    assert minus == sorted(minus, reverse=True)
