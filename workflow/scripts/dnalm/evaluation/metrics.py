"""TEMPORARY: the metric functions moved to :mod:`dnalm.core.metrics`, where every stage may
import them. This re-export only keeps dnalm.finetuning.finetune (rewritten with the training
loop) working until it imports dnalm.core.metrics; delete this module then."""

from dnalm.core.metrics import (
    METRICS_JSON_KEYS,
    auroc,
    classification_metrics,
    pearson_r,
    regression_metrics,
    to_jsonable,
    write_metrics_json,
)

__all__ = [
    "METRICS_JSON_KEYS",
    "auroc",
    "classification_metrics",
    "pearson_r",
    "regression_metrics",
    "to_jsonable",
    "write_metrics_json",
]
