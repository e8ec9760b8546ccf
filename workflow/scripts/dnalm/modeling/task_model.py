"""A language-model backbone with a task head (per-base regression or pooled sequence
classification/regression): what fine-tuning trains and a fine-tuned model folder holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from dnalm.core.config import FinetuneTrainConfig
from dnalm.core.errors import ConfigError
from dnalm.kinds.archs import by_model_type
from dnalm.kinds.tasks import TASK_KINDS
from dnalm.modeling.heads import PerBaseRegressionHead, SequenceClassificationHead, tokens_to_bases
from dnalm.modeling.models import objective_of


def transformer_blocks(backbone: nn.Module, where: str = "fine-tuning") -> nn.ModuleList:
    """The list of blocks of a model body: its architecture's ``block_path``
    (:mod:`dnalm.kinds.archs`), or for a model type not of ours (an external model) the first
    of the usual paths (``decoder.layers``, ``encoder.layer``, ``layers``, ``h``) it has, else
    its longest list of modules of one class (a repository's own code may name it anything).
    ConfigError naming `where` (the run) when it has none."""
    kind = by_model_type(str(getattr(getattr(backbone, "config", None), "model_type", "")))
    paths = (kind.block_path,) if kind is not None else ()
    for path in (*paths, "decoder.layers", "encoder.layer", "layers", "h"):
        obj: Any = backbone
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return obj
    lists = [
        m
        for m in backbone.modules()
        if isinstance(m, nn.ModuleList) and len(m) and len({type(c) for c in m}) == 1
    ]
    if lists:
        return max(lists, key=len)  # the first of the longest, in module order
    raise ConfigError(
        f"{where}: cannot find the list of transformer blocks of {type(backbone).__name__} "
        "(no decoder.layers, encoder.layer, layers or h, and no list of like modules), which "
        "regime partial freezes the first freeze_layers of; use regime frozen, full or lora"
    )


def embedding_modules(backbone: nn.Module) -> list[nn.Module]:
    return [m for m in backbone.modules() if isinstance(m, nn.Embedding)]


class FinetuneModel(nn.Module):
    """Backbone + task head. forward(batch) -> (B, L) per-base scores or (B, C) logits."""

    def __init__(self, lm, kind: str, n_out: int, cfg: FinetuneTrainConfig) -> None:
        super().__init__()
        self.lm = lm  # kept whole so the fine-tuned LM can be saved as a model folder
        self.backbone = lm.base_model
        self.kind = kind
        self.is_causal = objective_of(lm) == "gpt"
        self.frozen_backbone = cfg.regime == "frozen"
        width = int(lm.config.hidden_size)
        if TASK_KINDS.get(kind).per_base:
            self.head: nn.Module = PerBaseRegressionHead(
                width, cfg.head_hidden, cfg.head_kernel, cfg.head_dropout, cfg.head_norm
            )
        else:
            self.head = SequenceClassificationHead(
                width, n_out, cfg.pooling, cfg.head_dropout, standardize=cfg.head_standardize
            )

    def train(self, mode: bool = True) -> FinetuneModel:
        super().train(mode)
        if self.frozen_backbone:
            self.backbone.eval()  # frozen features: no dropout noise
        return self

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        # a batch known to have no padding (its "padded" flag, set on the host) passes no
        # mask: the same attention, without transformers' device-synchronising check of it
        unpadded = batch.get("padded", True) is False
        kwargs: dict[str, Any] = {
            "input_ids": batch["input_ids"],
            "attention_mask": None if unpadded else batch["attention_mask"],
        }
        if self.is_causal:
            kwargs["use_cache"] = False
        hidden = self.backbone(**kwargs).last_hidden_state  # (B, T, E)
        if TASK_KINDS.get(self.kind).per_base:
            per_base = tokens_to_bases(hidden, batch["base_index"])  # (B, L, E)
            return self.head(per_base, batch["mask"])  # (B, L)
        return self.head(hidden, batch["attention_mask"])  # (B, C)
