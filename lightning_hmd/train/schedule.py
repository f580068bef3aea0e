"""Learning-rate schedules, counted in batches (the one counter of budgets and cadences).

``lr(b) = base_lr * lr_factor(b, ...)`` after ``b`` batches. HMMR trains at a constant rate;
``cosine`` and ``step`` are the usual alternatives for ablations. Every schedule starts with
an optional linear warm-up from 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lightning_hmd.modes import Schedule


@dataclass(frozen=True)
class LRFactor:
    """A stateless multiplier for ``torch.optim.lr_scheduler.LambdaLR``; its fields are plain
    numbers and a plain string (a :class:`~lightning_hmd.modes.Schedule` given is stored as
    its value), so the scheduler's state dict (which copies them) loads with ``weights_only``.

    Attributes:
        schedule: ``constant``, ``cosine`` (to ``min_factor`` at ``total`` batches) or
            ``step`` (times ``gamma`` every ``step_every`` batches).
        total: the training budget in batches (``trainer.max_batches``).
        warmup: batches of linear warm-up (0: none).
        min_factor: the cosine schedule's final factor.
        step_every: the step schedule's period in batches.
        gamma: the step schedule's factor per period.
    """

    schedule: str = "constant"
    total: int = 1
    warmup: int = 0
    min_factor: float = 0.0
    step_every: int = 1
    gamma: float = 0.1

    def __post_init__(self) -> None:
        # a Schedule is stored as its plain value; anything else raises ValueError naming
        # optim.schedule and its choices
        object.__setattr__(self, "schedule", Schedule.parse(self.schedule, "optim.schedule").value)

    def __call__(self, batch: int) -> float:
        return lr_factor(batch, self)


def lr_factor(batch: int, f: LRFactor) -> float:
    """The learning-rate multiplier after ``batch`` batches (0 = the first batch's rate)."""
    schedule = Schedule.parse(f.schedule, "optim.schedule")
    warm = (batch + 1) / f.warmup if batch < f.warmup else 1.0
    if schedule == Schedule.constant:
        return warm
    if schedule == Schedule.step:
        return warm * f.gamma ** (batch // max(f.step_every, 1))
    span = max(f.total - f.warmup, 1)
    progress = min(max(batch - f.warmup, 0) / span, 1.0)
    return warm * (f.min_factor + (1.0 - f.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress)))
