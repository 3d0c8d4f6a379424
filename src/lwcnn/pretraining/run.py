"""``lwcnn pretrain``: a backbone pretrained on formula-driven images, with nothing downloaded.

The run folder receives ``config.yaml`` (steps and precision as fitted: it reproduces the run),
``metrics.csv`` (the pretext losses and the held-out figures at every evaluation),
``learning_curves.png``, ``resume.pt`` (every ``train.eval_every`` steps: an interrupted run
continues with ``--resume`` on the same image stream) and the backbones: ``backbone-c3`` and
``backbone-c1`` (``.safetensors`` + ``.json``; the one of the other channel count derived exactly,
:func:`lwcnn.pretrained.with_channels`), which ``model.init`` takes.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import logging
import math
import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lwcnn.checkpoints import git_commit, load_training_state, save_training_state
from lwcnn.config import dump_config, load_config
from lwcnn.data.pretext import PretextImages, PretextSettings, StreamSampler, user_images
from lwcnn.data.procedural import FAMILIES
from lwcnn.data.synthetic_defects import DEFECT_KINDS
from lwcnn.errors import ConfigError, MissingError, OutputError, RunExistsError
from lwcnn.evaluation.plots import plot_learning_curves
from lwcnn.fileio import atomic_write_text, remove_stale_temporaries
from lwcnn.pretrained import save_backbone, with_channels
from lwcnn.pretraining.objectives import PretextModel, pretext_loss, pretext_metrics
from lwcnn.training.budget import BF16_GAIN, SAFETY
from lwcnn.training.loop import cpu_has_native_bf16
from lwcnn.training.memory import keep_freed_memory
from lwcnn.training.schedule import half_cosine

log = logging.getLogger("lwcnn.training")

COLUMNS = (
    "step", "seconds", "lr", "loss", "category", "map", "kinds",
    "category_acc", "map_iou", "image_acc", "kinds_acc",
)  # fmt: skip
CURVES = (
    ("pretext loss", "loss", ("loss", "category", "map", "kinds")),
    ("held-out figures", "figure", ("category_acc", "map_iou", "image_acc")),
)


@dataclass
class PretrainResult:
    run_dir: Path
    steps: int
    metrics: dict[str, Any]
    backbones: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False


@dataclass
class _Stream:
    """What a run trains on: the settings, the user's images, the held-out batches."""

    settings: PretextSettings
    images: list[Path]
    held_out: list[tuple[torch.Tensor, ...]]


def pretrain(
    config: Mapping[str, Any], resume: bool = False, show_progress: bool = True, started: float | None = None
) -> PretrainResult:
    """Pretrain as ``config`` (a pretraining config, :data:`lwcnn.config.PRETRAINING_DEFAULTS`) says,
    in the run folder ``config['out']``; with ``resume``, continue the run there from its last
    checkpoint. ``started`` (``time.monotonic``): when the budget began to count."""
    started = time.monotonic() if started is None else started
    keep_freed_memory()  # as training does (lwcnn.training.memory)
    run_dir = Path(config["out"])
    config = _resolved(config, resume)
    torch.set_num_threads(config["train"]["threads"] or os.cpu_count() or 1)
    stream = _stream(config)
    deadline = None
    if not resume:
        config, budget_s = _fit(config, stream, started)
        deadline = started + budget_s * (1 - SAFETY) if budget_s else None
        _open_run_folder(run_dir, config)
    train_cfg = config["train"]
    steps = train_cfg["steps"]
    model = _model(config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=train_cfg["lr"], weight_decay=train_cfg["weight_decay"]
    )
    step, history, seconds_before = 0, [], 0.0
    if resume:
        state = load_training_state(run_dir / "resume.pt")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, seconds_before = state["step"], state["history"], state["seconds"]
        log.info(f"resuming {run_dir} at step {step} of {steps}")
    step, stopped = _train(
        config, model, optimizer, stream, step, history, seconds_before, deadline, show_progress
    )
    plot_learning_curves(
        run_dir / "metrics.csv",
        run_dir / "learning_curves.png",
        CURVES,
        title=config["model"]["name"],
        x="step",
    )
    backbones = _write_backbones(run_dir, model, config, stream, step, history)
    return PretrainResult(run_dir, step, history[-1] if history else {}, backbones,
                          history[-1]["seconds"] if history else 0.0, stopped)  # fmt: skip


def _resolved(config: Mapping[str, Any], resume: bool) -> dict[str, Any]:
    """A resumed run's own config, or ``config`` checked (no run in its folder yet)."""
    run_dir = Path(config["out"])
    if resume:
        if not (run_dir / "resume.pt").exists():
            raise MissingError(f"{run_dir / 'resume.pt'}: nothing to resume (no checkpoint in {run_dir})")
        return load_config(run_dir / "config.yaml", [f"out={run_dir}"])
    if (run_dir / "resume.pt").exists():
        raise RunExistsError(
            f"{run_dir}: already holds a pretraining run; use --resume to continue it or another --out"
        )
    config = copy.deepcopy(dict(config))
    if config["task"] != "pretrain":
        raise ConfigError(
            f"lwcnn pretrain takes a pretraining config (task: pretrain), got task {config['task']!r}"
        )
    normalize = config["normalize"]
    if len(normalize["mean"]) != 1 or len(normalize["std"]) != 1:
        raise ConfigError("pretraining: normalize takes one mean and one std (the same for every channel)")
    if config["data"]["size"] % 8:
        raise ConfigError(f"data.size must be a multiple of 8, got {config['data']['size']}")
    PretextModel(config["model"]["name"], 1, 2, "classify")  # an unknown model: one line, now
    return config


def _stream(config: Mapping[str, Any]) -> _Stream:
    data, pretext, normalize = config["data"], config["pretext"], config["normalize"]
    images = user_images(data["images"]) if data["images"] else []
    settings = PretextSettings(
        size=data["size"], channels=data["channels"], categories=data["categories"],
        instances=data["instances"], seed=data["seed"], defects=pretext["objective"] == "defects",
        defect_share=pretext["defect_share"], images_share=data["images_share"] if images else 0.0,
        mean=normalize["mean"][0], std=normalize["std"][0],
    )  # fmt: skip
    held = PretextImages(settings, config["train"]["eval_images"], held_out=True)
    loader = DataLoader(held, batch_size=config["train"]["batch_size"], shuffle=False)
    return _Stream(settings, images, list(loader))


def _model(config: Mapping[str, Any]) -> PretextModel:
    torch.manual_seed(config["train"]["seed"])
    model = PretextModel(
        config["model"]["name"], config["data"]["channels"], config["data"]["categories"],
        config["pretext"]["objective"],
    )  # fmt: skip
    if config["train"]["channels_last"]:
        model = model.to(memory_format=torch.channels_last)
    return model


def learning_rate(train_cfg: Mapping[str, Any], step: int) -> float:
    """Linear warm-up over ``train.warmup`` of the steps, then a cosine decay to zero."""
    steps = train_cfg["steps"]
    warm = max(1, round(train_cfg["warmup"] * steps))
    if step < warm:
        return train_cfg["lr"] * (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return train_cfg["lr"] * half_cosine(progress)


def _loader(config: Mapping[str, Any], stream: _Stream, start: int, stop: int) -> DataLoader:
    batch = config["train"]["batch_size"]
    dataset = PretextImages(stream.settings, stop * batch, stream.images)
    workers = config["data"]["workers"]
    return DataLoader(
        dataset, batch_size=batch, sampler=StreamSampler(start, stop, batch), num_workers=workers,
        prefetch_factor=4 if workers else None,
    )  # fmt: skip


def _step(model: PretextModel, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...],
          config: Mapping[str, Any], lr: float) -> dict[str, float]:  # fmt: skip
    image, category, defect_map, kinds = batch
    if config["train"]["channels_last"]:
        image = image.contiguous(memory_format=torch.channels_last)
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", torch.bfloat16, enabled=config["train"]["precision"] == "bf16"):
        out = model(image)
    loss, terms = pretext_loss(out, category, defect_map, kinds, config["pretext"])
    loss.backward()
    optimizer.step()
    return {"loss": float(loss.detach()), **terms}


def _train(
    config: Mapping[str, Any], model: PretextModel, optimizer: torch.optim.Optimizer, stream: _Stream,
    step: int, history: list[dict[str, Any]], seconds_before: float, deadline: float | None,
    show_progress: bool,
) -> tuple[int, bool]:  # fmt: skip
    """Train from ``step`` to the end (or the deadline); evaluate and checkpoint every
    ``eval_every`` steps and at the end. Returns the last step and whether the deadline stopped it."""
    train_cfg = config["train"]
    steps, every = train_cfg["steps"], train_cfg["eval_every"]
    run_dir = Path(config["out"])
    clock = time.monotonic()
    sums: dict[str, list[float]] = {}
    bar = tqdm(
        total=steps, initial=step, desc="pretrain", unit="step", disable=None if show_progress else True
    )
    stopped = False
    first = step
    # how far a budgeted run's schedule had run ahead of its steps when it was checkpointed
    ahead = history[-1].get("ahead", 0) if history else 0

    def scheduled(step: int) -> int:
        # Under a budget the schedule follows the clock as well as the steps: where the probe's
        # estimate was optimistic (a busy machine, textures still being rendered), the deadline
        # would otherwise cut the cosine while the rate is still high. A resumed run keeps the lead.
        if deadline is None:
            return min(steps - 1, step + ahead) if ahead else step
        share = (time.monotonic() - clock) / max(1e-6, deadline - clock)
        return max(step, min(steps - 1, first + math.floor(share * (steps - first))))

    model.train()
    for batch in _loader(config, stream, step, steps):
        terms = _step(model, optimizer, batch, config, learning_rate(train_cfg, scheduled(step)))
        step += 1
        for name, value in terms.items():
            sums.setdefault(name, []).append(value)
        bar.update(1)
        if step % train_cfg["log_every"] == 0:
            bar.set_postfix({k: f"{statistics.fmean(v[-50:]):.3f}" for k, v in sums.items()})
        stopped = deadline is not None and time.monotonic() > deadline and step < steps
        if step % every == 0 or step == steps or stopped:
            row = {"step": step, "seconds": seconds_before + time.monotonic() - clock,
                   "lr": learning_rate(train_cfg, scheduled(step - 1)), "ahead": scheduled(step) - step,
                   **{k: statistics.fmean(v) for k, v in sums.items()},
                   **pretext_metrics(model, stream.held_out)}  # fmt: skip
            history.append(row)
            sums = {}
            _checkpoint(run_dir, model, optimizer, step, history, row["seconds"])
            log.info(_line(row, steps))
        if stopped:
            log.info(f"stopped at step {step} of {steps}: the budget is spent")
            break
    bar.close()
    return step, stopped


def _checkpoint(run_dir: Path, model: PretextModel, optimizer: torch.optim.Optimizer, step: int,
                history: list[dict[str, Any]], seconds: float) -> None:  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for row in history:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in COLUMNS})
    atomic_write_text(run_dir / "metrics.csv", buffer.getvalue())
    save_training_state(
        run_dir / "resume.pt",
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
         "history": history, "seconds": seconds},
    )  # fmt: skip


def _line(row: Mapping[str, Any], steps: int) -> str:
    figures = ", ".join(
        f"{k} {v:.4f}" for k, v in row.items() if k not in ("step", "seconds", "lr") and isinstance(v, float)
    )
    return f"step {row['step']}/{steps}: {figures} ({row['seconds'] / 60:.1f} min)"


def sources(config: Mapping[str, Any], stream: _Stream) -> list[str]:
    """What the backbone learned from, in words (written into its card)."""
    found = [
        f"formula-driven textures: {config['data']['categories']} categories of {', '.join(FAMILIES)}; "
        f"{config['data']['instances']} instances each (seed {config['data']['seed']}), nothing downloaded"
    ]
    if config["pretext"]["objective"] == "defects":
        found.append(f"synthetic defects painted in: {', '.join(DEFECT_KINDS)}")
    if stream.images:
        found.append(f"{len(stream.images)} images of {config['data']['images']}")
    return found


def _write_backbones(run_dir: Path, model: PretextModel, config: Mapping[str, Any], stream: _Stream,
                     step: int, history: list[dict[str, Any]]) -> list[Path]:  # fmt: skip
    """``backbone-c1`` and ``backbone-c3``: the one trained, and the other derived from it."""
    channels = config["data"]["channels"]
    card = {
        "model": {"name": model.model_name, "family": model.family, "width": model.width},
        "normalize": dict(config["normalize"]),
        "pretraining": _pretraining_record(config, stream, step, history),
        "commit": git_commit(),
        "run": str(run_dir),
    }
    written = [
        save_backbone(run_dir / f"backbone-c{channels}", model.backbone, {**card, "in_channels": channels})
    ]
    other = 1 if channels == 3 else 3
    derived = PretextModel(model.model_name, other, 1, "classify").backbone
    derived.load_state_dict(with_channels(model.backbone.state_dict(), channels, other))
    how = "summed over the colour channels" if other == 1 else "spread evenly over the colour channels"
    card |= {"in_channels": other, "derived": f"from backbone-c{channels}: first convolution {how}"}
    written.append(save_backbone(run_dir / f"backbone-c{other}", derived, card))
    return written


def _pretraining_record(config: Mapping[str, Any], stream: _Stream, step: int,
                        history: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """How the backbone was made: the card's ``pretraining`` field."""
    train_cfg = config["train"]
    last = history[-1] if history else {}
    return {
        "objective": config["pretext"]["objective"],
        "steps": step,
        "batch_size": train_cfg["batch_size"],
        "images_seen": step * train_cfg["batch_size"],
        "size": config["data"]["size"],
        "sources": sources(config, stream),
        "precision": train_cfg["precision"],
        "minutes": round(last.get("seconds", 0.0) / 60, 1),
        "metrics": {k: v for k, v in last.items() if k.endswith(("_acc", "_iou")) and v is not None},
        "config": dict(config),
    }


def _open_run_folder(run_dir: Path, config: Mapping[str, Any]) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(run_dir)
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
    except OSError as error:
        raise OutputError(f"{run_dir}: cannot write the run folder ({error.strerror or error})") from None


def _fit(config: Mapping[str, Any], stream: _Stream, started: float) -> tuple[dict[str, Any], float]:
    """Choose the precision (``auto``: bf16 where native and faster) and, with ``train.budget``,
    the steps that fit it, from a few timed steps on warm textures. The config returned records
    them (budget 0: it reproduces the run without probing again); the budget is returned apart,
    for the deadline that stops a run the estimate got wrong."""
    config = copy.deepcopy(dict(config))
    train_cfg = config["train"]
    budget, precision = train_cfg["budget"], train_cfg["precision"]
    train_cfg["budget"] = 0.0
    if not budget and precision != "auto":
        return config, 0.0
    candidates = (
        [precision] if precision != "auto" else ["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"]
    )
    timings = {c: _time_steps({**config, "train": {**train_cfg, "precision": c}}, stream) for c in candidates}
    if precision == "auto":
        fp32, bf16 = timings["fp32"], timings.get("bf16")
        train_cfg["precision"] = "bf16" if bf16 is not None and fp32 / bf16 >= BF16_GAIN else "fp32"
    step_s = timings[train_cfg["precision"]]
    if budget:
        clock = time.perf_counter()
        pretext_metrics(_model(config), stream.held_out)
        evaluation_s = time.perf_counter() - clock + 1.0  # and a checkpoint
        left = budget * (1 - SAFETY) - (time.monotonic() - started) - 5.0
        train_cfg["steps"] = max(1, math.floor(left / (step_s + evaluation_s / train_cfg["eval_every"])))
        log.info(
            f"budget {budget / 60:.1f} min: {train_cfg['steps']} steps of {train_cfg['batch_size']} "
            f"({step_s:.2f} s a step, {train_cfg['precision']})"
        )
    return config, budget


def _time_steps(config: Mapping[str, Any], stream: _Stream, warm: int = 3, timed: int = 5) -> float:
    """The median time of a training step on a stream whose textures are already rendered (a few
    categories, one instance each: what every step costs once the run's textures are cached)."""
    small = dataclasses.replace(stream.settings, categories=min(8, stream.settings.categories), instances=1)
    probe = _Stream(small, stream.images, [])
    model = _model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    times, last = [], time.perf_counter()
    for index, batch in enumerate(_loader(config, probe, 0, warm + timed)):
        _step(model, optimizer, batch, config, 0.0)
        now = time.perf_counter()
        if index >= warm:
            times.append(now - last)
        last = now
    return statistics.median(times)
