"""The name of every file a stage writes into an output folder, with what writes and what
reads it, so that a writer and its readers cannot drift apart and a reader who meets a name
in ``results/`` finds its producer here.

Code joins these names to a folder (``folder / METRICS_JSON``); the Snakemake rule files
spell the same paths out in full (``results/models/{model}/metrics.json``), as their inputs
and outputs must be literal. Formats shared by several stages have their reader here:
:func:`read_run_record`, :func:`read_metrics` (both JSON objects, read with
:func:`dnalm.core.io.read_json_object`, which names the file and what it should be when it
is missing or broken). The other formats are written and read by the one module named.

Torch-free; every stage may import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dnalm.core.io import read_json_object

# ----------------------------------------------------------------- pretraining (models/{model})

#: Pretraining run record (arch, params, tokens seen, tokenizer, git state). Written by
#: dnalm.training.pretrain; read by dnalm.modeling.loader, dnalm.evaluation.scaling and
#: dnalm.report.pretrain_plots (:func:`read_run_record`).
RUN_JSON = "run.json"
#: Test metrics of a run as one JSON object. Pretraining: written by
#: dnalm.training.lm_eval (``model.bits_per_nt`` ...); fine-tuning and baselines: by
#: dnalm.core.metrics.write_metrics_json. Read by dnalm.evaluation.scaling,
#: dnalm.interpretation.run, dnalm.report.pretrain_plots and dnalm.report.finetune_plots
#: (:func:`read_metrics`).
METRICS_JSON = "metrics.json"
#: The pretraining test metrics as a table (one row per model and baseline); written by
#: dnalm.training.lm_eval, read by people.
METRICS_TSV = "metrics.tsv"
#: Learning curves, one row per evaluation: written by dnalm.training.pretrain,
#: dnalm.finetuning (finetune, baselines) and dnalm.multimodal.pipeline; read by
#: dnalm.report.pretrain_plots and dnalm.report.finetune_plots.
CURVES_CSV = "curves.csv"
#: The launch settings of a pretraining job (a JSON object); written by the rule script
#: pretrain.py for the training processes it starts.
LAUNCH_JSON = "launch.json"

# ------------------------------------------------- checkpoints (dnalm.training.checkpoint)

#: Optimiser, scheduler and RNG state of a checkpoint folder (torch.save).
TRAINER_STATE_PT = "trainer_state.pt"
#: Step and losses of a checkpoint folder, for people.
STATE_JSON = "state.json"
#: The newest complete checkpoint folder ({"dir": ..., "step": ...}).
LAST_JSON = "last.json"
#: The checkpoint folder of the best validation loss (same format as LAST_JSON).
BEST_JSON = "best.json"
#: The weights of every checkpoint of a run that keeps them (``pretrain.train.
#: keep_checkpoints``), one ``step-N/`` folder each under the checkpoints folder; written by
#: dnalm.training.checkpoint (:func:`keep_weights`), read by dnalm.evaluation.analytics.
KEPT_CHECKPOINTS_DIR = "kept_checkpoints"

# ------------------------------------------------ model and tokenizer folders (Hugging Face)

#: A model's configuration; written by dnalm.training.checkpoint (export), read by
#: dnalm.modeling.loader and dnalm.multimodal.probe_embed.
CONFIG_JSON = "config.json"
#: Model weights (safetensors); written by the checkpoint export, dnalm.finetuning.baselines;
#: read by dnalm.modeling.loader and dnalm.interpretation.run.
WEIGHTS_SAFETENSORS = "model.safetensors"
#: Index of sharded safetensors weights (folders from elsewhere; read by dnalm.modeling.loader).
WEIGHTS_SAFETENSORS_INDEX = "model.safetensors.index.json"
#: Pickled weights and their index (folders from elsewhere); dnalm.modeling.loader refuses them.
WEIGHTS_PICKLE = "pytorch_model.bin"
WEIGHTS_PICKLE_INDEX = "pytorch_model.bin.index.json"
#: A Hugging Face tokenizer; written by dnalm.tokenization.tokenizers (and the DNA+text
#: tokenizer's ``text/``), read by dnalm.tokenization.build, dnalm.training.lm_data and
#: dnalm.multimodal.tokenizer.
TOKENIZER_JSON = "tokenizer.json"
#: The special tokens of a Hugging Face tokenizer folder; written by
#: dnalm.tokenization.tokenizers.
SPECIAL_TOKENS_MAP_JSON = "special_tokens_map.json"
#: dnalm's own tokenizer description (kind, k, specials, hash); written by
#: dnalm.tokenization.tokenizers, read by dnalm.tokenization.build, dnalm.modeling.loader,
#: dnalm.training.lm_data, dnalm.evaluation.embed and dnalm.finetuning.finetune.
DNALM_TOKENIZER_JSON = "dnalm_tokenizer.json"
#: The DNA+text tokenizer's offsets, tags and specials; written and read by
#: dnalm.multimodal.tokenizer.
DNATEXT_TOKENIZER_JSON = "dnatext_tokenizer.json"

#: The Hugging Face model card of a model folder (YAML metadata and prose); written by
#: dnalm.report.cards (rules pretrain_card and finetune_card), read by dnalm.modeling.publish.
MODEL_CARD_MD = "README.md"
#: Where a file came from: a sample's verified sources (rule verify_sources, written by
#: dnalm.genome.download.verify_sources, read by dnalm.plan and dnalm.core.provenance), an
#: external model's snapshot (dnalm.core.hub) and a model folder's provenance (config hash,
#: inputs with their sha256, seeds, versions, commit: dnalm.core.provenance, read by
#: dnalm.modeling.publish).
PROVENANCE_JSON = "provenance.json"

# -------------------------------------------------------- corpora (tokenization, corpora/)

#: A token corpus's description (block size, tokenizer, counts); written by
#: dnalm.tokenization.corpus, read by dnalm.training.lm_data.
META_JSON = "meta.json"
#: The shard list of a sharded corpus; written and read by dnalm.tokenization.shards.
SHARD_INDEX_JSON = "index.json"

# ---------------------------------------------------------------------------------- tasks

#: A task's examples (one row each, with its split); written and read by dnalm.tasks.common.
TASK_DATA_TSV = "data.tsv"
#: A task's kind, classes and counts; written and read by dnalm.tasks.common.
TASK_JSON = "task.json"
#: A summary table: of a task (dnalm.tasks.common), of a DNA+text corpus
#: (dnalm.multimodal.corpus) or of an attribution run (dnalm.interpretation.run); for people
#: and the report.
SUMMARY_TSV = "summary.tsv"

# ----------------------------------------------------------- fine-tuning (finetune/{task})

#: Test predictions of a fine-tuning or baseline run; written by dnalm.finetuning.data and
#: dnalm.finetuning.baselines, read through dnalm.core.predictions by
#: dnalm.finetuning.compare and dnalm.evaluation.calibration.
PREDICTIONS_TSV = "predictions.tsv"
#: Per-base test predictions (arrays) of a per-base regression run; written by
#: dnalm.finetuning.data, read by dnalm.finetuning.compare and dnalm.report.finetune_plots
#: (the rule script finetune_tracks.py).
PREDICTIONS_NPZ = "predictions.npz"
#: The fine-tuning settings a checkpoint folder was made with; written and checked by
#: dnalm.finetuning.data.
SETTINGS_JSON = "settings.json"
#: The k-mer baseline's chosen features; written by dnalm.finetuning.baselines.
SELECTION_CSV = "selection.csv"
#: A task's comparison table (one row per run, seed replicates folded, bootstrap CIs); written
#: by the rule script finetune_compare.py (dnalm.finetuning.compare), read by
#: dnalm.report.finetune_plots and dnalm.report.reproduce.
COMPARISON_TSV = "comparison.tsv"
#: The task head's weights and the fine-tuning record of a fine-tuned model folder; written
#: by dnalm.finetuning.finetune, read by dnalm.modeling.loader and dnalm.interpretation.run.
HEAD_SAFETENSORS = "head.safetensors"
FINETUNE_JSON = "finetune.json"

# ------------------------------------------------------------ benchmark suites (suites/{suite})

#: The leakage audit of a suite: per task and reference, the shares of test items at
#: >= 50/80/95% identity and each run's suite metric on all items and on those below 50%;
#: written by dnalm.tasks.audit (rule suite_audit), read by people and the report.
SUITE_AUDIT_TSV = "audit.tsv"
#: The audit's per-item identities; written by dnalm.tasks.audit.
SUITE_AUDIT_ITEMS_TSV = "audit_items.tsv"
#: One table per suite (rows: models and published numbers, columns: tasks); written by
#: dnalm.finetuning.suite_table (rule suite_table), read by dnalm.report.suite_plots.
SUITE_TABLE_TSV = "table.tsv"

# ------------------------------------------------------------------------ other stages

#: Sampled sequences with their stop reasons; written by dnalm.generation.run.
SAMPLES_TSV = "samples.tsv"
#: A generated task's sequences; written by the rule script sequence_task.py.
GENERATED_TSV = "generated.tsv"
#: Attribution arrays of an interpretation run; written by dnalm.interpretation.run.
ATTRIBUTIONS_NPZ = "attributions.npz"
#: DNA+text pairs of a corpus; written by dnalm.multimodal.corpus.
PAIRS_TSV = "pairs.tsv"
#: DNA+text evaluation table and timings; written by dnalm.multimodal.pipeline (the rule
#: script dnatext_train.py moves the table to the rule's output).
EVALUATION_TSV = "evaluation.tsv"
TIMING_JSON = "timing.json"

# ------------------------------------------------------------- run tracking (results/tracking)

#: The MLflow file store inside the tracking folder (dnalm.core.config.TRACKING_DIR); written
#: by dnalm.training.track, read by MLflow (``mlflow ui --backend-store-uri``).
MLRUNS_DIR = "mlruns"

#: Every name above (the layout test keeps them out of string literals elsewhere).
ALL = tuple(
    value for key, value in dict(globals()).items() if key.isupper() and isinstance(value, str)
)


def read_run_record(folder: str | os.PathLike, what: str = "run record") -> dict[str, Any]:
    """The RUN_JSON object of a model folder; InputFormatError naming the file and `what`
    when it is missing or not a JSON object."""
    return read_json_object(Path(folder) / RUN_JSON, what)


def read_metrics(folder: str | os.PathLike, what: str = "test metrics") -> dict[str, Any]:
    """The METRICS_JSON object of a run folder (pretraining or fine-tuning); InputFormatError
    naming the file and `what` when it is missing or not a JSON object."""
    return read_json_object(Path(folder) / METRICS_JSON, what)
