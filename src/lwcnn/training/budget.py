"""Fitting a run to a wall-clock budget on this machine, by a short timed probe.

Before the first epoch the loop times a few real training steps (data loading and augmentation
included) and one validation pass, estimates what the final test costs, and sets the number of
epochs so that the whole run, from the start of ``lwcnn train`` to its last file, ends within the
budget; ``train.precision: auto`` takes bf16 only where the CPU computes it natively and the probe
shows it faster. During the run :class:`Deadline` stops before an epoch that would overrun (the
estimate can be wrong on a busy machine), so the budget holds either way.

The probe's few steps are not the run's: on the 2-core VMs a run's later steps were 0.85-1.15x of the
probe's, so a run ended minutes early or lost its last, lowest-rate epochs to the deadline. Once the
run's epochs are settled (full-size inputs, the last gradual phase) their own times re-plan the
epochs left (:func:`refit_epochs`), and the learning-rate schedule is stretched or shrunk to match
(:meth:`lwcnn.training.schedule.Schedule.stretched`).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lwcnn.training")

#: Probe: untimed warm-up steps, then timed steps (their median is the step time).
WARMUP_STEPS = 2
TIMED_STEPS = 5
#: bf16 must be at least this much faster than fp32 in the probe to be taken (it rounds scores).
BF16_GAIN = 1.1
#: Part of the budget kept free for what the estimate misses (checkpoint writes, plots).
SAFETY = 0.05
#: With a budget, validation may take about this share of the time spent on epochs: where one
#: pass costs more (large images, a small training set), only every k-th epoch is validated.
VALIDATION_SHARE = 0.1
#: ... but at least this many validated epochs remain to choose from.
MIN_VALIDATIONS = 4
#: Settled epochs timed before the epochs left are re-planned by their cost (the first ones after
#: a change of input size or phase can pay one-off costs) ...
REPLAN_AFTER = 3
#: ... judged by the median of this many latest ones (the machine's speed drifts over minutes).
REPLAN_WINDOW = 8
#: A plan within this share of the time left is kept: the estimate moves by a few percent from
#: epoch to epoch, and re-planning on every such move made a 15-minute DAGM run flap between
#: 50 and 51 epochs (the band narrows with the time left, so the last epochs are fitted closely).
REPLAN_TOLERANCE = 0.05


@dataclass(frozen=True)
class BudgetFit:
    """What the probe measured and what it chose."""

    budget_s: float
    epochs: int
    steps_per_epoch: int
    step_s: float
    epoch_overhead_s: float  # loader start and checkpoint writes, once an epoch
    validation_s: float
    finish_s: float
    precision: str
    probe_s: float
    validate_every: int
    batch_size: int
    # where the first epochs train on reduced inputs: what the probe predicts for one epoch at full
    # size (validation included) and for one at the reduced scale (0: no reduced epochs)
    full_epoch_s: float = 0.0
    scaled_epoch_s: float = 0.0
    # the run's re-plans of its epochs by their own cost (lwcnn.training.loop._replan), in order
    replans: list[dict[str, float]] = field(default_factory=list)

    @property
    def final_epochs(self) -> int:
        """The epochs the run was fitted to in the end (the probe's, or its last re-plan's)."""
        return int(self.replans[-1]["epochs"]) if self.replans else self.epochs

    def predicted_epoch_s(self) -> float:
        """One full-size epoch's training as the probe predicted it (validation not included)."""
        if self.full_epoch_s:
            return self.full_epoch_s - self.validation_s / self.validate_every
        return self.steps_per_epoch * self.step_s + self.epoch_overhead_s

    def line(self) -> str:
        return (
            f"budget {self.budget_s / 60:.1f} min: {self.epochs} epochs of {self.steps_per_epoch} steps "
            f"of {self.batch_size} ({self.step_s:.2f} s a step, {self.validation_s:.1f} s a validation"
            + (f" every {self.validate_every} epochs, " if self.validate_every > 1 else ", ")
            + f"{self.epoch_overhead_s:.1f} s between epochs, "
            f"{self.finish_s:.0f} s for the test; {self.precision}; probe {self.probe_s:.0f} s)"
        )


def time_steps(
    run_step: Callable[[Any, Any], None], loader: Any, steps: int = TIMED_STEPS
) -> tuple[float, float]:
    """The median wall time of ``steps`` training steps from ``loader`` (loading included), after
    :data:`WARMUP_STEPS` untimed ones, and how long the loader took to give its first batch (what
    every epoch pays again: loading workers start anew); the loader restarts when it runs out."""
    clock = time.perf_counter()
    batches = iter(loader)
    first = next(batches)
    startup = time.perf_counter() - clock
    times = []
    last = time.perf_counter()
    for index in range(WARMUP_STEPS + steps):
        try:
            images, targets = first if index == 0 else next(batches)
        except StopIteration:
            batches = iter(loader)
            images, targets = next(batches)
        run_step(images, targets)
        now = time.perf_counter()
        if index >= WARMUP_STEPS:
            times.append(now - last)
        last = now
    return statistics.median(times), startup


def fit_epochs(
    budget_s: float, elapsed_s: float, steps_per_epoch: int, step_s: float, validation_s: float,
    finish_s: float, epoch_overhead_s: float = 0.2,
) -> int:  # fmt: skip
    """How many epochs fit in what is left of the budget (at least one)."""
    per_epoch = steps_per_epoch * step_s + validation_s + epoch_overhead_s
    left = budget_s * (1 - SAFETY) - elapsed_s - finish_s
    return max(1, math.floor(left / per_epoch))


def fit_validation(
    budget_s: float, elapsed_s: float, steps_per_epoch: int, step_s: float, validation_s: float,
    finish_s: float, epoch_overhead_s: float, validated_share: float = 1.0,
) -> tuple[int, int]:  # fmt: skip
    """The epochs that fit and how often to validate (every k-th epoch): k is the smallest that
    keeps validation near :data:`VALIDATION_SHARE` of the epochs' time, lowered again where fewer
    than :data:`MIN_VALIDATIONS` validated epochs would remain (``validated_share``: the part of
    the run's epochs that can be validated at all)."""
    training_s = steps_per_epoch * step_s + epoch_overhead_s
    every = max(1, math.ceil(validation_s * (1 - VALIDATION_SHARE) / (VALIDATION_SHARE * training_s)))
    while True:
        per_epoch = validation_s * validated_share / every
        epochs = fit_epochs(
            budget_s, elapsed_s, steps_per_epoch, step_s, per_epoch, finish_s, epoch_overhead_s
        )
        if every == 1 or epochs * validated_share / every >= MIN_VALIDATIONS:
            return epochs, every
        every -= 1


def choose_precision(fp32_s: float, bf16_s: float | None) -> str:
    """bf16 when it was probed (native bf16 only) and is at least :data:`BF16_GAIN` faster."""
    return "bf16" if bf16_s is not None and fp32_s / bf16_s >= BF16_GAIN else "fp32"


class Deadline:
    """Stops a run before an epoch that would end past ``end`` (a ``time.monotonic`` instant),
    judging by the epochs so far (their mean: one slow epoch on a busy machine must not end a run;
    the last one where longer: a run's epochs get costlier when it turns to full-size inputs)."""

    def __init__(self, end: float | None) -> None:
        self.end = end
        self.seconds: list[float] = []

    def record(self, seconds: float) -> None:
        self.seconds.append(seconds)

    def fits(self, seconds: float) -> bool:
        """Whether ``seconds`` of work from now end before the deadline (always, without one)."""
        return self.end is None or time.monotonic() + seconds <= self.end

    def allows_another(self, pending: float | None = None, next_s: float | None = None) -> bool:
        """True before the first epoch (a run trains at least one), then while one more fits;
        ``pending``: the seconds of an epoch still running, counted with the recorded ones (would
        one more fit after it?). ``next_s``: what the next epoch costs by the run's re-plan
        (:meth:`EpochCosts.next_epoch_s`), judged by instead: the deadline and the plan must agree
        on it, or a plan fitted to the time left loses its last epoch to a slow validated one."""
        if next_s is not None:
            return self.fits(next_s)
        seconds = self.seconds if pending is None else [*self.seconds, pending]
        if self.end is None or not seconds:
            return True
        # the mean, or the last epoch where it took longer (epochs at a reduced input scale come first)
        return time.monotonic() + max(sum(seconds) / len(seconds), seconds[-1]) <= self.end


def keep_full_size_epochs(deadline: Deadline, fit: BudgetFit | None, full_epochs_left: int) -> bool:
    """Whether another epoch at the reduced scale still leaves time for the ``full_epochs_left``
    planned full-size epochs, judged by the probe's epoch times, scaled by how much slower than
    predicted the reduced epochs so far ran (a busy machine slows both phases; the probe can also
    be wrong). When it does not, the loop skips the reduced epochs left and goes on with the
    full-size ones: a run that the deadline stops in its reduced phase ends with a model never
    trained nor validated at the size it inspects at, whose "best" epoch is one that nothing
    scored."""
    if fit is None or not fit.full_epoch_s or deadline.end is None:
        return True
    # the quickest reduced epoch after the first: the first pays one-off costs (the loading worker's
    # fork, filling the image cache) that are no slower machine (judged by the first alone, lw@0.75
    # on ELPV turned to full size after one reduced epoch, its next ones running as predicted)
    later = deadline.seconds[1:]
    reduced = min(later) if later else fit.scaled_epoch_s
    slower = max(1.0, reduced / fit.scaled_epoch_s) if fit.scaled_epoch_s else 1.0
    return deadline.fits(reduced + full_epochs_left * fit.full_epoch_s * slower)


def epochs_cost(count: int, first: int, train_s: float, validation_s: float, every: int) -> float:
    """What ``count`` epochs from epoch index ``first`` on cost: ``train_s`` each, and
    ``validation_s`` more for each validated one (every ``every``-th, and always the last)."""
    last = first + count - 1
    validated = sum(1 for index in range(first, last + 1) if (index + 1) % every == 0 or index == last)
    return count * train_s + validated * validation_s


def refit_epochs(
    left_s: float, first: int, planned_left: int, train_s: float, validation_s: float, every: int,
    may_grow: bool = True,
) -> int:  # fmt: skip
    """How many epochs from index ``first`` on fit the ``left_s`` seconds left, where
    ``planned_left`` are planned: the plan stands while it is within :data:`REPLAN_TOLERANCE` of
    the time left; fewer (as many as fit) where those planned overrun it by more; more only while
    one epoch's time, or the tolerance if larger, stays spare (a plan that fills the time to the
    second leaves a slightly slow last epoch to the deadline, which then drops the run's
    lowest-rate epoch), and only while ``may_grow`` (a run that had to shrink its plan does not
    grow it again: with epochs of a second, the estimate's noise re-planned one run back and
    forth a dozen times). At least one."""

    def fit(count: int, spare: float) -> bool:
        return epochs_cost(count, first, train_s, validation_s, every) <= left_s - spare

    count, tolerance = max(1, planned_left), REPLAN_TOLERANCE * left_s
    if not fit(count, -tolerance):
        while count > 1 and not fit(count, 0.0):
            count -= 1
        return count
    while may_grow and fit(count + 1, max(train_s, tolerance)):
        count += 1
    return count


class EpochCosts:
    """What the run's settled epochs cost: their training time (checkpoint writes included) and,
    for those validated, the validation's; ``validation_s``: the probe's, until one is measured."""

    def __init__(self, validation_s: float) -> None:
        self.training: list[float] = []
        self.validations: list[float] = []
        self.probe_validation_s = validation_s
        self.shrunk = False  # a re-plan lowered the epochs (refit_epochs: no growing after that)

    def record(self, training_s: float, validation_s: float | None) -> None:
        self.training.append(training_s)
        if validation_s is not None:
            self.validations.append(validation_s)

    @property
    def ready(self) -> bool:
        """Whether enough settled epochs were timed to re-plan by (:data:`REPLAN_AFTER`)."""
        return len(self.training) >= REPLAN_AFTER

    def epoch_s(self) -> float:
        return statistics.median(self.training[-REPLAN_WINDOW:])

    def validation_s(self) -> float:
        return statistics.median(self.validations[-3:]) if self.validations else self.probe_validation_s

    def next_epoch_s(self, index: int, epochs: int, every: int) -> float | None:
        """What epoch ``index`` of ``epochs`` costs by these times (validated: every ``every``-th
        and the last), once they are :attr:`ready`; None before."""
        if not self.ready:
            return None
        validated = (index + 1) % every == 0 or index + 1 >= epochs
        return self.epoch_s() + (self.validation_s() if validated else 0.0)
