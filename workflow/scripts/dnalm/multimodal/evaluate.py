"""What the text buys: the evaluation table of the DNA+text model.

* ``text_loss_true_dna`` / ``text_loss_random_dna``: mean cross-entropy (nats) of masked
  text words of the test sentences with their own DNA, and with the DNA replaced by a
  uniform random sequence of the same length (same words masked, same seed).
* ``dna_loss_with_text`` / ``dna_loss_without_text``: masked DNA tokens of the test CDS in
  their sentence, and in ``<dna>SEQ</dna>`` alone (same DNA tokens masked).
* retrieval: for up to ``max_queries`` test CDS (a seeded draw) whose product is among the
  candidate set (the ``max_candidates`` most frequent distinct test products, ties by name:
  a cap for CPU time; CDS without a product are left out of retrieval, queries, candidates
  and both baselines), every candidate product is scored by the pseudo-log-likelihood of
  its words in ``<dna>SEQ</dna> encodes PRODUCT .`` (each product token masked in turn, mean
  log-prob per token so long names are not penalised); top-1/top-5 accuracy of the true
  product.
  Baselines: the products of the nearest training CDS by cosine similarity of 4-mer
  frequencies (top-5: the five nearest distinct products); the most frequent training
  products (``train_freq``: the candidates ranked by their count in the training split,
  ties by name, the same ranking for every query, sequence unused); chance: 1/C and 5/C.
  A model that does not beat ``train_freq`` has learnt the product prior, not the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from dnalm.core.alphabet import BASES, kmer_frequencies
from dnalm.core.errors import ConfigError
from dnalm.multimodal.corpus import product_sentence
from dnalm.multimodal.train import Vocab, collate, masked_batch, token_losses


def _mean_loss(model, rows, vocab, modality, seed, max_len, batch_size=16) -> float:
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            rngs = [np.random.default_rng(seed + i + j) for j in range(len(chunk))]
            parts = [
                masked_batch([r], vocab, g, 0.15, max_len, modality, False)
                for r, g in zip(chunk, rngs, strict=True)
            ]
            width = max(p["input_ids"].shape[1] for p in parts)
            batch = {
                k: torch.stack(
                    [
                        torch.nn.functional.pad(p[k][0], (0, width - p[k].shape[1]), value=fill)
                        for p in parts
                    ]
                )
                for k, fill in (
                    ("input_ids", vocab.pad_id),
                    ("attention_mask", 0),
                    ("labels", -100),
                )
            }
            ce, scored = token_losses(model, batch)
            total += float((ce * scored).sum())
            n += int(scored.sum())
    return total / max(n, 1)


def _padded(rows: Sequence[np.ndarray], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Id rows of different lengths as one right-padded batch and its attention mask."""
    ids, att = collate([np.asarray(r, dtype=np.int64) for r in rows], pad_id)
    return torch.from_numpy(ids), torch.from_numpy(att)


def random_dna(seq: str, rng: np.random.Generator) -> str:
    """A uniform random ACGT sequence as long as `seq`."""
    return "".join(np.array(list(BASES))[rng.integers(0, 4, len(seq))])


def loss_table(model, tok, test: pd.DataFrame, max_len: int, seed: int = 0) -> dict[str, float]:
    """The four losses of the module docstring on the test pairs."""
    vocab = Vocab.of_dnatext(tok)
    rng = np.random.default_rng(seed)
    true = [e["input_ids"] for e in tok.encode_batch(list(test["text"]))]
    fake_text = [
        t.replace(f"<dna>{s}</dna>", f"<dna>{random_dna(s, rng)}</dna>")
        for t, s in zip(test["text"], test["sequence"], strict=True)
    ]
    fake = [e["input_ids"] for e in tok.encode_batch(fake_text)]
    alone = [
        e["input_ids"] for e in tok.encode_batch([f"<dna>{s}</dna>" for s in test["sequence"]])
    ]
    return {
        "text_loss_true_dna": _mean_loss(model, true, vocab, "text", seed, max_len),
        "text_loss_random_dna": _mean_loss(model, fake, vocab, "text", seed, max_len),
        "dna_loss_with_text": _mean_loss(model, true, vocab, "dna", seed, max_len),
        "dna_loss_without_text": _mean_loss(model, alone, vocab, "dna", seed, max_len),
    }


def fit_product_sentence(tok, seq: str, product: str, max_len: int) -> np.ndarray:
    """The ids of :func:`~dnalm.multimodal.corpus.product_sentence`, its DNA cut from the
    end (whole tokens, the tags kept) so that the sentence fits the model's `max_len`."""
    enc = tok.encode(product_sentence(seq, product))["input_ids"]
    excess = len(enc) - max_len
    if excess <= 0:
        return enc
    close = int(np.flatnonzero(enc == tok.close_id)[0])
    open_ = int(np.flatnonzero(enc == tok.open_id)[0])
    if close - open_ - 1 < excess:
        raise ConfigError(
            f"dnatext.train.max_len ({max_len}) is too short for the retrieval sentence of "
            f"the product {product!r} ({len(enc) - (close - open_ - 1)} ids without its DNA)"
        )
    return np.concatenate([enc[: close - excess], enc[close:]])


def product_scores(model, tok, seq: str, products: Sequence[str], max_len: int) -> np.ndarray:
    """Mean pseudo-log-likelihood per product token of each product given `seq`."""
    rows, owner, targets = [], [], []
    n_verb = len(tok.text.encode("encodes", add_special_tokens=False).ids)
    for c, product in enumerate(products):
        enc = fit_product_sentence(tok, seq, product, max_len)
        close = int(np.flatnonzero(enc == tok.close_id)[0])
        # product tokens: after "</dna> encodes", before ". [SEP]"
        for pos in range(close + 1 + n_verb, len(enc) - 2):
            masked = enc.copy()
            masked[pos] = tok.mask_id
            rows.append(masked)
            owner.append(c)
            targets.append((pos, int(enc[pos])))
    scores = np.zeros(len(products))
    counts = np.zeros(len(products))
    with torch.no_grad():
        for i in range(0, len(rows), 64):
            chunk = rows[i : i + 64]
            ids, att = _padded(chunk, tok.pad_id)
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=att).logits.float(), -1)
            for j in range(len(chunk)):
                pos, tid = targets[i + j]
                scores[owner[i + j]] += float(logp[j, pos, tid])
                counts[owner[i + j]] += 1
    # a product with no tokens of its own has no likelihood: never ranked above a real one
    return np.where(counts > 0, scores / np.maximum(counts, 1), -np.inf)


def _rank_hits(ranked: Sequence[str], truth: str) -> tuple[bool, bool]:
    return (bool(ranked) and ranked[0] == truth), truth in list(ranked)[:5]


def frequent_product_ranking(train_products: Sequence[str], cands: Sequence[str]) -> list[str]:
    """The candidates ranked by their count among the training products (ties by name)."""
    counts = pd.Series(list(train_products), dtype=object).value_counts()
    return sorted(cands, key=lambda p: (-int(counts.get(p, 0)), p))


def retrieval(
    model,
    tok,
    train: pd.DataFrame,
    test: pd.DataFrame,
    max_candidates: int,
    max_queries: int,
    max_len: int,
    seed: int = 0,
) -> dict[str, float]:
    """Top-1/top-5 retrieval accuracy of the model, the two baselines and chance. The
    queries are a seeded draw of the test CDS whose product is a candidate.

    ``model`` ranks by the mean pseudo-log-likelihood of each product given the sequence,
    which also rewards products that are easy to predict whatever the DNA (long names of
    predictable pieces). ``model_pmi`` ranks by that score minus the same product's score
    given a random sequence of the same length: only what the sequence itself adds."""
    rng = np.random.default_rng(seed)
    # CDS without a product (e.g. GTF annotations: gene ids only) are no retrieval targets
    train = train[train["product"].str.strip() != ""]
    test = test[test["product"].str.strip() != ""]
    counts = test["product"].value_counts()
    cands = sorted(counts.index, key=lambda p: (-counts[p], p))[:max_candidates]
    queries = test[test["product"].isin(cands)]
    if len(queries) > max_queries:
        queries = queries.sample(n=max_queries, random_state=seed).sort_index()
    if queries.empty or len(cands) < 2:
        return {"retrieval_candidates": len(cands), "retrieval_queries": 0}
    train_freq = kmer_frequencies(list(train["sequence"]), 4)
    train_freq /= np.linalg.norm(train_freq, axis=1, keepdims=True).clip(1e-9)
    q_freq = kmer_frequencies(list(queries["sequence"]), 4)
    q_freq /= np.linalg.norm(q_freq, axis=1, keepdims=True).clip(1e-9)
    sims = q_freq @ train_freq.T
    prior = frequent_product_ranking(train["product"], cands)
    hits = dict.fromkeys(
        (
            "model_top1",
            "model_top5",
            "model_pmi_top1",
            "model_pmi_top5",
            "kmer_nn_top1",
            "kmer_nn_top5",
            "train_freq_top1",
            "train_freq_top5",
        ),
        0,
    )
    for qi, (_, q) in enumerate(queries.iterrows()):
        s = product_scores(model, tok, q["sequence"], cands, max_len)
        ranked = [cands[i] for i in np.argsort(-s, kind="stable")]
        h1, h5 = _rank_hits(ranked, q["product"])
        hits["model_top1"] += h1
        hits["model_top5"] += h5
        s = s - product_scores(model, tok, random_dna(q["sequence"], rng), cands, max_len)
        ranked = [cands[i] for i in np.argsort(-np.nan_to_num(s, nan=-np.inf), kind="stable")]
        h1, h5 = _rank_hits(ranked, q["product"])
        hits["model_pmi_top1"] += h1
        hits["model_pmi_top5"] += h5
        near: list[str] = []
        for j in np.argsort(-sims[qi], kind="stable"):
            p = train["product"].iloc[j]
            if p not in near:
                near.append(p)
            if len(near) == 5:
                break
        h1, h5 = _rank_hits(near, q["product"])
        hits["kmer_nn_top1"] += h1
        hits["kmer_nn_top5"] += h5
        h1, h5 = _rank_hits(prior, q["product"])
        hits["train_freq_top1"] += h1
        hits["train_freq_top5"] += h5
    n = len(queries)
    out: dict[str, Any] = {"retrieval_candidates": len(cands), "retrieval_queries": n}
    out.update({f"{k}_acc": v / n for k, v in hits.items()})
    out["chance_top1_acc"] = 1 / len(cands)
    out["chance_top5_acc"] = min(5, len(cands)) / len(cands)
    return out


def bits_per_nt(model, dna, seqs: Sequence[str], max_len: int, seed: int = 0) -> float:
    """Masked-token bits per nucleotide of a DNA-only model on `seqs` (15 % of tokens
    masked with a fixed seed; nats of the masked tokens / ln 2 / their nucleotides)."""
    vocab = Vocab.of_dna(dna)
    rows = [dna.encode(s, add_special_tokens=True).astype(np.int64) for s in seqs]
    nats, nts = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), 16):
            batch = masked_batch(
                rows[i : i + 16],
                vocab,
                np.random.default_rng(seed + i),
                0.15,
                max_len,
                "dna",
                False,
            )
            ce, scored = token_losses(model, batch)
            nats += float((ce * scored).sum())
            lengths = dna.token_lengths(batch["labels"][scored].numpy().astype(np.uint16))
            nts += int(lengths.sum())
    return nats / np.log(2) / max(nts, 1)


def mean_embeddings(model, dna, seqs: Sequence[str], max_len: int) -> np.ndarray:
    """Mean-pooled last hidden states of a DNA-only model (non-special tokens)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(seqs), 16):
            rows = [
                dna.encode(s, add_special_tokens=True).astype(np.int64)[:max_len]
                for s in seqs[i : i + 16]
            ]
            ids, att = _padded(rows, dna.pad_id)
            h = model(input_ids=ids, attention_mask=att, output_hidden_states=True).hidden_states[
                -1
            ]
            m = att[..., None].float()
            out.append(((h * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out)


def species_probe(train_x, train_y, test_x, test_y) -> float | None:
    """Test accuracy of a logistic-regression species probe (None with one species)."""
    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.linear_model import LogisticRegression

    # lazy: scikit-learn (~1 s) is imported only when a model is fitted
    from sklearn.preprocessing import StandardScaler

    if len(set(train_y)) < 2 or len(test_y) == 0:
        return None
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y)
    return float(clf.score(scaler.transform(test_x), test_y))
