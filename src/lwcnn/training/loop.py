"""The training loop every task shares: run folder, resume, the paper's optimiser and schedule, BN
settings, channels_last, gradient accumulation, DistributedDataParallel, per-epoch validation,
best/last checkpoints written atomically, metrics CSV and learning curves.

What differs between classification and segmentation (data, sampler, loss, validation metrics,
which epoch is best, the final test) is a :class:`TrainingTask`.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import io
import itertools
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from lwcnn.checkpoints import (
    git_commit,
    load_training_state,
    save_model,
    save_training_state,
)
from lwcnn.config import dump_config, load_config
from lwcnn.data.datasets import EpochTaggedSampler, seed_worker
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.data.splits import Split
from lwcnn.errors import ConfigError, MissingError, OutputError, RunExistsError
from lwcnn.evaluation.plots import plot_learning_curves
from lwcnn.fileio import atomic_write_json, atomic_write_text, remove_stale_temporaries
from lwcnn.models import create_model
from lwcnn.pretrained import initialise
from lwcnn.training.averaging import WeightAverage
from lwcnn.training.budget import (
    SAFETY,
    BudgetFit,
    Deadline,
    EpochCosts,
    choose_precision,
    fit_validation,
    keep_full_size_epochs,
    refit_epochs,
    time_steps,
)
from lwcnn.training.distributed import (
    DistContext,
    check_agreement,
    close_distributed,
    init_distributed,
    sum_over_ranks,
)
from lwcnn.training.memory import keep_freed_memory
from lwcnn.training.schedule import Schedule, planned_epochs, run_schedule, stretch_entry

#: Status lines of a run (the CLI prints them on stderr, clear of the progress bars).
log = logging.getLogger("lwcnn.training")


@dataclass
class PreparedData:
    """What a run trains and validates on (``images`` is the scanned collection)."""

    images: Any
    split: Split
    preprocessing: Preprocessing
    train: Dataset
    val: Dataset | None
    test: Dataset | None
    skipped: list[str]


@dataclass
class TrainResult:
    run_dir: Path
    best: dict[str, Any]
    test: dict[str, Any] | None
    skipped: list[str]
    main: bool = True  # False on the other ranks of a distributed run (which write and report nothing)
    fit: BudgetFit | None = None  # what the budget probe measured and chose, when it ran


class TrainingTask:
    """What one kind of model needs from the loop. Subclasses fill in every method; a task is built
    from the run's resolved config (:meth:`from_config`: a resumed run's own, not the caller's), so
    that everything its loss needs is fixed before training starts."""

    task = ""
    #: metrics.csv columns, in order
    columns: tuple[str, ...] = ()
    #: the learning-curve panels: (title, y label, columns)
    curves: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainingTask:
        """The task with the settings of ``config`` that it needs (its loss's, for instance)."""
        raise NotImplementedError

    def prepare(self, config: Mapping[str, Any], run_dir: Path, show_progress: bool) -> PreparedData:
        raise NotImplementedError

    def data_fingerprint(self, data: PreparedData) -> Any:
        """What every rank of a distributed run must agree on besides the config and split."""
        raise NotImplementedError

    def classes(self, data: PreparedData) -> list[str]:
        raise NotImplementedError

    def sampler(
        self, config: Mapping[str, Any], data: PreparedData, context: DistContext, global_batch: int
    ) -> Sampler:
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, tuple[float, ...]]:
        """The micro-batch's loss (mean) and counts summed into the epoch's training metrics."""
        raise NotImplementedError

    def train_metrics(self, loss_sum: float, counts: Sequence[float], seen: int) -> dict[str, Any]:
        """The epoch's training columns from the summed loss and counts."""
        raise NotImplementedError

    def epoch_columns(self, sampler: Sampler, step: int) -> dict[str, Any]:
        """Extra columns describing the epoch (segmentation: the gradual-training phase)."""
        return {}

    def validate(self, model: nn.Module, data: PreparedData, metadata: Mapping[str, Any], device: str,
                 channels_last: bool) -> dict[str, Any]:  # fmt: skip
        raise NotImplementedError

    def selection_key(self, row: Mapping[str, Any]) -> tuple[float, ...]:
        """The key the best epoch is chosen by: the highest wins (no validation: every epoch improves)."""
        raise NotImplementedError

    def validates(self, row: Mapping[str, Any]) -> bool:
        """Whether the epoch of ``row`` is validated (one that can never be chosen need not be)."""
        return True

    def shrink_crops(self, config: dict[str, Any], data: PreparedData, factor: float) -> bool:
        """Make each training step about ``factor`` as costly (smaller crops), in ``config`` and
        ``data`` alike; False where the task has no crops or they are as small as they go."""
        return False

    def validated_share(self, config: Mapping[str, Any]) -> float:
        """About which share of a run's epochs :meth:`validates` (what the budget probe counts)."""
        return 1.0

    def input_scale(self, epoch: int, epochs: int) -> float:
        """The factor by which epoch ``epoch`` of ``epochs`` planned has its training batches
        resized (1: as loaded); an epoch at another scale is not validated (its model is not yet
        one for the real size)."""
        return 1.0

    def settled(self, parts: TrainingParts, epoch: int, step: int) -> bool:
        """Whether epoch ``epoch``, begun at ``step``, trains as every later epoch will (full-size
        inputs; a task's last phase): from there on only the learning rate changes, so a budget
        run can re-plan the epochs left by what such epochs cost."""
        return self.input_scale(epoch, parts.planned_epochs) == 1.0

    def scaled_epochs(self) -> tuple[float, float]:
        """(share of the epochs, their scale) trained at a reduced input scale (the budget probe
        times such steps too); (0, 1) when there are none."""
        return 0.0, 1.0

    def metadata(self, config: Mapping[str, Any], data: PreparedData) -> dict[str, Any]:
        """Task-specific model metadata (classes, threshold...)."""
        raise NotImplementedError

    def finish(self, config: Mapping[str, Any], run_dir: Path, data: PreparedData) -> dict[str, Any] | None:
        """After training: score the best model on the test part (if any) and record it."""
        raise NotImplementedError


def run_training(
    task_type: type[TrainingTask], config: Mapping[str, Any], resume: bool = False,
    show_progress: bool = True, started: float | None = None,
) -> TrainResult:  # fmt: skip
    """Train a ``task_type`` task as ``config`` says; under ``torchrun`` each process runs this and
    they train as one (DistributedDataParallel; lwcnn.training.distributed). ``started``
    (``time.monotonic``, default now) is when the run's budget began to count."""
    started = time.monotonic() if started is None else started
    keep_freed_memory()  # a step's large tensors are reused, not mapped and faulted in again
    context = init_distributed()
    finished = False
    run_dir = Path(config["out"])
    existed = run_dir.exists()
    present = {name for name in _RUN_START_FILES if (run_dir / name).exists()}
    try:
        result = _train(task_type, config, resume, show_progress and context.is_main, context, started)
        finished = True
        return result
    except BaseException:
        if context.is_main and not resume:
            discard_unstarted_run(run_dir, existed, keep=present)
        raise
    finally:
        close_distributed(context, finished)


#: What a run writes before its first epoch ends (and leaves behind when it fails before that).
_RUN_START_FILES = ("config.yaml", "split.json", "metrics.csv", "budget.json")


def discard_unstarted_run(
    run_dir: Path, existed: bool, keep: set[str] | frozenset[str] = frozenset()
) -> None:
    """After a failure before the first epoch was saved (no ``resume.pt``): remove what the run had
    written (not the names in ``keep``, files that were there before it), and the folder too if the
    run made it and it is empty, so that a failed run leaves nothing that looks like a run."""
    if (run_dir / "resume.pt").exists() or not run_dir.is_dir():
        return
    for name in _RUN_START_FILES:
        if name not in keep:
            (run_dir / name).unlink(missing_ok=True)
    remove_stale_temporaries(run_dir)
    if not existed:
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only when empty


def open_run_folder(
    run_dir: Path, data: PreparedData, config: Mapping[str, Any], fit: BudgetFit | None = None
) -> None:
    """Create the run folder and write its split and config (and ``budget.json``, what the budget
    probe measured and chose); an unwritable folder is an :class:`~lwcnn.errors.OutputError`.
    Temporary files of writes killed in an earlier attempt are removed (this run owns the folder)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)
        data.split.save(run_dir / "split.json")
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        if fit is not None:
            atomic_write_json(run_dir / "budget.json", dataclasses.asdict(fit))
    except OSError as error:
        raise OutputError(f"{run_dir}: cannot write the run folder ({error.strerror or error})") from None


@dataclass
class TrainingParts:
    """What a run trains with, built once (:func:`build_parts`)."""

    sampler: Sampler
    loader: DataLoader
    schedule: Schedule
    classes: list[str]
    model: nn.Module  # the plain module: saved and validated (unless a weight average is kept)
    net: nn.Module  # what the loop calls: ``model``, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None
    accumulate: int
    epochs: int  # as re-planned on the way (train.stretch)
    planned_epochs: int  # what the schedule's shape and the task's phases are fractions of

    @property
    def kept(self) -> nn.Module:
        """What is validated and saved: the weight average when there is one."""
        return self.average.module if self.average else self.model


@dataclass
class Progress:
    """Where a run stands: the next epoch to train, the step count, the best epoch, the rows so far."""

    epoch: int = 0
    step: int = 0
    best: dict[str, Any] = field(default_factory=lambda: {"epoch": None, "rank": None})
    history: list[dict[str, Any]] = field(default_factory=list)


def _train(
    task_type: type[TrainingTask], config: Mapping[str, Any], resume: bool, show_progress: bool,
    context: DistContext, started: float,
) -> TrainResult:  # fmt: skip
    """Train in the run folder ``config['out']``.

    The run folder receives ``config.yaml``, ``split.json``, ``metrics.csv``, ``best.*`` and
    ``last.*`` models, ``resume.pt`` (written at the end of every epoch), ``learning_curves.png`` and
    the task's test pictures. With ``resume`` the run continues from its last completed epoch with the
    same step count and schedule. With ``train.budget`` the epochs are fitted to it first
    (:func:`fit_to_budget`), counted from ``started`` (``time.monotonic``).
    """
    run_dir = Path(config["out"])
    config = resolve_run_config(config, resume, context)
    task = task_type.from_config(config)
    data = task.prepare(config, run_dir, show_progress)  # before any file is written: bad data leaves no run
    check_agreement(
        context,
        {"config": dict(config), "split": data.split.to_dict(), "images": task.data_fingerprint(data)},
    )
    fit, deadline = None, Deadline(None)
    if not resume and (config["train"]["budget"] or config["train"]["precision"] == "auto"):
        config, fit = fit_to_budget(task, config, data, context, started)
        if fit.budget_s:
            deadline = Deadline(started + fit.budget_s * (1 - SAFETY) - fit.finish_s)
    if context.is_main:
        open_run_folder(run_dir, data, config, fit)
        for line in data.skipped:
            log.info(f"skipped: {line}")
    parts = build_parts(task, config, data, context)
    progress = Progress()
    if resume:
        progress = restore(parts, run_dir / "resume.pt")
        if context.is_main:
            log.info(f"resuming {run_dir} at epoch {progress.epoch + 1}/{parts.epochs}, step {progress.step}")
    if context.distributed:
        device_ids = [context.local_rank] if context.device.startswith("cuda") else None
        parts.net = nn.parallel.DistributedDataParallel(parts.model, device_ids=device_ids)
    metadata = run_metadata(task, config, data, parts)
    _train_epochs(
        task, config, data, parts, progress, run_dir, metadata, context, show_progress, deadline, fit
    )
    if not context.is_main:
        return TrainResult(run_dir, progress.best, None, data.skipped, main=False)
    plot_learning_curves(
        run_dir / "metrics.csv",
        run_dir / "learning_curves.png",
        task.curves,
        title=f"{config['model']['name']}",
    )
    test = task.finish(config, run_dir, data)
    return TrainResult(run_dir, progress.best, test, data.skipped, fit=fit)


def _train_epochs(
    task: TrainingTask, config: Mapping[str, Any], data: PreparedData, parts: TrainingParts,
    progress: Progress, run_dir: Path, metadata: Mapping[str, Any], context: DistContext,
    show_progress: bool, deadline: Deadline, fit: BudgetFit | None,
) -> None:  # fmt: skip
    """The run's epochs from ``progress`` on: each trained, validated where it is due (every k-th
    and the last), recorded; reduced epochs skipped where they fall behind; with a budget, the
    deadline's stop and the re-plan of the epochs left."""
    skipping = False  # the rest of the reduced epochs given up for the full-size ones (below)
    # with a budget, the settled epochs' own times re-plan the epochs left (_replan)
    costs = EpochCosts(fit.validation_s) if fit is not None and deadline.end is not None else None
    for epoch in itertools.count(progress.epoch):  # parts.epochs can change on the way (_replan)
        if epoch >= parts.epochs:
            break
        every = config["train"]["validate_every"]
        next_s = costs.next_epoch_s(epoch, parts.epochs, every) if costs is not None else None
        if not deadline.allows_another(next_s=next_s):  # single-process runs only (resolve_run_config)
            log.info(f"stopped after epoch {epoch} of {parts.epochs}: the next would overrun the budget")
            break
        epoch_started, first_step = time.perf_counter(), progress.step
        scale = task.input_scale(epoch, parts.planned_epochs)
        if scale != 1.0 and (
            skipping or not keep_full_size_epochs(deadline, fit, _full_left(task, epoch, parts))
        ):
            _skip_reduced_epoch(task, epoch, parts, progress, announce=context.is_main and not skipping)
            skipping = True
            continue
        row = train_epoch(task, config, data, parts, progress, epoch, context, show_progress, scale)
        if not context.is_main:  # rank 0 validates, logs and writes; the others go on to the next epoch
            continue
        validated = data.val is not None and task.validates(row) and scale == 1.0
        if validated and not _last_epoch(epoch, parts.epochs, deadline, epoch_started, costs, every):
            validated = (epoch + 1) % every == 0
        validation_s = None
        if validated:
            clock = time.perf_counter()
            row.update(
                task.validate(parts.kept, data, metadata, context.device, config["train"]["channels_last"])
            )
            validation_s = time.perf_counter() - clock
        row["seconds"] = time.perf_counter() - epoch_started
        end_epoch(task, run_dir, parts, progress, row, metadata, candidate=validated or data.val is None)
        seconds = time.perf_counter() - epoch_started  # with the checkpoint writes
        deadline.record(seconds)
        if costs is not None and task.settled(parts, epoch, first_step):
            costs.record(seconds - (validation_s or 0.0), validation_s)
            _replan(config, run_dir, parts, progress, costs, deadline, fit, epoch)


def _full_left(task: TrainingTask, epoch: int, parts: TrainingParts) -> int:
    """The planned full-size epochs from ``epoch`` on."""
    return sum(task.input_scale(e, parts.planned_epochs) == 1.0 for e in range(epoch, parts.epochs))


def _replan(
    config: Mapping[str, Any], run_dir: Path, parts: TrainingParts, progress: Progress, costs: EpochCosts,
    deadline: Deadline, fit: BudgetFit | None, epoch: int,
) -> None:  # fmt: skip
    """After settled epoch ``epoch``: fit the epochs left to the budget by what the settled epochs
    cost (:func:`~lwcnn.training.budget.refit_epochs`), the schedule's remainder spread over them
    (train.stretch, written to config.yaml so that it reproduces the run; budget.json lists each
    re-plan). The probe's estimate missed by 10-25% on the 2-core VMs: runs ended minutes early,
    or the deadline cut their last, lowest-rate epochs."""
    planned_left = parts.epochs - (epoch + 1)
    if not costs.ready or deadline.end is None or fit is None or planned_left < 1:
        return
    train_cfg = config["train"]
    epoch_s, validation_s = costs.epoch_s(), costs.validation_s()
    left_s = deadline.end - time.monotonic()
    count = refit_epochs(
        left_s, epoch + 1, planned_left, epoch_s, validation_s, train_cfg["validate_every"], not costs.shrunk
    )
    if count == planned_left:
        return
    costs.shrunk = costs.shrunk or count < planned_left
    before, epochs = parts.epochs, epoch + 1 + count
    knots = parts.schedule.stretched(progress.step, epochs * len(parts.loader)).knots
    parts.epochs = train_cfg["epochs"] = epochs
    train_cfg["stretch"] = stretch_entry(parts.planned_epochs, knots)
    parts.schedule = run_schedule(train_cfg, len(parts.loader))  # as config.yaml gives it, to the bit
    fit.replans.append(
        {"after_epoch": epoch + 1, "epochs": epochs, "epoch_s": round(epoch_s, 3),
         "validation_s": round(validation_s, 3), "left_s": round(left_s, 1)}
    )  # fmt: skip
    try:
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        atomic_write_json(run_dir / "budget.json", dataclasses.asdict(fit))
    except OSError as error:
        raise OutputError(f"{run_dir}: cannot write the run folder ({error.strerror or error})") from None
    log.info(
        f"epoch {epoch + 1}: {before} -> {epochs} epochs, re-planned by what the last ones cost "
        f"({epoch_s:.1f} s an epoch, the probe predicted {fit.predicted_epoch_s():.1f} s; "
        f"{validation_s:.1f} s a validation), {_duration(left_s)} left; the learning rate follows"
    )


def _skip_reduced_epoch(
    task: TrainingTask, epoch: int, parts: TrainingParts, progress: Progress, announce: bool
) -> None:
    """Skip reduced-scale epoch ``epoch``, its steps counted as done, so that the planned full-size
    epochs run whole at the learning rates planned for them (trained at full size instead, each
    such epoch cost 3x, and the deadline then cut the run's last, lowest-rate epochs: 12-17 of
    85-89 in the 15-minute NEU and ELPV-levels runs). ``announce``: say so (the first one skipped)."""
    if announce:
        log.info(
            f"epoch {epoch + 1}: skipping the {_reduced_left(task, epoch, parts)} reduced epochs left: "
            f"another would leave too little of the budget for the {_full_left(task, epoch, parts)} "
            "full-size ones"
        )
    progress.step += len(parts.loader)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _reduced_left(task: TrainingTask, epoch: int, parts: TrainingParts) -> int:
    """The planned reduced-scale epochs from ``epoch`` on."""
    return parts.epochs - epoch - _full_left(task, epoch, parts)


def _last_epoch(
    epoch: int, epochs: int, deadline: Deadline, epoch_started: float, costs: EpochCosts | None, every: int
) -> bool:
    """Whether ``epoch`` (just trained) is the run's last: the planned one, or the deadline leaves
    no room for another (judged with this epoch's time so far and a tenth more for its checkpoint
    writes: when in doubt, validate, so that the run does not end on an epoch it did not score).
    Once the run re-plans (``costs`` ready), judged as the plan judges: this epoch's validation,
    then the next epoch, by the settled epochs' times."""
    if epoch + 1 >= epochs:
        return True
    next_s = costs.next_epoch_s(epoch + 1, epochs, every) if costs is not None else None
    if next_s is not None and costs is not None:
        return not deadline.fits(costs.validation_s() + next_s)
    return not deadline.allows_another(pending=1.1 * (time.perf_counter() - epoch_started))


def fit_to_budget(
    task: TrainingTask, config: Mapping[str, Any], data: PreparedData, context: DistContext, started: float
) -> tuple[dict[str, Any], BudgetFit]:
    """Time a few real steps (fp32; bf16 too where the CPU has it natively and the config says
    ``auto``) and one validation pass, and return the config with the precision chosen and, with a
    budget, ``train.epochs`` fitted to it (``train.budget`` then 0: the saved config reproduces the
    run instead of probing again)."""
    probe_started = time.monotonic()
    config = copy.deepcopy(dict(config))
    train_cfg = config["train"]
    precision, step_s, startup, parts = _probe_steps(task, config, data, context)
    train_cfg["precision"] = precision
    wanted = train_cfg["min_steps"]
    if train_cfg["budget"] and wanted:
        fitting = 0.7 * train_cfg["budget"] / step_s  # roughly: validation and the test take the rest
        if fitting < wanted and task.shrink_crops(config, data, fitting / wanted):
            _, step_s, startup, parts = _probe_steps(task, config, data, context)
            if context.is_main:
                log.info(
                    f"training crops {config['data']['crop']}: at most {fitting:.0f} steps of the planned "
                    f"size fit the budget, fewer than train.min_steps={wanted}"
                )
    budget = train_cfg["budget"]
    share, factor = task.scaled_epochs()
    full_step_s = scaled_s = step_s
    if budget and share > 0:  # the epochs at a reduced scale cost less a step: the mean of both
        scaled_s = _time_scaled_steps(task, config, parts, context, factor)
        step_s = share * scaled_s + (1 - share) * step_s
    metadata = run_metadata(task, config, data, parts)
    validation_s = finish_s = 0.0
    if budget and data.val is not None:
        clock = time.perf_counter()
        task.validate(parts.kept, data, metadata, context.device, train_cfg["channels_last"])
        validation_s = time.perf_counter() - clock
    if budget and data.test is not None:  # export, the test in ONNX Runtime (faster than this), plots
        if data.val is not None and len(data.val):
            per_image = validation_s / len(data.val)
        else:
            per_image = _time_inference(parts.kept, parts.loader, context.device) / 2
        # the test runs in ONNX Runtime, faster than the eager validation timed here: its time is ample
        finish_s = 4.0 + per_image * len(data.test)
    overhead = startup + 3 * _time_save(parts, metadata)
    steps = len(parts.loader)
    epochs, every = train_cfg["epochs"], train_cfg["validate_every"]
    if budget:
        elapsed = time.monotonic() - started
        epochs, every = fit_validation(
            budget, elapsed, steps, step_s, validation_s, finish_s, overhead, task.validated_share(config)
        )
    train_cfg["epochs"], train_cfg["validate_every"], train_cfg["budget"] = epochs, every, 0.0
    fit = BudgetFit(
        budget_s=budget, epochs=epochs, steps_per_epoch=steps, step_s=step_s,
        epoch_overhead_s=overhead, validation_s=validation_s, finish_s=finish_s, precision=precision,
        probe_s=time.monotonic() - probe_started, validate_every=every, batch_size=train_cfg["batch_size"],
        full_epoch_s=steps * full_step_s + overhead + validation_s / every if budget and share > 0 else 0.0,
        scaled_epoch_s=steps * scaled_s + overhead if budget and share > 0 else 0.0,
    )  # fmt: skip
    if context.is_main:
        log.info(fit.line())
    return config, fit


def resolve_run_config(config: Mapping[str, Any], resume: bool, context: DistContext) -> Mapping[str, Any]:
    """The config the run trains with: a resumed run's own (``config.yaml`` in its folder), else
    ``config``, refusing to train over a run that exists; the recipe's settings that the loop
    itself uses are checked before anything is read or written."""
    run_dir = Path(config["out"])
    resume_path = run_dir / "resume.pt"
    if resume:
        if not resume_path.exists():
            raise MissingError(f"{resume_path}: nothing to resume (no completed epoch in {run_dir})")
        config = load_config(run_dir / "config.yaml", [f"out={run_dir}"])
    elif resume_path.exists():  # every rank checks: none has written anything yet
        raise RunExistsError(f"{run_dir}: already holds a run; use --resume to continue it or another out=")
    train_cfg = config["train"]
    precision = train_cfg["precision"]
    if precision not in ("fp32", "bf16", "auto"):
        raise ConfigError(f"train.precision: 'fp32', 'bf16' or 'auto', got {precision!r}")
    if train_cfg["ema"]:
        WeightAverage.checked(train_cfg["ema"])
    if train_cfg["optimizer"] != "adam":
        raise ConfigError(
            f"train.optimizer: only 'adam' (the paper's) is supported, got {train_cfg['optimizer']!r}"
        )
    if context.distributed and not resume and (train_cfg["budget"] or precision == "auto"):
        # each process would probe its own timings and could fit a different number of epochs
        raise ConfigError(
            "train.budget and train.precision=auto fit a single-process run; under torchrun give "
            "train.epochs and train.precision"
        )
    if train_cfg["sync_bn"] and not context.device.startswith("cuda"):
        raise ConfigError("train.sync_bn needs GPUs (PyTorch's SyncBatchNorm runs on CUDA only)")
    per_rank = train_cfg["batch_size"] // context.world_size
    if per_rank % train_cfg["accumulate"]:
        batch = train_cfg["batch_size"]
        raise ConfigError(
            f"train.batch_size {batch} over {context.world_size} process(es) gives {per_rank} images "
            f"per process, not a multiple of train.accumulate={train_cfg['accumulate']}"
        )
    torch.set_num_threads(train_cfg["threads"] or os.cpu_count() or 1)
    if context.is_main and precision == "bf16" and context.device == "cpu" and cpu_has_native_bf16() is False:
        log.info("train.precision=bf16: this CPU has no AVX512-BF16 or AMX; bf16 is likely slower than fp32")
    return config


def build_parts(
    task: TrainingTask, config: Mapping[str, Any], data: PreparedData, context: DistContext
) -> TrainingParts:
    """Sampler, loader, schedule, model (BN settings, channels_last, DDP), optimiser, weight average."""
    train_cfg = config["train"]
    batch_size = train_cfg["batch_size"]  # the global batch, over all processes
    sampler = task.sampler(config, data, context, batch_size)
    workers = train_cfg["workers"]
    loader = DataLoader(
        data.train,
        batch_size=batch_size // context.world_size,
        # workers are kept for the run (forked once, not every epoch); the epoch travels with each
        # request (EpochTaggedSampler says why)
        sampler=EpochTaggedSampler(sampler, data.train) if workers else sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker,
        # no tiny last batch for BN, unless that is all there is (distributed: the sampler cuts)
        drop_last=not context.distributed and len(sampler) > batch_size,
    )
    epochs = train_cfg["epochs"]
    schedule = run_schedule(train_cfg, len(loader))
    classes = task.classes(data)
    model = build_model(config, task.task, len(classes), schedule)
    if train_cfg["sync_bn"]:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(context.device)
    if train_cfg["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(parameter_groups(model, train_cfg), lr=schedule.lr)
    average = WeightAverage(model, train_cfg["ema"]) if train_cfg["ema"] else None
    net = model  # wrapped for DistributedDataParallel once a resumed state is in (wrap_distributed)
    return TrainingParts(
        sampler, loader, schedule, classes, model, net, optimizer, average, train_cfg["accumulate"],
        epochs, planned_epochs(train_cfg),
    )  # fmt: skip


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Training's informational lines held back for the duration (warnings still shown)."""
    level = log.level
    log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


def _probe_steps(
    task: TrainingTask, config: dict[str, Any], data: PreparedData, context: DistContext
) -> tuple[str, float, float, TrainingParts]:
    """The precision to train in (``auto``: fp32, or bf16 where the CPU has it natively and it is
    faster), its median step time, the loader's start-up time, and the parts it was timed with."""
    train_cfg = config["train"]
    auto = train_cfg["precision"] == "auto"
    timings: dict[str, float] = {}
    startup = 0.0
    native = auto and cpu_has_native_bf16()
    for precision in ("fp32", "bf16") if native else ("fp32" if auto else train_cfg["precision"],):
        probed = {**config, "train": {**train_cfg, "precision": precision}}
        with _quiet():  # the run builds its own parts next and says the same things (the backbone) once
            parts = build_parts(task, probed, data, context)
        parts.sampler.set_epoch(0)  # type: ignore[attr-defined]
        data.train.set_epoch(train_cfg["seed"], 0, context.rank)  # type: ignore[attr-defined]

        def step(
            images: torch.Tensor, targets: torch.Tensor, parts: TrainingParts = parts, probed: dict = probed
        ) -> None:
            train_step(task, probed["train"], parts, 0, images, targets, context, _StepTotals())

        timings[precision], startup = time_steps(step, parts.loader)
    chosen = choose_precision(timings["fp32"], timings.get("bf16")) if auto else train_cfg["precision"]
    return chosen, timings[chosen], startup, parts


def _time_scaled_steps(
    task: TrainingTask, config: Mapping[str, Any], parts: TrainingParts, context: DistContext, scale: float
) -> float:
    """The median step time with batches resized by ``scale``."""

    def step(images: torch.Tensor, targets: torch.Tensor) -> None:
        train_step(task, config["train"], parts, 0, images, targets, context, _StepTotals(), scale)

    return time_steps(step, parts.loader)[0]


def _time_inference(model: nn.Module, loader: DataLoader, device: str) -> float:
    """Seconds per image of an eager forward pass over one training batch (no validation part to
    time: what the test will cost is estimated from this)."""
    images, _ = next(iter(loader))
    model.eval()
    with torch.no_grad():
        clock = time.perf_counter()
        model(images.to(device))
        seconds = time.perf_counter() - clock
    model.train()
    return seconds / len(images)


def _time_save(parts: TrainingParts, metadata: Mapping[str, Any]) -> float:
    """Seconds to write one checkpoint (an epoch writes best, last and resume.pt), in a scratch folder."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lwcnn-probe-") as scratch:
        clock = time.perf_counter()
        save_model(Path(scratch) / "probe", parts.kept, {**metadata, "metrics": {}})
        return time.perf_counter() - clock


def restore(parts: TrainingParts, resume_path: Path) -> Progress:
    """Model, optimiser and weight average as the last completed epoch left them, and where it stood."""
    state = load_training_state(resume_path)
    parts.model.load_state_dict(state["model"])
    parts.optimizer.load_state_dict(state["optimizer"])
    if parts.average:
        parts.average.load_state_dict(state["average"])
    return Progress(state["epoch"], state["step"], state["best"], state["history"])


def run_metadata(
    task: TrainingTask, config: Mapping[str, Any], data: PreparedData, parts: TrainingParts
) -> dict[str, Any]:
    """The model card fields every checkpoint of the run carries (metrics are added per epoch),
    with how the model was started (``init``: from scratch, which pretrained backbone...)."""
    return {
        "commit": git_commit(),  # the code this run started from, not whatever is checked out later
        "task": task.task,
        "classes": list(parts.classes),
        "preprocessing": data.preprocessing.to_dict(),
        "data": {"root": str(config["data"]["root"]), "layout": data.images.layout},
        "split": data.split.to_dict(),
        "config": config,
        "init": getattr(parts.model, "init", {"kind": "scratch"}),
        **task.metadata(config, data),
    }


def train_epoch(
    task: TrainingTask, config: Mapping[str, Any], data: PreparedData, parts: TrainingParts,
    progress: Progress, epoch: int, context: DistContext, show_progress: bool, scale: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """One epoch of steps (gradient accumulation, autocast, weight average; batches resized by
    ``scale``); returns its row of metrics.csv so far (the training columns, summed over ranks)."""
    train_cfg = config["train"]
    parts.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
    data.train.set_epoch(train_cfg["seed"], epoch, context.rank)  # type: ignore[attr-defined]
    epoch_columns = task.epoch_columns(parts.sampler, progress.step)
    parts.net.train()
    totals = _StepTotals()
    bar = tqdm(
        parts.loader, desc=f"epoch {epoch + 1}/{parts.epochs}", unit="step",
        disable=None if show_progress else True, leave=False,
    )  # fmt: skip
    for images, targets in bar:
        train_step(task, train_cfg, parts, progress.step, images, targets, context, totals, scale)
        if parts.average:
            parts.average.update(parts.model, progress.step)
        progress.step += 1
        if progress.step % max(1, train_cfg["log_every"]) == 0:
            metrics = task.train_metrics(totals.loss_sum, totals.counts or (), totals.seen)
            bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items()} | {"step": progress.step})
    bar.close()
    loss_sum, seen, *summed = sum_over_ranks(context, totals.loss_sum, totals.seen, *(totals.counts or ()))
    return {
        "epoch": epoch + 1,
        "step": progress.step,
        "lr": parts.schedule.lr_at(progress.step),
        **epoch_columns,
        **task.train_metrics(loss_sum, summed, int(seen)),
    }


@dataclass
class _StepTotals:
    """The epoch's summed training loss, task counts and images seen (on this rank)."""

    loss_sum: float = 0.0
    counts: tuple[float, ...] | None = None
    seen: int = 0


def train_step(
    task: TrainingTask, train_cfg: Mapping[str, Any], parts: TrainingParts, step: int,
    images: torch.Tensor, targets: torch.Tensor, context: DistContext, totals: _StepTotals,
    scale: float = 1.0,
) -> None:  # fmt: skip
    """One optimiser step over ``train.accumulate`` micro-batches; gradients are all-reduced once,
    on the last micro-batch. ``scale`` < 1 resizes the images first (image-level targets only)."""
    images, targets = images.to(context.device), targets.to(context.device)
    if scale != 1.0:
        images = F.interpolate(images, scale_factor=scale, mode="bilinear", antialias=True)
    if train_cfg["channels_last"]:
        images = images.contiguous(memory_format=torch.channels_last)
    for group in parts.optimizer.param_groups:
        group["lr"] = parts.schedule.lr_at(step) * group.get("lr_scale", 1.0)
    parts.optimizer.zero_grad(set_to_none=True)
    micro_images, micro_targets = images.chunk(parts.accumulate), targets.chunk(parts.accumulate)
    device_kind = context.device.split(":")[0]  # autocast's device type: cpu or cuda
    l2 = train_cfg["l2"]
    for index, (micro, micro_target) in enumerate(zip(micro_images, micro_targets, strict=True)):
        last = index == len(micro_images) - 1
        with parts.net.no_sync() if context.distributed and not last else contextlib.nullcontext():
            with torch.autocast(device_kind, torch.bfloat16, enabled=train_cfg["precision"] == "bf16"):
                loss, batch_counts = task.loss(parts.net(micro), micro_target)
            total = loss + l2 * l2_penalty(parts.model) if l2 else loss
            (total / len(micro_images)).backward()
        totals.loss_sum += float(loss.detach()) * len(micro_target)
        totals.counts = (
            batch_counts
            if totals.counts is None
            else tuple(a + b for a, b in zip(totals.counts, batch_counts, strict=True))
        )
        totals.seen += len(micro_target)
    parts.optimizer.step()


def end_epoch(
    task: TrainingTask, run_dir: Path, parts: TrainingParts, progress: Progress, row: dict[str, Any],
    metadata: Mapping[str, Any], candidate: bool = True,
) -> None:  # fmt: skip
    """Record the epoch: metrics.csv, ``best.*`` if it is the best so far, ``last.*``, ``resume.pt``.
    An epoch that was not validated although the run validates (``candidate`` False: between
    every-k-th ones) is chosen only while no validated epoch has been."""
    progress.history.append(row)
    write_metrics_csv(run_dir / "metrics.csv", progress.history, task.columns)
    key = [float(candidate), *task.selection_key(row)]  # any candidate outranks every other epoch
    epoch, step = row["epoch"], row["step"]
    epoch_meta = {**metadata, "metrics": {"epoch": epoch, "step": step, **_rounded(row)}}
    best = progress.best
    if best.get("rank") is None or key > best["rank"]:
        progress.best = {"epoch": epoch, "step": step, "rank": key, **_rounded(row)}
        save_model(run_dir / "best", parts.kept, epoch_meta)
    save_model(run_dir / "last", parts.kept, epoch_meta)
    save_training_state(
        run_dir / "resume.pt",
        {
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            **({"average": parts.average.state_dict()} if parts.average else {}),
            "epoch": epoch,
            "step": step,
            "best": progress.best,
            "history": progress.history,
        },
    )
    log.info(epoch_line(row, parts.epochs))


def parameter_groups(model: nn.Module, train_cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: a pretrained backbone learns at ``train.backbone_lr`` times
    the rate (``lr_scale``, applied at every step), everything else at the rate itself."""
    scale = train_cfg["backbone_lr"]
    if scale == 1.0 or getattr(model, "init", {}).get("kind", "scratch") == "scratch":
        return [{"params": list(model.parameters()), "lr_scale": 1.0}]
    backbone = {id(p) for p in model.backbone.parameters()}
    rest = [p for p in model.parameters() if id(p) not in backbone]
    return [
        {"params": list(model.backbone.parameters()), "lr_scale": scale},
        {"params": rest, "lr_scale": 1.0},
    ]


def build_model(config: Mapping[str, Any], task: str, num_classes: int, schedule: Schedule) -> nn.Module:
    """The model of ``config``, BN set to the (scaled) recipe, started as ``model.init`` says
    (``train.init_from``, a trained model, where an older config gives one); ``model.init`` records
    how (:func:`lwcnn.pretrained.initialise`)."""
    torch.manual_seed(config["train"]["seed"])
    model = create_model(
        config["model"]["name"],
        task=task,
        num_classes=num_classes,
        in_channels=config["data"]["channels"],
        **(
            {"shortcut_stride": config["model"]["shortcut_stride"]}
            if task == "seg"
            else {"pool": config["model"]["pool"]}
        ),
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = schedule.bn_momentum
            module.eps = config["train"]["bn_eps"]
    init = config["train"].get("init_from") or config["model"].get("init")
    model.init = initialise(model, init, config["normalize"])
    return model


def cpu_has_native_bf16() -> bool | None:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX); None where unknown."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """sum(w^2) / 2 over convolution kernels (4-D weights), TensorFlow's ``l2_loss``."""
    return sum((p.pow(2).sum() for p in model.parameters() if p.dim() == 4), torch.zeros(())) / 2


def write_metrics_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    atomic_write_text(path, buffer.getvalue())


def _rounded(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items() if k not in ("epoch", "step")
    }


def epoch_line(row: Mapping[str, Any], epochs: int) -> str:
    """``epoch 3/40 step 84: train_loss 0.1234, val_acc 0.9876 (12 s)``: every figure of the row."""
    figures = ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in row.items()
        if k not in ("epoch", "step", "lr", "seconds") and v is not None
    )
    return f"epoch {row['epoch']}/{epochs} step {row['step']}: {figures} ({row['seconds']:.0f} s)"
