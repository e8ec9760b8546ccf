"""The generation stage's jobs: sample from a causal model and from the count-model baseline
(:func:`generate_sets`), judge the sets against the natural held-out sequences
(:func:`metrics_table`) and gather every model's table
(:func:`dnalm.generation.metrics.summary_table`, torch-free for the summary job).

Sets of one model, under ``results/generate/{model}/``:

* ``samples.fa.gz``: the model's samples. ``n_prefix`` continuations of held-out prefixes
  (the first ``prefix_nt`` nt, whole tokens of the model's tokenizer and, on a CDS corpus,
  whole codons; ids ``prefix{i}``, the held-out id in the header) and ``n_free`` samples from
  [BOS] alone (``free{i}``). Each has at most ``prefix_nt + max_new_nt`` nt (free samples
  too, so every set has the same cap); sampling ends at [EOS], at an in-frame stop codon (CDS
  corpora) or at that cap.
* ``markov.fa.gz``: the count-model sampler (:mod:`dnalm.generation.markov`), the same
  prefixes and number of free samples, the same cap.
* ``natural.fa.gz``: held-out sequences cut to the same cap (whole codons on CDS): the
  reference set (kind ``natural``: as many as the model's samples, the prompted ones first)
  and a second, disjoint draw of as many (kind ``control``), which is judged against the
  reference like a generated set (the row ``natural`` of metrics.tsv: what a perfect
  generator would score at this set size and length cap). Fewer when the test split has too
  few sequences.
* ``samples.tsv``: one row per sequence of the three sets (column ``source``: model,
  markov, natural) with kind, prefix id, length, GC, GC3, ORF validity and stop reason.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from dnalm.core.artifacts import SAMPLES_TSV
from dnalm.core.device import select_device
from dnalm.core.errors import ConfigError
from dnalm.core.io import atomic_write, header_tags, read_fasta, write_fasta
from dnalm.core.log import progress_disabled
from dnalm.evaluation.embed import embed_sequences, load_text_tokenizer
from dnalm.evaluation.inference import load_lm
from dnalm.generation.markov import MarkovSampler
from dnalm.generation.metrics import KmerIndex, set_metrics
from dnalm.generation.sampling import encode_prefix, sample_batch
from dnalm.generation.sequences import (
    Record,
    choose_held_out,
    prefix_length,
    properties,
    read_sequences,
)
from dnalm.modeling.loader import load_model_folder

log = logging.getLogger(__name__)

SOURCES = ("model", "markov", "natural")
TSV_COLUMNS = [
    "source",
    "id",
    "kind",
    "prefix_id",
    "length",
    "gc",
    "gc3",
    "valid_orf",
    "orf_check",
    "stop",
]


def _check(settings: Mapping) -> None:
    for key in ("n_prefix", "n_free"):
        if int(settings[key]) < 0:
            raise ConfigError(f"generate.{key} must be >= 0, got {settings[key]}")
    if int(settings["n_prefix"]) + int(settings["n_free"]) < 2:
        raise ConfigError("generate: n_prefix + n_free must be at least 2 (metrics need sets)")
    if int(settings["max_new_nt"]) < 1:
        raise ConfigError(f"generate.max_new_nt must be >= 1, got {settings['max_new_nt']}")


def _write_fasta(path: str | os.PathLike, records: Sequence[Record]) -> None:
    with atomic_write(path) as fh:
        write_fasta(
            fh,
            (
                (
                    f"{r.id} kind={r.kind} prefix_id={r.prefix_id or '-'} stop={r.stop}",
                    r.seq,
                )
                for r in records
            ),
        )


def read_set(path: str | os.PathLike) -> list[Record]:
    """Records of a set written by :func:`generate_sets`."""
    out = []
    for header, seq, _ in read_fasta(path):
        sid, tags = header_tags(header)
        pid = tags.get("prefix_id", "-")
        out.append(
            Record(sid, seq, tags.get("kind", ""), "" if pid == "-" else pid, tags.get("stop", ""))
        )
    return out


def generate_sets(
    model_dir: str | os.PathLike,
    test_fastas: Sequence[str | os.PathLike],
    train_fastas: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    settings: Mapping,
    *,
    unit: int,
    cds: bool,
    device: str = "cpu",
    external: Mapping | None = None,
) -> dict[str, int]:
    """Write samples.fa.gz, markov.fa.gz, natural.fa.gz and samples.tsv into `out_dir`
    (module docstring). `unit`: nt per token; `cds`: the corpus is CDS (stop codons end
    samples, ORF validity is reported); `external`: an external causal model
    (``{"entry", "record"}``) sampled instead of `model_dir`. Returns the number of
    sequences per set."""
    _check(settings)
    out_dir = Path(out_dir)
    n_prefix, n_free = int(settings["n_prefix"]), int(settings["n_free"])
    max_new_nt, seed = int(settings["max_new_nt"]), int(settings["seed"])
    p_nt = prefix_length(int(settings["prefix_nt"]), unit, cds)
    where = ", ".join(str(p) for p in test_fastas)
    n = n_prefix + n_free
    # the first n: the reference (and the prompts); the next n: the natural control set
    held = choose_held_out(read_sequences(test_fastas), 2 * n, p_nt, seed, cds, where)
    cap = p_nt + max_new_nt
    natural = [
        Record(
            sid,
            s[: cap - cap % (3 if cds else 1)],
            "natural" if i < n else "control",
            sid,
            "truncated" if len(s) > cap else "natural",
        )
        for i, (sid, s) in enumerate(held)
    ]
    prefixes = [(sid, s[:p_nt]) for sid, s in held[:n_prefix]]
    jobs = [("prefix", f"prefix{i + 1}", sid, p) for i, (sid, p) in enumerate(prefixes)]
    jobs += [("free", f"free{i + 1}", "", "") for i in range(n_free)]

    lm = load_lm(model_dir, str(select_device(device)), external)
    torch.manual_seed(seed)
    gen = torch.Generator(device=lm.device).manual_seed(seed)
    # jobs with the same token budget in one call: prompts of one length are sampled
    # together, with the model's cache
    budgets: dict[int, list[int]] = {}
    for i, (_, _, _, prefix) in enumerate(jobs):
        budgets.setdefault(math.ceil((cap - len(prefix)) / unit), []).append(i)
    found: dict[int, tuple[str, str]] = {}
    for budget, group in tqdm(
        budgets.items(), desc="generate", unit="batch", disable=progress_disabled()
    ):
        prompts = [encode_prefix(lm, jobs[i][3]) for i in group]
        done = sample_batch(
            lm,
            prompts,
            budget,
            float(settings["temperature"]),
            settings.get("top_k"),
            gen,
            stop_codon=cds,
            top_p=settings.get("top_p"),
        )
        found.update(zip(group, done, strict=True))
    samples = []
    for i, (kind, rid, pid, _) in enumerate(jobs):
        seq, stop = found[i]
        if len(seq) > cap:
            seq, stop = seq[:cap], "length_cap"
        samples.append(Record(rid, seq, kind, pid, stop))

    train = [s for _, s in read_sequences(train_fastas)]
    order = 2 if unit == 3 else int(settings["markov_order"])
    sampler = MarkovSampler(order, 3 if unit == 3 else 1).fit(train)
    rng = np.random.default_rng(seed)
    markov = []
    for kind, rid, pid, prefix in jobs:
        seq, stop = sampler.sample(prefix, cap - len(prefix), rng, stop_codon=cds)
        markov.append(Record(rid, seq, kind, pid, stop))

    _write_fasta(out_dir / "samples.fa.gz", samples)
    _write_fasta(out_dir / "markov.fa.gz", markov)
    _write_fasta(out_dir / "natural.fa.gz", natural)
    with atomic_write(out_dir / SAMPLES_TSV) as fh:
        w = csv.DictWriter(fh, TSV_COLUMNS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        for source, recs in zip(SOURCES, (samples, markov, natural), strict=True):
            for r in recs:
                w.writerow(properties(r, source, cds))
    counts = {"model": len(samples), "markov": len(markov), "natural": len(natural)}
    counts["control"] = sum(r.kind == "control" for r in natural)
    log.info("%s: %s (prefix %d nt, cap %d nt)", out_dir, counts, p_nt, cap)
    return counts


def embed_mean(
    model_dir: str | os.PathLike, seqs: Sequence[str], device: str = "cpu", batch_size: int = 64
) -> np.ndarray:
    """Mean-pooled last-layer embeddings of `seqs` under the model folder (N, D)."""
    loaded = load_model_folder(model_dir, kind="auto", device=select_device(device))
    hf, to_text, _ = load_text_tokenizer(model_dir)
    limit = getattr(loaded.config, "max_position_embeddings", None) or getattr(
        loaded.config, "dnalm_context", None
    )
    emb, _, _ = embed_sequences(
        loaded.model,
        hf,
        list(seqs),
        pooling="mean",
        batch_size=batch_size,
        max_length=int(limit) if limit else None,
        to_text=to_text,
        model_name=str(model_dir),
    )
    return emb


def _starts(records: Sequence[Record], natural: Mapping[str, str]) -> list[set[str]]:
    """Accepted start codons: ATG, and the first codon of the held-out CDS a sample continues."""
    return [{"ATG", natural.get(r.prefix_id, "")[:3]} if r.prefix_id else {"ATG"} for r in records]


#: stop reasons of a sequence cut at the length cap (generated; natural)
CAPPED = ("length_cap", "truncated")


def _subset(records: Sequence[Record], k: int) -> list[Record]:
    """`k` of `records`, a seeded draw kept in their order (prefix and free samples alike)."""
    if len(records) <= k:
        return list(records)
    keep = np.sort(np.random.default_rng(0).permutation(len(records))[:k])
    return [records[i] for i in keep]


def metrics_table(
    model: str,
    set_dir: str | os.PathLike,
    train_fastas: Sequence[str | os.PathLike],
    reference_model: str | os.PathLike | None,
    out_tsv: str | os.PathLike,
    *,
    cds: bool,
    reference_name: str = "",
    device: str = "cpu",
) -> pd.DataFrame:
    """metrics.tsv of one model: rows `model`, `markov` and `natural` (the natural control
    draw: what a perfect generator would score), each judged against the natural reference
    set with sets of one size (the smallest of the four; a seeded subset of a larger one)
    and one length cap. Metrics as :func:`dnalm.generation.metrics.set_metrics`."""
    set_dir = Path(set_dir)
    sets = {
        s: read_set(set_dir / f"{f}.fa.gz")
        for s, f in zip(SOURCES, ("samples", "markov", "natural"), strict=True)
    }
    nat_by_id = {r.id: r.seq for r in sets["natural"]}
    compared = {
        "model": sets["model"],
        "markov": sets["markov"],
        "natural": [r for r in sets["natural"] if r.kind == "control"],
    }
    reference = [r for r in sets["natural"] if r.kind != "control"]
    if len(compared["natural"]) < 2:
        log.warning("%s: fewer than 2 natural control sequences: no natural row", set_dir)
        del compared["natural"]
    size = min(len(reference), *(len(v) for v in compared.values()))
    reference = _subset(reference, size)
    compared = {s: _subset(v, size) for s, v in compared.items()}
    index = KmerIndex([s for _, s in read_sequences(train_fastas)])
    emb = {}
    if reference_model is not None:
        order = ["reference", *compared]
        recs = [reference, *compared.values()]
        e = embed_mean(reference_model, [r.seq for rs in recs for r in rs], device)
        bounds = np.cumsum([0, *(len(rs) for rs in recs)])
        emb = {s: e[a:b] for s, a, b in zip(order, bounds[:-1], bounds[1:], strict=True)}
    rows = []
    for source, recs in compared.items():
        row = set_metrics(
            [r.seq for r in reference],
            [r.seq for r in recs],
            cds=cds,
            starts=_starts(recs, nat_by_id),
            capped=[r.stop in CAPPED for r in recs],
            natural_emb=emb.get("reference"),
            generated_emb=emb.get(source),
            index=index,
        )
        rows.append({"model": model, "row": model if source == "model" else source, **row})
    df = pd.DataFrame(rows)
    log.info(
        "%s: %d sequences per set; 6-mer JSD %s, valid ORFs %s (rows %s)",
        model,
        size,
        [round(v, 4) for v in df["jsd_k6"]],
        [round(v, 3) for v in df["valid_orf"]],
        list(df["row"]),
    )
    df.insert(2, "reference_model", reference_name)
    with atomic_write(out_tsv) as fh:
        df.to_csv(fh, sep="\t", index=False, float_format="%.6g", na_rep="NA")
    return df
