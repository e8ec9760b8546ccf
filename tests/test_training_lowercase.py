"""lowercase_loss_weight: soft-masked (lower-case) targets of a real-sequence corpus weigh
`w` in the training loss (w = 0: their labels do not matter at all), and validation curves
and test metrics report the loss and bits/nt both weighted and unweighted."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from dnalm.core.errors import ConfigError
from dnalm.core.io import atomic_write, read_fasta, write_fasta
from dnalm.tokenization.build import build_tokenizer
from dnalm.tokenization.corpus import build_corpus
from dnalm.training.lm_data import IGNORE_INDEX
from dnalm.training.pretrain import Trainer, pretrain
from dnalm.training.run import PretrainRun, PretrainTrainConfig

ARCH = {"context": 128, "dropout": 0.0, "attention_dropout": 0.0}
BASE = {"micro_batch_size": 4, "threads": 1, "warmup_steps": 1, "grad_clip": 0.0}


def _records(shared_data, soft: bool) -> list[str]:
    """1 kb records of yeast chrIV; with `soft`, bases 200-500 of each are lower case."""
    _h, seq, _l = next(iter(read_fasta(shared_data / "fasta_gff" / "sacCer3_chrIV.fa.gz")))
    recs = [seq[i : i + 1000].upper() for i in range(0, 150_000, 1000)]
    return [r[:200] + r[200:500].lower() + r[500:] for r in recs] if soft else recs


def _corpus(folder, recs, tok_spec):
    paths = {}
    for split, part in (("train", recs[:110]), ("validation", recs[110:130]), ("test", recs[130:])):
        paths[split] = folder / f"{split}.fa"
        with atomic_write(paths[split]) as fh:
            write_fasta(fh, [(f"{split}{i}", s) for i, s in enumerate(part)])
    tok = build_tokenizer(tok_spec)
    build_corpus(tok, {k: [v] for k, v in paths.items()}, folder / "corpus", 128)
    return folder / "corpus"


@pytest.fixture(scope="module")
def soft_corpus(shared_data, tmp_path_factory):
    return _corpus(
        tmp_path_factory.mktemp("soft"), _records(shared_data, True), {"type": "kmer", "k": 3}
    )


@pytest.fixture(scope="module")
def plain_corpus(shared_data, tmp_path_factory):
    return _corpus(
        tmp_path_factory.mktemp("plain"), _records(shared_data, False), {"type": "kmer", "k": 3}
    )


def _one_step(corpus, out, objective, weight, alter: bool):
    """Loss and weights after one optimizer step; with `alter`, the labels of every target
    whose weight is below 1 are replaced by another content token first."""
    cfg = {**BASE, "max_steps": 5, "lowercase_loss_weight": weight}
    tr = Trainer(PretrainRun(corpus, out, objective, "tiny", ARCH, cfg, resume=False))
    batches = tr.micro_batches(0)
    if alter:
        normal = sorted(set(range(tr.vocab_size)) - set(tr.special.tolist()))
        nxt = torch.tensor(normal[1:] + normal[:1])
        lut = torch.arange(tr.vocab_size)
        lut[torch.tensor(normal)] = nxt
        altered = []
        n_changed = 0
        for x, pos, y, w in batches:
            m = (w < 1) & (y != IGNORE_INDEX)
            y = torch.where(m, lut[y.clamp(min=0)], y)
            n_changed += int(m.sum())
            altered.append((x, pos, y, w))
        assert n_changed > 5  # the batch has soft-masked targets
        batches = altered
    loss, denom, _ = tr.train_step(batches)
    return loss, denom, [p.detach().clone() for p in tr.model.parameters()]


@pytest.mark.parametrize("objective", ["gpt", "mlm"])
def test_weight_zero_gives_lower_case_targets_no_gradient(soft_corpus, tmp_path, objective):
    loss, denom, params = _one_step(soft_corpus, tmp_path / "a", objective, 0.0, alter=False)
    loss2, denom2, params2 = _one_step(soft_corpus, tmp_path / "b", objective, 0.0, alter=True)
    assert loss == loss2
    assert denom == denom2
    assert all(torch.equal(p, q) for p, q in zip(params, params2, strict=True))
    # control: with a non-zero weight the same change moves the loss and the weights
    loss3, _, params3 = _one_step(soft_corpus, tmp_path / "c", objective, 0.5, alter=False)
    loss4, _, params4 = _one_step(soft_corpus, tmp_path / "d", objective, 0.5, alter=True)
    assert loss3 != loss4
    assert not all(torch.equal(p, q) for p, q in zip(params3, params4, strict=True))
    assert loss != loss3  # the weight changes the objective


def _run(corpus, out, weight):
    cfg = {**BASE, "max_steps": 4, "eval_interval": 2, "log_interval": 2, "eval_batches": 3}
    pretrain(corpus, out, "gpt", "tiny", ARCH, {**cfg, "lowercase_loss_weight": weight})
    with open(out / "curves.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["val_loss"]]
    return rows, json.loads((out / "metrics.json").read_text())


def test_curves_and_metrics_report_weighted_and_unweighted(soft_corpus, plain_corpus, tmp_path):
    rows, metrics = _run(soft_corpus, tmp_path / "w01", 0.1)
    assert len(rows) == 3
    for r in rows:
        vals = [float(r[c]) for c in ("val_loss", "val_loss_weighted", "bits_per_nt")]
        assert all(math.isfinite(v) for v in vals)
        assert float(r["val_loss_weighted"]) != float(r["val_loss"])
        assert float(r["bits_per_nt_weighted"]) != float(r["bits_per_nt"])
    assert metrics["lowercase_loss_weight"] == 0.1
    assert metrics["lowercase_flags"] is True
    for res in (metrics["model"], metrics["baseline"]):
        assert res["loss_weighted"] != res["loss"]
        assert res["weight_sum"] < res["n_targets"]
    # weight 1, or no lower case in the corpus: both columns are the same numbers
    for corpus, weight, name in ((soft_corpus, 1.0, "w1"), (plain_corpus, 0.1, "plain")):
        rows, metrics = _run(corpus, tmp_path / name, weight)
        for r in rows:
            assert r["val_loss_weighted"] == r["val_loss"]
            assert r["bits_per_nt_weighted"] == r["bits_per_nt"]
        assert metrics["model"]["loss_weighted"] == pytest.approx(metrics["model"]["loss"])
        assert metrics["lowercase_flags"] is (corpus == soft_corpus)


def test_soft_corpus_flags_and_counts(soft_corpus):
    meta = json.loads((soft_corpus / "meta.json").read_text())
    assert meta["train"]["has_lowercase"]
    assert meta["train"]["lowercase_fraction"] == pytest.approx(0.3)
    flags = np.load(soft_corpus / "train" / "shard-00000.lowercase.npy")
    assert flags.dtype == np.uint8
    assert flags.sum() == meta["train"]["n_lowercase_tokens"]


@pytest.mark.parametrize("bad", [1.5, -0.1, "half", True])
def test_bad_weight_names_the_key(bad):
    with pytest.raises(ConfigError, match="lowercase_loss_weight"):
        PretrainTrainConfig.from_dict({"lowercase_loss_weight": bad})
