"""Training a classifier with the paper's recipe: the classification parts of the shared loop
(lwcnn.training.loop): data, class-balancing sampler, cross-entropy, accuracy, confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lwcnn.data.augmentation import build_augmentation
from lwcnn.data.checks import check_before_training
from lwcnn.data.classification import DataError, scan_classification
from lwcnn.data.datasets import ClassificationDataset, read_parts
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.data.sampling import BalancedSampler
from lwcnn.data.splits import Split, stratified_split
from lwcnn.evaluation.classifier import predict_probabilities, score
from lwcnn.evaluation.plots import plot_confusion
from lwcnn.runtime.engine import Inspector
from lwcnn.trained_models import TorchBackend
from lwcnn.training.distributed import DistContext
from lwcnn.training.loop import PreparedData, TrainingTask, TrainResult, run_training


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
        split = stratified_split(images, data_cfg["split"], data_cfg["split_seed"])
    if "train" not in split.parts:
        raise DataError("the split has no 'train' part")
    check_before_training(images, split, data_cfg["skip_bad"])
    preprocessing = Preprocessing.create(
        data_cfg["channels"],
        data_cfg["input_size"],
        config["normalize"]["mean"],
        config["normalize"]["std"],
    )
    train_seed = config["train"]["seed"]
    augmentation = build_augmentation(config["augment"]["transforms"], train_seed, data_cfg["input_size"])
    train = ClassificationDataset(
        images.subset(split.indices(images, "train")), preprocessing, augmentation, data_cfg["cache"]
    )
    val, test = (
        ClassificationDataset(
            images.subset(split.indices(images, part)), preprocessing, None, data_cfg["cache"]
        )
        if part in split.parts
        else None
        for part in ("val", "test")
    )
    skipped = read_parts([train, val, test], data_cfg["skip_bad"], show_progress)
    return PreparedData(images, split, preprocessing, train, val, test, skipped)


class ClassificationTask(TrainingTask):
    """Softmax cross-entropy over classes; the best epoch has the highest validation accuracy (then
    the lowest validation loss)."""

    task = "cls"
    columns = ("epoch", "step", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
    curves = (
        ("loss", "cross-entropy", ("train_loss", "val_loss")),
        ("accuracy", "accuracy", ("train_acc", "val_acc")),
    )

    def __init__(
        self, label_smoothing: float = 0.0, low_res: float = 0.0, low_res_scale: float = 0.5
    ) -> None:
        self.label_smoothing = label_smoothing
        self.low_res, self.low_res_scale = low_res, low_res_scale

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClassificationTask:
        train = config["train"]
        return cls(train["label_smoothing"], train["low_res"], train["low_res_scale"])

    def input_scale(self, epoch: int, epochs: int) -> float:
        # the first train.low_res of the epochs on smaller inputs: each step costs a fraction, and
        # coarse features are learnt as well there; the rest at full size (all of a 1-epoch run)
        return self.low_res_scale if epoch < math.floor(self.low_res * epochs) else 1.0

    def validated_share(self, config: Mapping[str, Any]) -> float:
        return 1.0 - self.scaled_epochs()[0]

    def scaled_epochs(self) -> tuple[float, float]:
        return (self.low_res, self.low_res_scale) if self.low_res_scale != 1.0 else (0.0, 1.0)

    def prepare(self, config: Mapping[str, Any], run_dir: Path, show_progress: bool) -> PreparedData:
        return prepare_data(config, run_dir, show_progress)

    def data_fingerprint(self, data: PreparedData) -> Any:
        return [[p.as_posix() for p in data.images.paths], list(data.images.labels)]

    def classes(self, data: PreparedData) -> list[str]:
        return list(data.images.classes)

    def sampler(
        self, config: Mapping[str, Any], data: PreparedData, context: DistContext, global_batch: int
    ) -> BalancedSampler:
        return BalancedSampler(
            data.train.images.labels,  # type: ignore[attr-defined]
            config["augment"]["per_class"],
            config["train"]["seed"],
            rank=context.rank,
            world_size=context.world_size,
            global_batch=global_batch,
        )

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, tuple[float, ...]]:
        loss = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        return loss, (int((logits.argmax(1) == target).sum()),)

    def train_metrics(self, loss_sum: float, counts: Sequence[float], seen: int) -> dict[str, Any]:
        return {
            "train_loss": loss_sum / max(seen, 1),
            "train_acc": (counts[0] if counts else 0) / max(seen, 1),
        }

    def validate(self, model: nn.Module, data: PreparedData, metadata: Mapping[str, Any], device: str,
                 channels_last: bool) -> dict[str, Any]:  # fmt: skip
        assert data.val is not None
        model.eval()
        inspector = Inspector(backend=TorchBackend.from_model(model, dict(metadata)), batch_size=64)
        val = score(predict_probabilities(inspector, data.val), data.val)  # type: ignore[arg-type]
        return {"val_loss": val["loss"], "val_acc": val["accuracy"]}

    def selection_key(self, row: Mapping[str, Any]) -> tuple[float, ...]:
        if row.get("val_acc") is None:
            return (row["epoch"],)
        return (row["val_acc"], -row["val_loss"])

    def metadata(self, config: Mapping[str, Any], data: PreparedData) -> dict[str, Any]:
        return {"threshold": None}

    def finish(self, config: Mapping[str, Any], run_dir: Path, data: PreparedData) -> dict[str, Any] | None:
        if data.test is None:
            return None
        return evaluate_run_model(run_dir / "best", data.test, run_dir)  # type: ignore[arg-type]


def train_classifier(
    config: Mapping[str, Any], resume: bool = False, show_progress: bool = True
) -> TrainResult:
    """Train a classifier as ``config`` says (see :func:`lwcnn.training.loop.run_training`)."""
    return run_training(ClassificationTask, config, resume, show_progress)


def evaluate_run_model(model_path: Path, test_set: ClassificationDataset, run_dir: Path) -> dict[str, Any]:
    """Score the run's best model on the test part; record the result in its metadata."""
    from lwcnn.checkpoints import update_metrics

    # the export, in ONNX Runtime, as lwcnn inspect will run it
    metrics = score(predict_probabilities(Inspector(model_path, batch_size=64), test_set), test_set)
    plot_confusion(
        metrics["confusion"], metrics["classes"], run_dir / "test_confusion.png", title="test split"
    )
    update_metrics(model_path, {"test_accuracy": metrics["accuracy"], "test_n": metrics["n"]})
    return metrics
