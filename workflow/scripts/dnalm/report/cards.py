"""Hugging Face model cards (``README.md``) of the model folders the workflow writes.

A card is YAML metadata that ``huggingface_hub.ModelCard.load`` parses, then prose:

- metadata: ``library_name: transformers``, ``pipeline_tag``, ``tags``, ``base_model`` (a
  fine-tuned model's pretrained model), ``datasets`` (the samples' accessions or sources),
  ``model-index`` with the test metrics exactly as ``metrics.json`` has them, and a
  ``dnalm`` block: the same metrics, their 95% CI where the workflow computes one, the
  baseline they were compared with, whether the model beats it, and the provenance file;
- prose: what the model was trained on and how, the metrics table with the baseline rows,
  and a plain sentence when the model does not beat its baseline.

Pretrained models are compared with the strongest count (Markov-k / n-gram) baseline of
their own ``metrics.json`` (lower test loss wins; there is no CI: the test split is scored
once, per-window losses are not kept). Fine-tuned models (merged LoRA ones included) are
compared with the strongest baseline row of their task's comparison table, with its
paired-bootstrap 95% CI of the difference (:mod:`dnalm.finetuning.compare`).

Torch-free (huggingface_hub only).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from dnalm.core.artifacts import METRICS_JSON, PROVENANCE_JSON
from dnalm.core.errors import InputFormatError
from dnalm.core.io import atomic_write
from dnalm.core.seeds import replicate_base
from dnalm.kinds.tasks import TASK_KINDS

#: the pipeline tag of a pretraining objective
PRETRAIN_PIPELINE = {"gpt": "text-generation", "mlm": "fill-mask"}
#: the pretraining metrics on a card, in table order
PRETRAIN_METRICS = ("bits_per_nt", "loss", "perplexity", "accuracy")
TAGS = ("dnalm", "dna", "genomics", "biology")


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _fmt(value: Any) -> str:
    x = _number(value)
    return "n/a" if x is None else f"{x:.4g}"


def _metadata(**fields: Any):
    from huggingface_hub import ModelCardData  # lazy: keeps huggingface_hub out of imports

    return ModelCardData(library_name="transformers", **fields)


def _card(data, body: str):
    from huggingface_hub import ModelCard  # lazy: keeps huggingface_hub out of imports

    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n")


def _results(model_name: str, task_type: str, dataset: str, metrics: Mapping):
    """model-index entries: each test metric of the model, as metrics.json has it."""
    from huggingface_hub import EvalResult  # lazy: keeps huggingface_hub out of imports

    return [
        EvalResult(
            task_type=task_type,
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split="test",
            metric_type=name,
            metric_name=name,
            metric_value=value,
        )
        for name, value in metrics.items()
    ]


def _source_name(source: str) -> str:
    """An accession or URL as it is; a local file by its name alone (no machine path on a
    card that may be published)."""
    if "://" in source or os.sep not in source:
        return source
    return os.path.basename(source)


def _primary(sample: str, record: Mapping[str, Any]) -> str:
    return _source_name(
        str(((record.get("files") or {}).get("primary") or {}).get("source") or sample)
    )


def _datasets(samples: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The accessions (or URLs, file names) of the samples' primary sources."""
    return [_primary(s, rec) for s, rec in sorted(samples.items())]


def _samples_text(provenance: Mapping[str, Any]) -> str:
    samples = provenance.get("samples") or {}
    if not samples:
        return "no genome sample of this run"
    return ", ".join(
        f"`{s}` ({rec.get('species') or 'species not given'}; {_primary(s, rec)})"
        for s, rec in sorted(samples.items())
    )


def pretrain_card(
    name: str,
    run_record: Mapping[str, Any],
    metrics: Mapping[str, Any],
    provenance: Mapping[str, Any],
):
    """The card of pretrained model `name`: its run record (run.json), test metrics
    (metrics.json, with the count baselines) and provenance record."""
    objective = str(run_record.get("objective") or metrics.get("objective") or "gpt")
    model = metrics.get("model") or {}
    baseline = metrics.get("baseline") or {}
    values = {m: _number(model.get(m)) for m in PRETRAIN_METRICS}
    values = {m: v for m, v in values.items() if v is not None}
    loss, base_loss = _number(model.get("loss")), _number(baseline.get("loss"))
    beats = None if loss is None or base_loss is None else loss < base_loss
    corpus = os.path.basename(os.path.dirname(str(run_record.get("corpus") or ""))) or "?"
    dataset = f"dnalm corpus {corpus}"
    data = _metadata(
        model_name=name,
        pipeline_tag=PRETRAIN_PIPELINE.get(objective, "feature-extraction"),
        tags=[*TAGS, objective, str(run_record.get("architecture") or "")],
        datasets=_datasets(provenance.get("samples") or {}),
        eval_results=_results(name, PRETRAIN_PIPELINE.get(objective, objective), dataset, values),
        dnalm={
            "stage": "pretrained",
            "test_metrics": values,
            "ci95": None,
            "ci95_reason": "the test split is scored once; per-window losses are not kept",
            "baseline": {
                "name": baseline.get("name"),
                "kind": "count (Markov-k / n-gram), fitted on the training split",
                **{m: _number(baseline.get(m)) for m in PRETRAIN_METRICS if m in baseline},
            },
            "beats_baseline": beats,
            "compared_on": "test loss (nats per target token)",
            "provenance": PROVENANCE_JSON,
        },
    )
    rows = [("this model", model)] + [(b.get("name"), b) for b in metrics.get("baselines") or []]
    table = "| | " + " | ".join(PRETRAIN_METRICS) + " |\n|---|" + "---|" * len(PRETRAIN_METRICS)
    for label, res in rows:
        table += f"\n| {label} | " + " | ".join(_fmt(res.get(m)) for m in PRETRAIN_METRICS) + " |"
    if loss is None or base_loss is None:
        verdict = (
            "**No test comparison**: the model or its count baseline was not scored on the "
            "test split (pretrain.train.test_eval: false?), so nothing says it beats the "
            "baseline."
        )
    elif beats:
        verdict = (
            f"It beats its strongest count baseline, `{baseline.get('name')}` (test loss "
            f"{_fmt(loss)} against {_fmt(base_loss)} nats per target)."
        )
    else:
        verdict = (
            f"**This model does not beat its count baseline**: `{baseline.get('name')}`, a "
            f"Markov model fitted on the same training tokens, reaches a test loss of "
            f"{_fmt(base_loss)} nats per target against the model's {_fmt(loss)}. Do not "
            "use it where the baseline would do."
        )
    train = run_record.get("train") or {}
    params = (run_record.get("params") or {}).get("total")
    body = f"""
# {name}

A DNA language model pretrained by the dnalm workflow: objective {objective}, architecture
`{run_record.get("architecture")}`, preset `{run_record.get("preset")}`,
{f"{params:,}" if isinstance(params, int) else "?"} parameters.

## Training data

The corpus `{corpus}` (tokenizer `{run_record.get("tokenizer")}`, windows of
{run_record.get("block_size")} tokens), built from {_samples_text(provenance)}. Train,
validation and test are split without leakage by the workflow; the split assignment's hash,
the leakage summary and the sha256 of every source file are in `{PROVENANCE_JSON}`.

## Training

Steps: {run_record.get("steps")} ({run_record.get("tokens_seen")} tokens seen); learning
rate: {train.get("lr")}; seed: {train.get("seed")}; precision: {run_record.get("precision")};
device: {run_record.get("device")}. The weights are those of the best validation loss (step
{run_record.get("best_step")}).

## Evaluation

Test split, {metrics.get("targets") or "held-out tokens"}; from `{METRICS_JSON}`.

{table}

{verdict} No confidence interval is given: the test split is scored once.

## Use

```python
from transformers import AutoModel, AutoTokenizer
model = AutoModel.from_pretrained("<this folder or repo>")
tokenizer = AutoTokenizer.from_pretrained("<this folder or repo>")
```
"""
    return _card(data, body)


def comparison_rows(
    table: Sequence[Mapping[str, Any]], run: str, where: str = "the comparison table"
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the row of `run`'s entry, the best baseline's row or None) of a comparison table;
    InputFormatError naming `where` when the entry has no row."""
    rows = {str(r["run"]): dict(r) for r in table}
    entry = replicate_base(run)
    if entry not in rows:
        raise InputFormatError(
            f"{where}: no row for run {entry!r} (rows: {', '.join(sorted(rows))}); the table "
            "predates the run: delete it and rerun so that rule finetune_compare writes it again"
        )
    mine = rows[entry]
    best = str(mine.get("best_baseline") or "")
    return mine, rows.get(best)


def finetune_card(
    run: str,
    task: str,
    metrics: Mapping[str, Any],
    row: Mapping[str, Any],
    baseline: Mapping[str, Any] | None,
    base_model: str,
    provenance: Mapping[str, Any],
):
    """The card of fine-tuning run `run` on `task`: its metrics.json, its entry's row of
    the comparison table and the best baseline's row (None: the table has no baseline)."""
    kind = str(metrics.get("kind") or "")
    spec = TASK_KINDS.get(kind)
    main = spec.main_metric
    values = {k: v for k, v in (metrics.get("metrics") or {}).items() if _number(v) is not None}
    pipeline = "token-classification" if spec.per_base else "text-classification"
    value = _number(row.get(main))
    lo, hi = _number(row.get("ci95_low")), _number(row.get("ci95_high"))
    delta = {
        "estimate": _number(row.get("delta_vs_best_baseline")),
        "ci95_low": _number(row.get("delta_ci95_low")),
        "ci95_high": _number(row.get("delta_ci95_high")),
    }
    base_value = _number(baseline.get(main)) if baseline else None
    beats = value is not None and base_value is not None and value > base_value
    clear = beats and delta["ci95_low"] is not None and delta["ci95_low"] > 0
    regime = str(metrics.get("regime") or "")
    n_seeds = int(_number(row.get("n_seeds")) or 1)
    data = _metadata(
        model_name=run,
        pipeline_tag=pipeline,
        tags=[*TAGS, kind, f"regime-{regime}", *(["lora", "merged-lora"] * (regime == "lora"))],
        base_model=base_model,
        datasets=_datasets(provenance.get("samples") or {}),
        eval_results=_results(run, pipeline, f"dnalm task {task}", values),
        dnalm={
            "stage": "fine-tuned",
            "task": task,
            "kind": kind,
            "regime": regime,
            "test_metrics": values,
            "main_metric": main,
            "ci95": {
                "metric": main,
                "estimate": value,
                "low": lo,
                "high": hi,
                "over": f"{row.get('metric') or spec.metric_text}, bootstrap over test items",
                "n_seeds": n_seeds,
            },
            "baseline": (
                {
                    "name": str(baseline["run"]),
                    main: base_value,
                    "ci95_low": _number(baseline.get("ci95_low")),
                    "ci95_high": _number(baseline.get("ci95_high")),
                }
                if baseline
                else None
            ),
            "delta_vs_baseline": delta,
            "beats_baseline": beats,
            "beats_baseline_clearly": clear,
            "provenance": PROVENANCE_JSON,
        },
    )
    bname = f"`{baseline['run']}`" if baseline else "none"
    if not baseline:
        verdict = "The comparison table has no baseline row: nothing was compared."
    elif not beats:
        verdict = (
            f"**This model does not beat its strongest baseline**: {bname} reaches {main} "
            f"{_fmt(base_value)} against the model's {_fmt(value)} on the same test items."
        )
    elif not clear:
        verdict = (
            f"It scores above its strongest baseline {bname} ({_fmt(value)} against "
            f"{_fmt(base_value)}), but the 95% CI of the difference "
            f"[{_fmt(delta['ci95_low'])}, {_fmt(delta['ci95_high'])}] includes zero: it does "
            "not clearly beat it."
        )
    else:
        verdict = (
            f"It beats its strongest baseline {bname}: {main} {_fmt(value)} against "
            f"{_fmt(base_value)}, difference {_fmt(delta['estimate'])} (95% CI "
            f"[{_fmt(delta['ci95_low'])}, {_fmt(delta['ci95_high'])}])."
        )
    seeds = f" (mean of {n_seeds} seed replicates)" if n_seeds > 1 else ""
    table = f"| | {main} | 95% CI |\n|---|---|---|\n| this model{seeds} | {_fmt(value)} | "
    table += f"[{_fmt(lo)}, {_fmt(hi)}] |"
    if baseline:
        table += (
            f"\n| baseline {bname} | {_fmt(base_value)} | [{_fmt(baseline.get('ci95_low'))}, "
            f"{_fmt(baseline.get('ci95_high'))}] |"
        )
    listed = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in values.items())
    merged = (
        f" The LoRA adapters ({metrics.get('lora_layers_merged')} layers) are merged into the "
        "weights: the folder is a plain transformers model."
        if regime == "lora"
        else ""
    )
    cfg = metrics.get("config") or {}
    body = f"""
# {run}

`{base_model}` fine-tuned on the task `{task}` ({kind}) by the dnalm workflow, regime
`{regime}`.{merged} The task head's weights are in `head.safetensors`; the backbone loads
with the transformers Auto classes.

## Training data

The task `{task}`: {metrics.get("n_train")} training, {metrics.get("n_validation")}
validation and {metrics.get("n_test")} test examples. Samples behind the base model and the
task: {_samples_text(provenance)}. The sha256 of the task table, the split assignment and
the sources are in `{PROVENANCE_JSON}`.

## Training

Parameters trained: {metrics.get("trainable_params")} of {metrics.get("total_params")};
seed: {cfg.get("seed")}; learning rate: {cfg.get("lr")}; batch size: {cfg.get("batch_size")};
best epoch by {metrics.get("selection_metric")}.

## Evaluation

Test metrics of this folder (`{METRICS_JSON}`):

| metric | value |
|---|---|
{listed}

Against the strongest baseline of the task's comparison table ({row.get("metric") or main},
bootstrap 95% CIs over test items):

{table}

{verdict}
"""
    return _card(data, body)


def write_card(path: str | os.PathLike, card) -> None:
    """Write `card` (a ModelCard) to `path`, atomically."""
    with atomic_write(path) as fh:
        fh.write(str(card))
