"""Fine-tuning a pretrained (or randomly initialised) dnalm backbone on a task table.

One run = one backbone folder (``results/models/{model}``, a Hugging Face folder written by
pretraining) x one task x one regime. The same task tables, splits, metrics, training loop
(:func:`dnalm.training.fit.fit`: AdamW, early stopping on validation, checkpoints and exact
resume, bf16 autocast on GPU, progress bar) and output files as the baselines, so a run's
row in the comparison table is directly comparable to the one-hot CNN's.

Model = backbone -> head:

- the backbone is the transformer body of the language model (``OPTModel`` of a GPT,
  ``BertModel`` of an MLM; the LM head is not used), run on ``BOS tokens EOS`` exactly as in
  the pretraining corpus, right-padded, with a 2-D attention mask;
- per-base regression (TF binding): token states are spread back onto bases
  (:func:`dnalm.modeling.heads.tokens_to_bases`: each base takes the state of the token covering it,
  so a 6-mer's state is repeated for its six bases and a codon's for its three), then the
  DNA-LLM head (:class:`dnalm.modeling.heads.PerBaseRegressionHead`) gives one score per base.
  Bases no token covers (the tail after the last whole codon or k-mer, or bases beyond a
  truncated context) get a zero state and are excluded from the loss and from the metrics
  (counted in ``metrics.json`` as ``bases_uncovered``);
- classification / sequence regression: :class:`dnalm.modeling.heads.SequenceClassificationHead` on
  the states pooled over real (non-pad) tokens: ``mean`` (default), ``cls`` (position 0,
  the [CLS] token of an MLM), ``last`` or ``max``.

Regimes (``regime``):

``frozen``   only the head trains; the backbone stays in eval mode (no dropout), as the
             DNA-LLM regression experiment;
``partial``  token/position embeddings and the first ``freeze_layers`` transformer blocks
             frozen, the rest and the head train (the species fine-tuning of the Nucleotide
             Transformer post froze the embeddings and the first layers);
``full``     everything trains;
``lora``     low-rank adapters (``peft``) on the attention query/value projections, merged
             into the weights when the run ends; only adapters and head train.

``random_init: true`` starts from the same architecture with seeded random weights: the
"what does pretraining add" control, fine-tuned the same way.

Sequences longer than the model's context: ``too_long: truncate`` (default) keeps the first
``context`` tokens (BOS included, EOS dropped) and logs how many sequences and bases were
cut; per-base targets of bases past the cut are excluded, never guessed. ``too_long: error``
stops instead. Sliding windows were not chosen: task windows here (200 bp TF-binding
windows, 60 nt fragments, ChIP-seq peaks) fit any preset's context, and stitching windows
would make a per-base score depend on where a window happened to start.

Augmentations (training batches only) are done on bases, before tokenization, so a shifted
window is re-tokenized in its new frame: random shifts up to ``max_shift`` bp with targets
shifted alike (by cropping, see :mod:`dnalm.finetuning.baselines`), optional reverse complement.

Reverse-complement averaging (``rc_average``; test predictions only, training and model
selection unchanged): every test row is also predicted from its reverse complement (the DNA
string complemented, then tokenized, so any tokenizer works) and the two predictions are
averaged: class probabilities, regression values, or per-base scores after flipping the
reverse strand's track back along the sequence (:func:`predict_arrays`).

Outputs in ``out_dir`` (each atomic; ``metrics.json`` last): ``curves.csv``,
``predictions.npz`` (per-base) or ``predictions.tsv``, ``model/`` (the fine-tuned language
model folder, loadable by the Auto classes like a pretrained one and embeddable by
:mod:`dnalm.evaluation.embed`, plus ``head.safetensors`` and ``finetune.json``; rebuilt with
``dnalm.modeling.loader.load_model_folder(folder, kind="finetuned")``), ``metrics.json``.
Checkpoints go to ``out_dir/checkpoints`` and make an interrupted run resume.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file
from torch import nn

from dnalm.core.alphabet import CODE_TO_BASE, reverse_complement
from dnalm.core.artifacts import (
    CONFIG_JSON,
    CURVES_CSV,
    DNALM_TOKENIZER_JSON,
    FINETUNE_JSON,
    HEAD_SAFETENSORS,
    METRICS_JSON,
    SPECIAL_TOKENS_MAP_JSON,
)
from dnalm.core.config import FinetuneTrainConfig, fit_settings
from dnalm.core.device import select_device
from dnalm.core.errors import ConfigError, InputFormatError
from dnalm.core.io import atomic_write, set_default_modes
from dnalm.core.metrics import write_metrics_json
from dnalm.finetuning.data import (
    average_strands,
    discard_stale_checkpoints,
    save_curves,
    score_test,
    split_frames,
    task_arrays,
    task_objective,
)
from dnalm.finetuning.tables import (
    class_labels,
    subsample_split,
    task_kind,
    validate_task_table,
)
from dnalm.kinds.archs import by_model_type
from dnalm.kinds.tasks import TASK_KINDS
from dnalm.modeling.external import load_external, lora_targets
from dnalm.modeling.loader import load_model_folder
from dnalm.modeling.models import model_context, objective_of
from dnalm.modeling.task_model import FinetuneModel, embedding_modules, transformer_blocks
from dnalm.tasks.common import load_task
from dnalm.training.augment import random_reverse_complement, shift_crop
from dnalm.training.fit import ArrayBatches, fit, predict
from dnalm.training.track import open_tracker

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- checks


def tokenizer_hash_of(folder: str | os.PathLike) -> str | None:
    """The dnalm tokenizer hash recorded in a tokenizer or model folder (None if absent)."""
    f = Path(folder) / DNALM_TOKENIZER_JSON
    if not f.is_file():
        return None
    return json.loads(f.read_text(encoding="utf-8")).get("hash")


# ----------------------------------------------------------------------------- model


def apply_regime(
    model: FinetuneModel, cfg: FinetuneTrainConfig, where: str = "fine-tuning"
) -> None:
    """Set requires_grad (and LoRA adapters) for the regime. The LM's own head outside the
    backbone (BERT's and ModernBERT's prediction head, an untied output layer) is unused by
    fine-tuning and stays frozen in every regime. `where`: the run, for errors."""
    backbone = model.backbone
    model.lm.requires_grad_(False)  # a tied output layer follows the backbone's setting below
    if cfg.regime == "full":
        backbone.requires_grad_(True)
        return
    backbone.requires_grad_(False)
    if cfg.regime == "partial":
        layers = transformer_blocks(backbone, where)
        if cfg.freeze_layers > len(layers):
            raise ConfigError(
                f"{where}: freeze_layers={cfg.freeze_layers} but the backbone has "
                f"{len(layers)} blocks; set freeze_layers to at most {len(layers)}"
            )
        backbone.requires_grad_(True)
        for m in embedding_modules(backbone):
            m.requires_grad_(False)
        for block in layers[: cfg.freeze_layers]:
            block.requires_grad_(False)
    elif cfg.regime == "lora":
        try:
            # lazy: peft (~1 s) loads only for the LoRA regime
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as err:  # pragma: no cover - peft is a pinned dependency
            raise ConfigError("regime lora needs the `peft` package") from err
        # the projections LoRA adapts, per architecture (dnalm.kinds.archs): query and value
        # of the attention, or for the state-space models, which have no attention, the
        # mixer's input projection (the one module their fused CUDA kernels call)
        kind = by_model_type(model.lm.config.model_type)
        targets = list(kind.lora_targets) if kind is not None else []
        names = {name.rsplit(".", 1)[-1] for name, _ in backbone.named_modules()}
        if not targets or not set(targets) <= names:
            # a model not built by dnalm (an external one, even of a model type we know):
            # the attention projections found by name in the loaded model
            targets = lora_targets(backbone, f"regime lora ({model.lm.config.model_type})")
        lcfg = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            bias="none",
        )
        inject_adapter_in_model(lcfg, backbone)  # adds trainable lora_A/lora_B in place
        for name, p in backbone.named_parameters():
            p.requires_grad_("lora_" in name)


def merge_lora(model: FinetuneModel) -> int:
    """Fold LoRA adapters into the base weights (W + B A * alpha / r) and remove them, so
    the saved model is a plain transformers model. Returns the number of merged layers."""
    n = 0
    for parent in list(model.backbone.modules()):
        for name, child in list(parent.named_children()):
            if hasattr(child, "merge") and hasattr(child, "get_base_layer"):
                child.merge()
                setattr(parent, name, child.get_base_layer())
                n += 1
    return n


def count_trainable(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) unique parameters (tied weights counted once)."""
    seen: dict[int, nn.Parameter] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return trainable, total


# ----------------------------------------------------------------------------- batches


class Tokenize:
    """Batch transform: integer base codes (B, W) + base mask -> model inputs.

    Augments first (shift crop, reverse complement; training only), then decodes each row
    back to its bases, tokenizes it with the model's tokenizer (``BOS tokens EOS``),
    truncates to `context` tokens and builds input_ids / attention_mask (B, T) and, for
    per-base tasks, base_index (B, W) with the base mask cleared where no token covers.
    `rc`: tokenize the reverse complement of every row instead (the DNA string is
    complemented, then tokenized); base_index and the base mask are then in the reverse
    strand's coordinates (base j of the output is base L-1-j of the row), y is unchanged."""

    def __init__(
        self,
        tok,
        context: int,
        per_base: bool,
        train: bool,
        cfg: FinetuneTrainConfig,
        rc: bool = False,
    ) -> None:
        self.tok = tok
        self.rc = rc
        self.context = int(context)
        self.per_base = per_base
        self.train = train
        self.cfg = cfg
        self.pad_id = tok.pad_id if tok.pad_id is not None else (tok.eos_id or 0)
        self.offset = 0 if tok.bos_id is None else 1
        self._table: tuple | None = None  # the rows tokenized by pretokenize()

    @property
    def augments(self) -> bool:
        """Whether batches are augmented (training with shifts or random reverse
        complements): their bases change from pass to pass, so they are tokenized per batch."""
        shift = self.per_base and self.cfg.max_shift > 0
        return self.train and (shift or bool(self.cfg.reverse_complement))

    def pretokenize(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`arrays` (:func:`dnalm.finetuning.data.task_arrays`) plus a ``row`` index, with
        every row tokenized here, once: a batch carrying ``row`` is then assembled from the
        stored tokens instead of tokenized again (the same tensors). Batches that are
        augmented (:attr:`augments`) are still tokenized one by one."""
        if self.augments:
            return dict(arrays)
        codes = np.asarray(arrays["codes"])
        lengths = np.asarray(arrays["mask"]).sum(1)
        ids_list, index_rows = self._encode_rows(codes, lengths)
        n_tok = np.array([len(x) for x in ids_list], np.int64)
        offsets = np.concatenate([[0], np.cumsum(n_tok)])
        flat = np.concatenate(ids_list) if ids_list else np.zeros(0, np.int64)
        index = np.stack(index_rows) if self.per_base and index_rows else None
        self._table = (flat, offsets, n_tok, index)
        return {**arrays, "row": np.arange(len(codes))}

    def _encode_rows(
        self, codes: np.ndarray, lengths: np.ndarray
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Token ids of each row (BOS tokens EOS, cut to the context) and, per-base, each
        base's token index (-1: no token). # (B, W) codes -> B ids, B (W,) index rows"""
        width = codes.shape[1]
        ids_list, index_rows = [], []
        for i in range(codes.shape[0]):
            seq = CODE_TO_BASE[codes[i, : lengths[i]]].tobytes().decode("ascii")
            if self.rc:
                seq = reverse_complement(seq)
            ids = self.tok.encode(seq, add_special_tokens=True).astype(np.int64)
            if self.per_base:
                idx = self.tok.base_to_token_index(seq)
                idx = np.where(idx >= 0, idx + self.offset, -1)
            if len(ids) > self.context:
                ids = ids[: self.context]
                if self.per_base:
                    idx = np.where(idx < self.context, idx, -1)
            ids_list.append(ids)
            if self.per_base:
                row = np.full(width, -1, np.int64)
                row[: len(idx)] = idx
                index_rows.append(row)
        return ids_list, index_rows

    def __call__(self, batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict:
        table = self._table
        if table is not None and "row" in batch and not self.augments:
            flat, offsets, n_tok, index = table
            rows = batch["row"].numpy()
            ids_list = [flat[offsets[r] : offsets[r] + n_tok[r]] for r in rows]
            index_rows = list(index[rows]) if index is not None else []
        else:
            if self.train and self.per_base and self.cfg.max_shift > 0:
                batch = shift_crop(batch, self.cfg.max_shift, gen)
            if self.train and self.cfg.reverse_complement:
                batch = random_reverse_complement(batch, gen, self.per_base)
            codes = batch["codes"].numpy()  # (B, W)
            lengths = batch["mask"].sum(1).numpy()  # (B,)
            ids_list, index_rows = self._encode_rows(codes, lengths)
        b = len(ids_list)
        t_max = max(len(x) for x in ids_list)
        input_ids = np.full((b, t_max), self.pad_id, np.int64)
        attn = np.zeros((b, t_max), np.int64)
        for i, ids in enumerate(ids_list):
            input_ids[i, : len(ids)] = ids
            attn[i, : len(ids)] = 1
        out = {
            "input_ids": torch.from_numpy(input_ids),  # (B, T)
            "attention_mask": torch.from_numpy(attn),  # (B, T)
            # known here, on the host: the backbone then skips its own check of the mask,
            # a device synchronisation per forward (FinetuneModel.forward)
            "padded": bool((attn == 0).any()),
            "y": batch["y"],
        }
        if self.per_base:
            base_index = torch.from_numpy(np.stack(index_rows))  # (B, W)
            out["base_index"] = base_index
            out["mask"] = batch["mask"] & (base_index >= 0)  # (B, W)
        return out


@dataclass
class _TokenStats:
    """Tokens per sequence (BOS/EOS included) and the bases lost to truncation at the
    context or covered by no token, for one split."""

    n_tokens: np.ndarray  # (N,) int64
    bases_cut: int
    uncovered: int


def _token_stats(tok, seqs: Sequence[str], context: int) -> _TokenStats:
    """Tokenize every sequence once up front for the length checks and warnings."""
    offset = 0 if tok.bos_id is None else 1
    n_tokens = np.zeros(len(seqs), np.int64)
    cut = uncovered = 0
    for i, s in enumerate(seqs):
        n_tokens[i] = len(tok.encode(s, add_special_tokens=True))
        idx = tok.base_to_token_index(s)
        uncovered += int((idx < 0).sum())
        if n_tokens[i] > context:
            cut += int(((idx + offset) >= context).sum())
    return _TokenStats(n_tokens, cut, uncovered)


# ----------------------------------------------------------------------------- entry point


def finetune(
    model_dir: str | os.PathLike,
    task: pd.DataFrame | str | os.PathLike,
    out_dir: str | os.PathLike,
    config: FinetuneTrainConfig | Mapping[str, Any] | None = None,
    *,
    run_name: str | None = None,
    model_name: str | None = None,
    task_name: str | None = None,
    expected_tokenizer_hash: str | None = None,
    external: Mapping[str, Any] | None = None,
    tracking: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune the model in `model_dir` on `task` (a task folder / data.tsv or a table as
    from :func:`dnalm.tasks.load_task`) and write the run's outputs (module docstring) to
    `out_dir`. `external`: a models.external entry and its provenance record (``{"entry",
    "record"}``) fine-tuned instead of `model_dir` (dnalm.modeling.external.load_external:
    its snapshot checked against the record, its own tokenizer). `tracking`: the run's
    tracker settings (the plan's ``Plan.tracking``; None: none): the settings, curves and
    final metrics go there too (dnalm.training.track). Returns the metrics.json record."""
    t_start = time.perf_counter()
    cfg = (
        config if isinstance(config, FinetuneTrainConfig) else FinetuneTrainConfig.from_dict(config)
    )
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    df = task if isinstance(task, pd.DataFrame) else load_task(task)
    where = str(task) if not isinstance(task, pd.DataFrame) else (task_name or "task table")
    kind = task_kind(df, None)
    validate_task_table(df, kind, where)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS_JSON).unlink(missing_ok=True)  # a stale result must not look current
    model_dir = Path(model_dir)
    model_name = model_name or model_dir.name
    device = select_device(cfg.device)

    if external:
        if cfg.random_init:
            raise ConfigError(f"{model_name}: an external model is fine-tuned from its weights")
        loaded = load_external(external["entry"], external["record"])
        model_dir = Path(loaded.path)  # the snapshot: its tokenizer files go with the model
    else:
        loaded = load_model_folder(
            model_dir,
            kind="backbone",
            random_init=cfg.random_init,
            seed=cfg.seed,
            expected_tokenizer_hash=expected_tokenizer_hash,
        )
    lm, hf_config, run_record, tok = loaded.model, loaded.config, loaded.run, loaded.tokenizer
    context = model_context(hf_config)
    objective = loaded.objective if external else objective_of(hf_config)

    parts = split_frames(df, cfg.seed)
    for split, n_max in (
        ("train", cfg.max_train_examples),
        ("validation", cfg.max_validation_examples),
    ):
        parts[split] = subsample_split(parts[split], None, n_max, cfg.seed).reset_index(drop=True)
    per_base = TASK_KINDS.get(kind).per_base
    order = class_labels(df, None) if TASK_KINDS.get(kind).classes else None
    width = int(df["sequence"].str.len().max())

    stats = {s: _token_stats(tok, list(p["sequence"]), context) for s, p in parts.items()}
    n_long = sum(int((st.n_tokens > context).sum()) for st in stats.values())
    if n_long:
        longest = max(int(st.n_tokens.max()) for st in stats.values())
        msg = (
            f"{where}: {n_long} sequence(s) need more than the model's context of {context} "
            f"tokens (longest: {longest} tokens)"
        )
        if cfg.too_long == "error":
            raise InputFormatError(
                msg + "; use a model with a longer context, shorter sequences, or "
                "too_long: truncate"
            )
        log.warning(
            "%s; truncated to the first %d tokens (%d bases past the cut are %s)",
            msg,
            context,
            sum(st.bases_cut for st in stats.values()),
            "excluded from loss and metrics" if per_base else "not seen",
        )

    pretrain_block = run_record.get("block_size")
    n_train_tokens = stats["train"].n_tokens
    if pretrain_block and not cfg.random_init and (n_train_tokens > pretrain_block).any():
        log.warning(
            "%d of %d training sequences are longer (up to %d tokens) than the windows the "
            "model was pretrained on (%d tokens): the position embeddings past %d were "
            "never trained. Pretrain with a larger corpus.block_size for such tasks.",
            int((n_train_tokens > pretrain_block).sum()),
            len(n_train_tokens),
            int(n_train_tokens.max()),
            pretrain_block,
            pretrain_block,
        )

    data = {s: task_arrays(p, kind, width, order) for s, p in parts.items()}
    # every split tokenized once, here, not in the training step (augmented batches are
    # tokenized as they come: their bases change every pass)
    tokenize = {
        s: Tokenize(tok, context, per_base, s == "train", cfg) for s in ("train", "validation")
    }
    loaders = {
        "train": ArrayBatches(
            tokenize["train"].pretokenize(data["train"]),
            cfg.batch_size,
            shuffle=True,
            seed=cfg.seed,
            transform=tokenize["train"],
        )
    }
    loaders["validation"] = ArrayBatches(
        tokenize["validation"].pretokenize(data["validation"]),
        cfg.eval_batch_size,
        transform=tokenize["validation"],
    )

    n_out = TASK_KINDS.get(kind).n_outputs(len(order or ()))
    torch.manual_seed(cfg.seed)
    model = FinetuneModel(lm, kind, n_out, cfg)
    apply_regime(model, cfg, run_name or model_name)
    # backbone + head: the language model's own output head is not part of the task model
    trainable, total = count_trainable(nn.ModuleList([model.backbone, model.head]))
    log.info(
        "%s on %s (%s, %s%s): %s trainable / %s parameters; train %d, validation %d, test %d",
        model_name,
        task_name or where,
        kind,
        cfg.regime,
        ", random init" if cfg.random_init else "",
        f"{trainable:,}",
        f"{total:,}",
        len(parts["train"]),
        len(parts["validation"]),
        len(parts["test"]),
    )

    loss_fn, select, val_metric = task_objective(kind, cfg.selection_metric)

    def forward(m: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return m(batch)

    ckpt_dir = out_dir / "checkpoints"
    discard_stale_checkpoints(ckpt_dir, {"model": str(model_dir), **asdict(cfg)}, data)
    settings = {"model": model_name, "task": task_name, "model_dir": str(model_dir), **asdict(cfg)}
    with open_tracker(tracking, settings) as tracker:  # tracking.backend
        result = fit(
            model,
            loaders["train"],
            loaders["validation"],
            loss_fn,
            forward=forward,
            val_metric=val_metric,
            device=device,
            checkpoint_dir=ckpt_dir,
            precision=cfg.precision,
            tracker=tracker,
            **fit_settings(cfg),
        )
        out = predict_arrays(model, data["test"], tok, context, kind, cfg, device)
        test = parts["test"]
        extra: dict[str, Any] = {}
        scored = {"scored": out["mask"].astype(bool)} if per_base else {}
        metrics = score_test(
            out_dir, kind, test, out, order, parts["train"]["label"].astype(str) if order else None,
            **scored,
        )  # fmt: skip
        if per_base:
            extra["bases_uncovered_test"] = int(stats["test"].uncovered + stats["test"].bases_cut)
        if cfg.regime == "lora":
            extra["lora_layers_merged"] = merge_lora(model)
        fetched = (loaded.run or {}).get("external") or {}
        code = (
            fetched.get("files", {}).get("code")
            if fetched.get("entry", {}).get("trust_remote_code")
            else None
        )
        save_finetuned(model, model_dir, out_dir / "model", cfg, kind, order, remote_code=code)
        save_curves(out_dir / CURVES_CSV, result.curves)
        fit_info = asdict(result)
        fit_info.pop("curves")
        record = write_metrics_json(
            out_dir / METRICS_JSON,
            model=run_name or model_name,
            tokenizer=type(tok.hf).__name__ if external else _tokenizer_name(model_dir, run_record),
            regime=cfg.regime,
            trainable_params=trainable,
            total_params=total,
            wall_time_s=time.perf_counter() - t_start,
            n_test=len(test),
            metrics=metrics,
            task=task_name,
            kind=kind,
            backbone=model_name,
            objective=objective,
            random_init=cfg.random_init,
            selection_metric=f"validation {select}",
            n_train=len(parts["train"]),
            n_validation=len(parts["validation"]),
            sequences_truncated=n_long,
            pretrain_block_size=run_record.get("block_size"),
            context=context,
            device=str(device),
            fit=fit_info,
            config=asdict(cfg),
            **extra,
        )
        # metrics.json's numbers but the settings (sent as the run's config)
        tracker.log_metrics({k: v for k, v in record.items() if k != "config"}, result.steps)
    return record


def predict_arrays(
    model: FinetuneModel,
    arrays: Mapping[str, np.ndarray],
    tok,
    context: int,
    kind: str,
    cfg: FinetuneTrainConfig,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Predictions of a fine-tuned model for task arrays (:func:`task_arrays`), in order,
    as :func:`dnalm.training.fit.predict` returns them. With ``cfg.rc_average`` every row is
    also predicted from its reverse complement and the two are averaged
    (:func:`dnalm.finetuning.data.average_strands`)."""
    per_base = TASK_KINDS.get(kind).per_base

    def run(rc: bool) -> dict[str, Any]:
        tf = Tokenize(tok, context, per_base, False, cfg, rc=rc)
        loader = ArrayBatches(tf.pretokenize(arrays), cfg.eval_batch_size, transform=tf)
        return predict(model, loader, _forward, device=device, precision=cfg.precision)

    out = run(False)
    if not cfg.rc_average:
        return out
    lengths = np.asarray(arrays["mask"]).sum(1)
    return average_strands(out, run(True), kind, lengths)


def _forward(m: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return m(batch)


def _tokenizer_name(model_dir: Path, run_record: Mapping[str, Any]) -> str:
    """The tokenizer's name as pretraining recorded it (run.json), else its type."""
    if run_record.get("tokenizer"):
        return str(run_record["tokenizer"])
    f = model_dir / DNALM_TOKENIZER_JSON
    if f.is_file():
        return str(json.loads(f.read_text(encoding="utf-8")).get("type", "unknown"))
    return "unknown"


def save_finetuned(
    model: FinetuneModel,
    model_dir: Path,
    out: Path,
    cfg: FinetuneTrainConfig,
    kind: str,
    labels: Sequence[str] | None,
    remote_code: Mapping[str, str] | None = None,
) -> None:
    """Write the fine-tuned language model folder (config, weights, tokenizer files), the
    head's weights and finetune.json; the folder appears complete or not at all.
    `remote_code`: the recorded sha256 of the code files of an external model that runs its
    own code (``trust_remote_code``): exactly those files are copied from its snapshot
    `model_dir`, with config.json's ``auto_map``, and listed in finetune.json, so the folder
    loads with that code and is checked against the entry's record before it runs
    (dnalm.core.hub.verify_code)."""
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.lm.save_pretrained(tmp, safe_serialization=True)
    for f in Path(model_dir).iterdir():
        if f.is_file() and (f.name.startswith("tokenizer") or f.name in _TOKENIZER_FILES):
            shutil.copy2(f, tmp / f.name)
    if remote_code is not None:
        _copy_remote_code(Path(model_dir), tmp, remote_code)
    head = {k: v.detach().contiguous().cpu() for k, v in model.head.state_dict().items()}
    save_file(head, str(tmp / HEAD_SAFETENSORS))
    info = {
        "base_model": str(model_dir),
        "kind": kind,
        "labels": list(labels) if labels else None,
        "head": type(model.head).__name__,
        "config": asdict(cfg),
    }
    if remote_code is not None:
        info["remote_code"] = dict(sorted(remote_code.items()))
    with atomic_write(tmp / FINETUNE_JSON) as fh:
        json.dump(info, fh, indent=1)
        fh.write("\n")
    set_default_modes(tmp)  # save_pretrained and save_file write the weights 0600
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def _copy_remote_code(snapshot: Path, folder: Path, code: Mapping[str, str]) -> None:
    """The recorded code files of `snapshot` into the saved `folder` (in place of the ones
    save_pretrained copied from transformers' module cache, and no other .py file), and
    the snapshot's ``auto_map`` in its config.json when save_pretrained left none."""
    for f in folder.rglob("*.py"):
        f.unlink()
    for rel in code:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(snapshot / rel, folder / rel)
    auto_map = json.loads((snapshot / CONFIG_JSON).read_text(encoding="utf-8")).get("auto_map")
    cfg_file = folder / CONFIG_JSON
    config = json.loads(cfg_file.read_text(encoding="utf-8"))
    if auto_map and not config.get("auto_map"):
        config["auto_map"] = auto_map
        with atomic_write(cfg_file) as fh:
            json.dump(config, fh, indent=2, sort_keys=True)
            fh.write("\n")


#: besides tokenizer*: an external model's vocabulary (EsmTokenizer, BertTokenizer)
_TOKENIZER_FILES = {SPECIAL_TOKENS_MAP_JSON, DNALM_TOKENIZER_JSON, "vocab.txt"}
