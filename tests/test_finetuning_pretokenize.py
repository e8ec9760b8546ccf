"""Fine-tuning batches tokenized once (dnalm.finetuning.finetune.Tokenize.pretokenize): the
batches assembled from the stored tokens equal those tokenized batch by batch, and no
tokenization happens while batches are drawn; augmented training batches are still
tokenized as they come."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from dnalm.core.config import FinetuneTrainConfig
from dnalm.finetuning import finetune as ft
from dnalm.finetuning.data import task_arrays
from dnalm.tokenization import build as dtok
from dnalm.training.fit import ArrayBatches


class CountingTokenizer:
    """The real tokenizer, counting the calls that tokenize."""

    def __init__(self, tok):
        self.tok, self.calls = tok, 0

    def encode(self, *args, **kwargs):
        self.calls += 1
        return self.tok.encode(*args, **kwargs)

    def base_to_token_index(self, *args, **kwargs):
        self.calls += 1
        return self.tok.base_to_token_index(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tok, name)


def table(per_base: bool, n=37, seed=0) -> tuple[pd.DataFrame, str, list[str] | None, int]:
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list("ACGTN"), int(rng.integers(5, 60)))) for _ in range(n)]
    df = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "sequence": seqs, "split": "train"})
    if per_base:
        df["targets"] = [",".join(str(float(i % 3)) for i in range(len(s))) for s in seqs]
        return df, "per_base_regression", None, 60
    df["label"] = [("a", "b")[i % 2] for i in range(n)]
    return df, "classification", ["a", "b"], 60


@pytest.mark.parametrize(
    ("tok_spec", "per_base", "rc", "context"),
    [
        ({"type": "nucleotide"}, True, False, 96),
        ({"type": "kmer", "k": 3}, True, True, 12),  # cut to the context
        ({"type": "nucleotide"}, False, True, 30),
        ({"type": "kmer_overlapping", "k": 4}, True, False, 40),
    ],
)
def test_pretokenized_batches_equal_batch_by_batch(tok_spec, per_base, rc, context):
    tok = dtok.build_tokenizer(tok_spec)
    df, kind, labels, width = table(per_base)
    arrays = task_arrays(df, kind, width, labels)
    cfg = FinetuneTrainConfig.from_dict({})
    counting = CountingTokenizer(tok)
    once = ft.Tokenize(counting, context, per_base, False, cfg, rc=rc)
    stored = once.pretokenize(arrays)
    assert counting.calls > 0
    before = counting.calls
    each = ft.Tokenize(tok, context, per_base, False, cfg, rc=rc)
    for shuffle in (False, True):
        want = list(ArrayBatches(arrays, 8, shuffle=shuffle, seed=3, transform=each))
        got = list(ArrayBatches(stored, 8, shuffle=shuffle, seed=3, transform=once))
        assert len(got) == len(want) == 5
        for g, w in zip(got, want, strict=True):
            assert sorted(g) == sorted(w)
            for key in w:
                if not isinstance(w[key], torch.Tensor):  # e.g. "padded", known on the host
                    assert g[key] == w[key], key
                    continue
                assert g[key].dtype == w[key].dtype, key
                assert torch.equal(g[key], w[key]), key
    assert counting.calls == before  # nothing tokenized while the batches were drawn


def test_augmented_training_batches_are_tokenized_as_they_come():
    tok = CountingTokenizer(dtok.build_tokenizer({"type": "nucleotide"}))
    df, kind, labels, width = table(True)
    arrays = task_arrays(df, kind, width, labels)
    cfg = FinetuneTrainConfig.from_dict({"max_shift": 3})
    train = ft.Tokenize(tok, 96, True, True, cfg)
    assert train.augments
    assert "row" not in train.pretokenize(arrays)
    assert tok.calls == 0
    batches = list(ArrayBatches(train.pretokenize(arrays), 8, True, 1, transform=train))
    assert tok.calls > 0
    assert len(batches) == 5
    plain = ft.Tokenize(tok, 96, True, True, FinetuneTrainConfig.from_dict({"max_shift": 0}))
    assert not plain.augments
    assert "row" in plain.pretokenize(arrays)
