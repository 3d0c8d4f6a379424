"""The paper's schedule (Section 3.4.1), scaled to runs shorter than its own.

The paper trains 60,000-90,000 steps, decays the learning rate by 0.9 every 10,000 steps and
averages BN statistics with a decay of 0.9997 (a horizon of ~3,300 steps). A CPU run of a few
thousand steps keeps the same *shape*: with ``scale = steps / reference_steps`` (at most 1) the
learning rate decays every ``10,000 * scale`` steps and the BN horizon shrinks by ``scale`` too,
so a short run ends at the same learning-rate fraction and its BN statistics track the model.

A budget run that re-plans its epochs on the way (``train.stretch``) keeps the schedule it planned
and maps its steps onto it: from each re-plan on, the planned steps left are spread evenly over the
run's steps left, so the rate stays continuous and still ends where the plan ended.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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
    shape: str = "exponential"  # or "cosine": half a cosine from lr to zero over total_steps
    # a re-planned run: its steps (``run_steps`` in all) map onto the planned ``total_steps`` through
    # these (run step, planned step) points, linearly between them and on to the end
    knots: tuple[tuple[int, float], ...] = ()
    run_steps: int = 0

    def planned_step(self, step: float) -> float:
        """Where run step ``step`` lies in the planned schedule (itself, unless re-planned)."""
        if not self.knots:
            return step
        points = [(0, 0.0), *self.knots, (self.run_steps, float(self.total_steps))]
        index = min(max(1, bisect.bisect_right([p[0] for p in points], step)), len(points) - 1)
        (x0, y0), (x1, y1) = points[index - 1], points[index]
        return y0 + (step - x0) * (y1 - y0) / (x1 - x0)

    def stretched(self, step: int, run_steps: int) -> Schedule:
        """This schedule with the planned steps left after run step ``step`` spread over the run's
        ``run_steps - step`` steps left (more or fewer than planned): continuous at ``step``, and
        ending at the planned final rate."""
        if not 0 < step < run_steps:
            raise ValueError(f"cannot re-plan at step {step} a run of {run_steps} steps")
        return replace(self, knots=(*self.knots, (step, self.planned_step(step))), run_steps=run_steps)

    def lr_at(self, step: int) -> float:
        """Exponential decay, continuous as TensorFlow's ``exponential_decay`` (or half a cosine down
        to zero at ``total_steps``), after the linear warm-up where there is one (at the planned
        step: :meth:`planned_step`)."""
        planned = self.planned_step(step)
        if self.shape == "cosine":
            rate = self.lr * half_cosine(planned / self.total_steps)
        else:
            rate = self.lr * self.lr_decay ** (planned / self.decay_every)
        if planned < self.warmup_steps:
            rate *= (planned + 1) / self.warmup_steps
        return rate


def planned_epochs(train: Mapping[str, Any]) -> int:
    """The epochs a run planned (``train.epochs``, unless it re-planned them: ``train.stretch``);
    what the schedule's shape, the gradual phases and the reduced-input epochs are fractions of."""
    stretch = train.get("stretch")
    return _read_stretch(stretch)[0] if stretch else int(train["epochs"])


def run_schedule(train: Mapping[str, Any], steps_per_epoch: int) -> Schedule:
    """The schedule of a run of ``train.epochs`` epochs of ``steps_per_epoch`` steps: the planned
    one (:func:`scaled_schedule`), re-planned at each knot of ``train.stretch`` where it has any."""
    schedule = scaled_schedule(train, planned_epochs(train) * steps_per_epoch)
    stretch = train.get("stretch")
    if not stretch:
        return schedule
    knots, run_steps = _read_stretch(stretch)[1], int(train["epochs"]) * steps_per_epoch
    first, last = knots[0] if knots else (1, 0.0), knots[-1] if knots else (0, 0.0)
    if not (0 < first[0] and last[0] < run_steps and last[1] < schedule.total_steps):
        raise ConfigError(
            f"train.stretch: its knots must lie inside the run ({run_steps} steps, {schedule.total_steps} "
            f"planned), got {stretch['knots']!r}"
        )
    return replace(schedule, knots=knots, run_steps=run_steps)


def stretch_entry(planned: int, knots: Sequence[tuple[int, float]]) -> dict[str, Any]:
    """``train.stretch`` as a run's config.yaml records it. The planned steps are kept whole (YAML
    writes a float's shortest exact form): rounded, the rebuilt rates near the cosine's end moved
    by more than 1e-4 of themselves, so ``--config RUN/config.yaml`` did not quite retrace the run."""
    return {"planned_epochs": planned, "knots": [[int(step), float(at)] for step, at in knots]}


def _read_stretch(stretch: Any) -> tuple[int, tuple[tuple[int, float], ...]]:
    """``train.stretch``'s planned epochs and knots; a :class:`ConfigError` where it is malformed."""
    try:
        knots = tuple((int(step), float(at)) for step, at in stretch["knots"])
        planned = int(stretch["planned_epochs"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            "train.stretch must be {planned_epochs: N, knots: [[run step, planned step], ...]} "
            f"(what a re-planned budget run records), got {stretch!r}"
        ) from None
    if any(b[0] <= a[0] or b[1] < a[1] for a, b in itertools.pairwise(knots)):
        raise ConfigError(f"train.stretch: knots must rise step by step, got {stretch['knots']!r}")
    if planned < 1:
        raise ConfigError(f"train.stretch: planned_epochs must be >= 1, got {planned}")
    return planned, knots


def half_cosine(progress: float) -> float:
    """The share of the starting rate left at ``progress`` (0 to 1, clipped) of a run whose rate
    falls along half a cosine to zero: 1 at the start, 0.5 halfway, 0 at the end and after."""
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))


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
        shape=train.get("lr_schedule", "exponential"),
    )
