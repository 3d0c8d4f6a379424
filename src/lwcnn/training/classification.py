"""Training a classifier with the paper's recipe: data, model, loop, checkpoints, resume."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from lwcnn.checkpoints import (
    git_commit,
    load_matching_weights,
    load_training_state,
    save_model,
    save_training_state,
)
from lwcnn.config import dump_config, load_config
from lwcnn.data.augmentation import build_augmentation
from lwcnn.data.classification import DataError, LabelledImages, scan_classification
from lwcnn.data.datasets import BalancedSampler, ClassificationDataset, seed_worker
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.data.splits import Split, stratified_split
from lwcnn.evaluation.classifier import predict_probabilities, score
from lwcnn.evaluation.plots import plot_confusion, plot_learning_curves
from lwcnn.fileio import atomic_write_text
from lwcnn.models import create_model
from lwcnn.training.distributed import (
    DistContext,
    check_agreement,
    close_distributed,
    init_distributed,
    sum_over_ranks,
)
from lwcnn.training.schedule import Schedule, scaled_schedule

METRIC_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


@dataclass
class PreparedData:
    """What a run trains and validates on."""

    images: LabelledImages
    split: Split
    preprocessing: Preprocessing
    train: ClassificationDataset
    val: ClassificationDataset | None
    test: ClassificationDataset | None
    skipped: list[str]


def prepare_data(config: Mapping[str, Any], run_dir: Path, show_progress: bool = True) -> PreparedData:
    """Scan the data, make (or reuse the run's) split, read every image of every part once, so that
    a bad image stops the run before training starts (or, with ``data.skip_bad``, is skipped and
    counted)."""
    data_cfg = config["data"]
    if not data_cfg.get("root"):
        raise DataError("data.root is not set: give it in the config or as data.root=FOLDER")
    images = scan_classification(data_cfg["root"], data_cfg["layout"])
    split_path = run_dir / "split.json"
    if split_path.exists():
        split = Split.load(split_path)
    else:
        split = stratified_split(images, data_cfg["split"], int(data_cfg["split_seed"]))
    if "train" not in split.parts:
        raise DataError("the split has no 'train' part")
    preprocessing = Preprocessing.create(
        int(data_cfg["channels"]),
        data_cfg["input_size"],
        config["normalize"]["mean"],
        config["normalize"]["std"],
    )
    train_seed = int(config["train"]["seed"])
    augmentation = build_augmentation(config["augment"]["transforms"], seed=train_seed)
    train = ClassificationDataset(
        images.subset(split.indices(images, "train")), preprocessing, augmentation, bool(data_cfg["cache"])
    )
    val, test = (
        ClassificationDataset(
            images.subset(split.indices(images, part)), preprocessing, None, bool(data_cfg["cache"])
        )
        if part in split.parts
        else None
        for part in ("val", "test")
    )
    skipped: list[str] = []
    total = sum(len(d) for d in (train, val, test) if d is not None)
    with tqdm(
        total=total, desc="reading images", unit="img", disable=None if show_progress else True, leave=False
    ) as bar:
        for dataset in (train, val, test):
            if dataset is not None:
                skipped += [str(e) for e in dataset.load_all(bool(data_cfg["skip_bad"]), bar.update)]
    return PreparedData(images, split, preprocessing, train, val, test, skipped)


def build_model(config: Mapping[str, Any], num_classes: int, schedule: Schedule) -> nn.Module:
    """The model of ``config``, BN set to the (scaled) recipe, initialised from ``train.init_from``."""
    torch.manual_seed(int(config["train"]["seed"]))
    model = create_model(
        config["model"]["name"],
        task="cls",
        num_classes=num_classes,
        in_channels=int(config["data"]["channels"]),
    )
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = schedule.bn_momentum
            module.eps = float(config["train"]["bn_eps"])
    init_from = config["train"].get("init_from")
    if init_from:
        fresh = load_matching_weights(model, init_from)
        _info(f"initialised from {init_from}; newly initialised: {', '.join(fresh) or 'nothing'}")
    return model


def l2_penalty(model: nn.Module) -> torch.Tensor:
    """sum(w^2) / 2 over convolution kernels (4-D weights), TensorFlow's ``l2_loss``."""
    return sum((p.pow(2).sum() for p in model.parameters() if p.dim() == 4), torch.zeros(())) / 2


@dataclass
class TrainResult:
    run_dir: Path
    best: dict[str, Any]
    test: dict[str, Any] | None
    skipped: list[str]
    main: bool = True  # False on the other ranks of a distributed run (which write and report nothing)


def train_classifier(
    config: Mapping[str, Any], resume: bool = False, show_progress: bool = True
) -> TrainResult:
    """See :func:`_train`; under ``torchrun`` each process runs this and they train as one
    (DistributedDataParallel; lwcnn.training.distributed)."""
    context = init_distributed()
    try:
        return _train(config, resume, show_progress and context.is_main, context)
    finally:
        close_distributed(context)


def _train(config: Mapping[str, Any], resume: bool, show_progress: bool, context: DistContext) -> TrainResult:
    """Train a classifier as ``config`` says, in the run folder ``config['out']``.

    The run folder receives ``config.yaml``, ``split.json``, ``metrics.csv``, ``best.*`` and
    ``last.*`` models, ``resume.pt`` (written at the end of every epoch), ``learning_curves.png`` and,
    when the split has a test part, ``test_confusion.png``. With ``resume`` the run continues from
    its last completed epoch with the same step count and schedule.
    """
    run_dir = Path(config["out"])
    resume_path = run_dir / "resume.pt"
    if resume:
        if not resume_path.exists():
            raise FileNotFoundError(f"{resume_path}: nothing to resume (no completed epoch in {run_dir})")
        config = load_config(run_dir / "config.yaml", [f"out={run_dir}"])
    elif resume_path.exists():  # every rank checks: none has written anything yet
        raise FileExistsError(f"{run_dir}: already holds a run; use --resume to continue it or another out=")
    train_cfg = config["train"]
    threads = int(train_cfg["threads"]) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    main = context.is_main
    data = prepare_data(config, run_dir, show_progress)  # before any file is written: bad data leaves no run
    check_agreement(
        context,
        {
            "config": dict(config),
            "split": data.split.to_dict(),
            "images": [[p.as_posix() for p in data.images.paths], list(data.images.labels)],
        },
    )
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        data.split.save(run_dir / "split.json")
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
        for line in data.skipped:
            _info(f"skipped: {line}")

    batch_size = int(train_cfg["batch_size"])  # the global batch, over all processes
    accumulate = max(1, int(train_cfg["accumulate"]))
    per_rank = batch_size // context.world_size
    if per_rank % accumulate:
        raise ValueError(
            f"train.batch_size {batch_size} over {context.world_size} process(es) gives {per_rank} images "
            f"per process, not a multiple of train.accumulate={accumulate}"
        )
    sampler = BalancedSampler(
        data.train.images.labels,
        int(config["augment"]["per_class"]),
        int(train_cfg["seed"]),
        rank=context.rank,
        world_size=context.world_size,
        global_batch=batch_size,
    )
    workers = int(train_cfg["workers"])
    loader = DataLoader(
        data.train,
        batch_size=per_rank,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=seed_worker,
        # no tiny last batch for BN, unless that is all there is (distributed: the sampler cuts)
        drop_last=not context.distributed and len(sampler) > batch_size,
    )
    steps_per_epoch = len(loader)
    epochs = int(train_cfg["epochs"])
    schedule = scaled_schedule(train_cfg, epochs * steps_per_epoch)
    classes = data.images.classes
    model = build_model(config, len(classes), schedule)
    if train_cfg["sync_bn"]:
        if not context.device.startswith("cuda"):
            raise ValueError("train.sync_bn needs GPUs (PyTorch's SyncBatchNorm runs on CUDA only)")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(context.device)
    channels_last = bool(train_cfg["channels_last"])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if train_cfg["optimizer"] != "adam":
        raise ValueError(
            f"train.optimizer: only 'adam' (the paper's) is supported, got {train_cfg['optimizer']!r}"
        )
    optimizer = torch.optim.Adam(model.parameters(), lr=schedule.lr)

    start_epoch, step, best, history = 0, 0, {"val_acc": -1.0, "val_loss": float("inf")}, []
    if resume:
        state = load_training_state(resume_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, step, best, history = state["epoch"], state["step"], state["best"], state["history"]
        if main:
            _info(f"resuming {run_dir} at epoch {start_epoch + 1}/{epochs}, step {step}")
    net = model  # what the loop calls; `model` stays the plain module that is saved and validated
    if context.distributed:
        device_ids = [context.local_rank] if context.device.startswith("cuda") else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    metadata = {
        "commit": git_commit(),  # the code this run started from, not whatever is checked out later
        "task": "cls",
        "classes": list(classes),
        "preprocessing": data.preprocessing.to_dict(),
        "data": {"root": str(config["data"]["root"]), "layout": data.images.layout},
        "split": data.split.to_dict(),
        "config": config,
        "threshold": None,
    }
    l2 = float(train_cfg["l2"])
    log_every = max(1, int(train_cfg["log_every"]))
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        data.train.set_epoch(int(train_cfg["seed"]), epoch, context.rank)
        net.train()
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{epochs}",
            unit="step",
            disable=None if show_progress else True,
            leave=False,
        )
        for images, labels in bar:
            images, labels = images.to(context.device), labels.to(context.device)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr_at(step)
            optimizer.zero_grad(set_to_none=True)
            micro_images, micro_labels = images.chunk(accumulate), labels.chunk(accumulate)
            for index, (micro, micro_target) in enumerate(zip(micro_images, micro_labels, strict=True)):
                last = index == len(micro_images) - 1
                # gradients are all-reduced once per step, on the last micro-batch
                with net.no_sync() if context.distributed and not last else contextlib.nullcontext():
                    logits = net(micro)
                    loss = F.cross_entropy(logits, micro_target)
                    total = loss + l2 * l2_penalty(model) if l2 else loss
                    (total / len(micro_images)).backward()
                loss_sum += float(loss.detach()) * len(micro_target)
                correct += int((logits.argmax(1) == micro_target).sum())
                seen += len(micro_target)
            optimizer.step()
            step += 1
            if step % log_every == 0:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}", step=step)
        bar.close()
        loss_sum, correct, seen = sum_over_ranks(context, loss_sum, correct, seen)
        if not main:  # rank 0 validates, logs and writes; the others go on to the next epoch
            continue
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "step": step,
            "lr": schedule.lr_at(step),
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "val_loss": None,
            "val_acc": None,
        }
        if data.val is not None:
            probabilities = predict_probabilities(
                model, data.val, channels_last=channels_last, device=context.device
            )
            val = score(probabilities, data.val)
            row["val_loss"], row["val_acc"] = val["loss"], val["accuracy"]
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        write_metrics_csv(run_dir / "metrics.csv", history)
        improved = row["val_acc"] is None or (row["val_acc"], -row["val_loss"]) > (
            best["val_acc"],
            -best["val_loss"],
        )
        epoch_meta = {**metadata, "metrics": {"epoch": epoch + 1, "step": step, **_rounded(row)}}
        if improved:
            best = {
                "epoch": epoch + 1,
                "step": step,
                "val_acc": -1.0 if row["val_acc"] is None else row["val_acc"],
                "val_loss": float("inf") if row["val_loss"] is None else row["val_loss"],
            }
            save_model(run_dir / "best", model, epoch_meta)
        save_model(run_dir / "last", model, epoch_meta)
        save_training_state(
            resume_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch + 1,
                "step": step,
                "best": best,
                "history": history,
            },
        )
        _info(_epoch_line(row, epochs))

    if not main:
        return TrainResult(run_dir, best, None, data.skipped, main=False)
    plot_learning_curves(
        run_dir / "metrics.csv", run_dir / "learning_curves.png", title=f"{config['model']['name']}"
    )
    test = None
    if data.test is not None:
        test = evaluate_run_model(run_dir / "best", data.test, run_dir)
    return TrainResult(run_dir, best, test, data.skipped)


def evaluate_run_model(model_path: Path, test_set: ClassificationDataset, run_dir: Path) -> dict[str, Any]:
    """Score the run's best model on the test part; record the result in its metadata."""
    from lwcnn.checkpoints import load_model, update_metrics

    model, _ = load_model(model_path)
    metrics = score(predict_probabilities(model, test_set), test_set)
    plot_confusion(
        metrics["confusion"], metrics["classes"], run_dir / "test_confusion.png", title="test split"
    )
    update_metrics(model_path, {"test_accuracy": metrics["accuracy"], "test_n": metrics["n"]})
    return metrics


def _info(message: str) -> None:
    """A status line on stderr (stdout is kept for --json results), clear of progress bars."""
    tqdm.write(message, file=sys.stderr)


def write_metrics_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_COLUMNS})
    atomic_write_text(path, buffer.getvalue())


def _rounded(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items() if k not in ("epoch", "step")
    }


def _epoch_line(row: Mapping[str, Any], epochs: int) -> str:
    text = f"epoch {row['epoch']}/{epochs} step {row['step']}: "
    text += f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}"
    if row["val_acc"] is not None:
        text += f", val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}"
    return text + f" ({row['seconds']:.0f} s)"
