"""Why does a frozen pretrained causal model lose to the same architecture with random weights
on a per-base task? Measure, in one process, what each layer's token states still say about
the bases around them and about the task's per-base target.

For a model folder (pretrained) and the same architecture with seeded random weights, on the
test windows of a per-base task table (``results/tasks/{task}/data.tsv``):

* base identity: held-out accuracy of a multinomial logistic regression that reads the state
  at position t and names the base at t + d (d = 0: the token itself; d < 0: earlier bases;
  chance ~0.25-0.3). A causal language model's upper layers are trained to predict t + 1 and
  may drop what t itself was;
* effective dimension: the participation ratio of the states' covariance spectrum (how many
  directions a head can use);
* task signal: held-out Pearson r of a ridge regression of the per-base target at t from the
  states at t-5 .. t+5 (the receptive field of DNA-LLM's Conv1d head, kernel 11), the part of
  the task a linear head can read.

Usage (after the CPU reproduction, README "Reproducing published results"):

    python benchmarks/diagnose_frozen_features.py \
        --model results/models/gpt_nucleotide --task results/tasks/tf_binding/data.tsv

Prints one row per layer: pretrained and random-init values side by side and their ratio.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from dnalm.modeling.loader import load_model_folder


def token_states(model, tokenizer, seqs: list[str]) -> list[np.ndarray]:
    """Per layer (embeddings first), the states of each base token: (N, L, D) each, for
    [BOS] + bases as the corpus windows start. Assumes one token per base (nucleotide)."""
    out: list[list[np.ndarray]] = []
    with torch.inference_mode():
        for seq in seqs:
            bos = tokenizer.special_ids["bos_id"]
            ids = torch.tensor([[bos, *map(int, tokenizer.encode(seq))]], dtype=torch.long)
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
            if not out:
                out = [[] for _ in hidden]
            for layer, h in enumerate(hidden):
                out[layer].append(h[0, 1 : 1 + len(seq)].float().numpy())
    return [np.stack(x) for x in out]


def identity_accuracy(states: np.ndarray, seqs: list[str], offset: int, rng) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    length = states.shape[1]
    pos = np.arange(max(0, -offset), length - max(0, offset))
    base = np.array([[s[p + offset] for p in pos] for s in seqs])  # (N, P)
    x = states[:, pos].reshape(-1, states.shape[-1])
    y = base.reshape(-1)
    keep = rng.choice(len(y), size=min(len(y), 20_000), replace=False)
    x, y = x[keep], y[keep]
    cut = int(0.8 * len(y))
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    clf.fit(x[:cut], y[:cut])
    return float((clf.predict(x[cut:]) == y[cut:]).mean())


def effective_dim(states: np.ndarray) -> float:
    """Participation ratio (sum of eigenvalues)^2 / sum of squared eigenvalues of the
    states' covariance: how many directions the representation really uses."""
    x = states.reshape(-1, states.shape[-1]).astype(np.float64)
    ev = np.linalg.eigvalsh(np.cov(x, rowvar=False)).clip(min=0)
    return float(ev.sum() ** 2 / (ev**2).sum())


def task_r(states: np.ndarray, targets: np.ndarray, half: int = 5) -> float:
    from sklearn.linear_model import Ridge

    n, length = states.shape[:2]
    pos = np.arange(half, length - half)
    x = np.concatenate([states[:, pos + k] for k in range(-half, half + 1)], axis=-1)
    y = targets[:, pos]
    cut = int(0.8 * n)  # whole windows held out
    ridge = Ridge(alpha=10.0).fit(x[:cut].reshape(-1, x.shape[-1]), y[:cut].reshape(-1))
    pred = ridge.predict(x[cut:].reshape(-1, x.shape[-1]))
    return float(np.corrcoef(pred, y[cut:].reshape(-1))[0, 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a pretrained causal model folder")
    ap.add_argument("--task", required=True, help="a per-base task table (data.tsv)")
    ap.add_argument("--windows", type=int, default=150, help="test windows to use")
    ap.add_argument("--offsets", default="0,-1,-5", help="base offsets d for identity")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    df = pd.read_csv(args.task, sep="\t")
    test = df[df["split"] == "test"].head(args.windows)
    seqs = test["sequence"].str.upper().tolist()
    targets = np.array([[float(v) for v in t.split(",")] for t in test["targets"]])
    offsets = [int(d) for d in args.offsets.split(",")]
    rows = []
    for label, random_init in (("pretrained", False), ("random-init", True)):
        loaded = load_model_folder(args.model, kind="lm", random_init=random_init, seed=args.seed)
        states = token_states(loaded.model.eval(), loaded.tokenizer, seqs)
        for layer, st in enumerate(states):
            row = {"weights": label, "layer": layer, "task_r": task_r(st, targets)}
            row["effective_dim"] = effective_dim(st)
            for d in offsets:
                row[f"base_t{d:+d}"] = identity_accuracy(st, seqs, d, rng)
            rows.append(row)
    table = pd.DataFrame(rows).pivot(index="layer", columns="weights")
    pd.set_option("display.width", 200)
    print(table.round(3).to_string())
    ratio = table.xs("pretrained", axis=1, level=1) / table.xs("random-init", axis=1, level=1)
    print("\npretrained / random-init:")
    print(ratio.round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
