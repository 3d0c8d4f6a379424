"""The paper's schedule (Section 3.4.1), scaled to runs shorter than its own.

The paper trains 60,000-90,000 steps, decays the learning rate by 0.9 every 10,000 steps and
averages BN statistics with a decay of 0.9997 (a horizon of ~3,300 steps). A CPU run of a few
thousand steps keeps the same *shape*: with ``scale = steps / reference_steps`` (at most 1) the
learning rate decays every ``10,000 * scale`` steps and the BN horizon shrinks by ``scale`` too,
so a short run ends at the same learning-rate fraction and its BN statistics track the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lwcnn.errors import ConfigError


@dataclass(frozen=True)
class Schedule:
    total_steps: int
    lr: float
    lr_decay: float
    decay_every: float  # steps, after scaling
    bn_momentum: float  # PyTorch convention: 1 - decay
    scale: float
    warmup_steps: int = 0  # the first steps raise the rate linearly from lr / warmup_steps

    def lr_at(self, step: int) -> float:
        """Exponential decay, continuous as TensorFlow's ``exponential_decay`` by default, after
        the linear warm-up where there is one."""
        rate = self.lr * self.lr_decay ** (step / self.decay_every)
        if step < self.warmup_steps:
            rate *= (step + 1) / self.warmup_steps
        return rate


def scaled_schedule(train: Mapping[str, Any], total_steps: int) -> Schedule:
    """The schedule for a run of ``total_steps`` from the ``train`` section of a config."""
    if total_steps < 1:
        raise ConfigError("the run has no training steps (check epochs, batch size and data)")
    scale = min(1.0, total_steps / train["reference_steps"])
    bn_decay = train["bn_decay"]
    return Schedule(
        total_steps=total_steps,
        lr=train["lr"],
        lr_decay=train["lr_decay"],
        decay_every=max(1.0, train["lr_decay_steps"] * scale),
        bn_momentum=1.0 - bn_decay ** (1.0 / scale),
        scale=scale,
        warmup_steps=round(train.get("warmup", 0.0) * total_steps),
    )
