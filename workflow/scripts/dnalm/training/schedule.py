"""Learning-rate schedules, as multipliers of the base rate (a function of the step alone,
so a resumed run follows the same schedule).

- :func:`cosine_factor`: half a cosine from 1 at step `start` down to `min_ratio` at `total`,
  `min_ratio` after it; the decay of pretraining (:class:`WarmupCosine`, the default
  schedule of dnalm.training.loop.TrainingLoop) and of fine-tuning (:func:`lr_factor`, used by
  dnalm.training.fit.fit); both drive the LambdaLR of dnalm.training.loop.TrainingLoop.
- :class:`WarmupCosine`: pretraining's linear warm-up, then the cosine.
- :func:`lr_factor`: fine-tuning's linear warm-up, then "constant" or "cosine".
"""

from __future__ import annotations

import math

from dnalm.core.config import check_lr_schedule


def cosine_factor(step: int, start: int, total: int, min_ratio: float) -> float:
    """Multiplier at `step` of a cosine decay from 1 at `start` to `min_ratio` at `total`
    (1 before `start`, `min_ratio` from `total` on)."""
    span = max(1, total - start)
    progress = min(1.0, max(0.0, (step - start) / span))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_factor(
    step: int,
    warmup_steps: int = 0,
    total_steps: int | None = None,
    schedule: str = "constant",
    min_lr_ratio: float = 0.1,
) -> float:
    """The learning-rate multiplier of optimiser step `step` (0-based) in fine-tuning.

    Linear warm-up: (step + 1) / warmup_steps over the first `warmup_steps` steps. Then
    "constant": 1; "cosine": :func:`cosine_factor` from the end of the warm-up to
    `total_steps` (the run's step budget; without one, 1)."""
    check_lr_schedule(schedule)
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant" or not total_steps:
        return 1.0
    return cosine_factor(step, warmup_steps, total_steps, min_lr_ratio)


class WarmupCosine:
    """LR multiplier of pretraining: linear warm-up over `warmup` steps, cosine to
    `min_ratio` at `total`. A class (not a lambda) so LambdaLR's state_dict stays plain
    data."""

    def __init__(self, warmup: int, total: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = int(warmup), int(total), float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        return cosine_factor(step, self.warmup, self.total, self.min_ratio)
