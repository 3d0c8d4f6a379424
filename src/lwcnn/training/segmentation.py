"""Training a segmenter: the segmentation parts of the shared loop (lwcnn.training.loop): images with
masks at the model's scale, gradual training through the sampler, pixel cross-entropy, validation on
whole images through the inspection engine (image-level AP, mAcc, pixel IoU)."""

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
from lwcnn.data.datasets import read_parts
from lwcnn.data.masked_images import scan_segmentation
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.data.sampling import GradualSchedule, SegmentationSampler
from lwcnn.data.segmentation_crops import SegmentationDataset
from lwcnn.data.splits import Split, segmentation_split
from lwcnn.errors import ConfigError, DataError
from lwcnn.evaluation.segmenter import (
    evaluate_segmenter,
    record_test_figures,
    segmentation_report,
    worst_cases,
    write_pictures,
)
from lwcnn.models.heads import upsample_logits
from lwcnn.runtime.engine import Inspector
from lwcnn.trained_models import TorchBackend
from lwcnn.training.distributed import DistContext
from lwcnn.training.loop import PreparedData, TrainingParts, TrainingTask, TrainResult, log, run_training
from lwcnn.training.schedule import planned_epochs


def prepare_segmentation_data(
    config: Mapping[str, Any], run_dir: Path, show_progress: bool = True
) -> PreparedData:
    """Scan the data, make (or reuse the run's) split, read every image and mask once (a bad image
    or a mask of the wrong size stops the run before training; ``data.skip_bad`` skips unreadable
    images instead)."""
    data_cfg = config["data"]
    if not data_cfg.get("root"):
        raise DataError("data.root is not set: give it in the config or as data.root=FOLDER")
    images = scan_segmentation(data_cfg["root"], data_cfg["layout"], strict=not data_cfg["skip_bad"])
    if data_cfg["types"] == "merged" and len(images.types) > 1:
        images = images.merged()
    split_path = run_dir / "split.json"
    if split_path.exists():
        split = Split.load(split_path)
    else:
        split = segmentation_split(images, data_cfg["split"], data_cfg["split_seed"])
    check_before_training(images, split, data_cfg["skip_bad"])
    preprocessing = Preprocessing.create(
        data_cfg["channels"],
        data_cfg["input_size"],
        config["normalize"]["mean"],
        config["normalize"]["std"],
        data_cfg["scale"],
    )
    crop = data_cfg.get("crop") or data_cfg["input_size"]
    augmentation = build_augmentation(config["augment"]["transforms"], seed=config["train"]["seed"])
    cache = data_cfg["cache"]
    train = SegmentationDataset(
        images.subset(split.indices(images, "train")), preprocessing, crop, augmentation, cache
    )
    # validation and test read whole images at their own size through the engine: nothing cached
    val, test = (
        SegmentationDataset(
            images.subset(split.indices(images, part)), preprocessing, crop, None, cache=False
        )
        if split.parts.get(part)
        else None
        for part in ("val", "test")
    )
    skipped = read_parts([train, val, test], data_cfg["skip_bad"], show_progress)
    return PreparedData(images, split, preprocessing, train, val, test, skipped)


def gradual_schedule(config: Mapping[str, Any], total_steps: int) -> GradualSchedule | None:
    """The run's gradual-training schedule (None when ``gradual.enabled`` is off)."""
    gradual = config["gradual"]
    if not gradual["enabled"]:
        return None
    return GradualSchedule.for_run(
        gradual["zoom_steps"], gradual["clean_from"], total_steps, gradual["start_ratio"]
    )


def defect_logit(logits: torch.Tensor) -> torch.Tensor:
    """The logit of P(defect) = 1 - P(background) at every pixel, (N, K, h, w) -> (N, h, w): the
    score that the engine thresholds, as a logit (class 0 is the background)."""
    return torch.logsumexp(logits[:, 1:], dim=1) - logits[:, 0]


def image_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each crop's highest pixel defect logit against whether its mask holds
    a defect pixel. An image's score at inspection is its highest pixel probability, so this term
    trains that score directly: one confident false pixel on a defect-free crop costs as much as a
    wholly missed defect, which the pixel average (dominated by easy background) barely sees."""
    highest = defect_logit(logits).flatten(1).amax(dim=1)
    defective = (target > 0).flatten(1).any(dim=1).to(highest.dtype)
    return F.binary_cross_entropy_with_logits(highest, defective)


def typed_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, type_weight: float = 1.0
) -> torch.Tensor:
    """Pixel cross-entropy over the background and K defect types, split into its two parts: the
    binary cross-entropy of P(defect) = 1 - P(background), and, on defect pixels, the cross-entropy
    of the type given a defect, weighted by ``type_weight``. ``-log p(type k) = -log P(defect)
    - log P(k | defect)`` exactly, so at ``type_weight`` 1 this is ``F.cross_entropy(logits, target,
    weight)``; below 1 the decision's signal (the one-type model's) keeps its full weight while the
    harder question of which type (an open and a short look alike without the layout) weighs less
    on the shared features. ``weight`` holds a weight per class; the mean is over the pixels'
    weights, as ``F.cross_entropy`` takes it."""
    log_p = F.log_softmax(logits, dim=1)
    log_defect = torch.logsumexp(log_p[:, 1:], dim=1)
    defect = target > 0
    loss = -torch.where(defect, log_defect, log_p[:, 0])  # the decision's binary term
    if type_weight and logits.shape[1] > 2:
        picked = log_p.gather(1, target.unsqueeze(1)).squeeze(1)
        loss = loss + type_weight * torch.where(defect, log_defect - picked, torch.zeros_like(picked))
    weights = weight.to(logits.device, logits.dtype)[target]
    return (weights * loss).sum() / weights.sum()


class SegmentationTask(TrainingTask):
    """Pixel cross-entropy over the background and the defect types (defect pixels weighted by
    ``train.defect_weight``, the type given a defect by ``train.type_weight``: see
    :func:`typed_cross_entropy`) on crops, plus
    ``train.image_loss`` times the image-level term of :func:`image_loss`; the best epoch is, among
    those of the last phase of gradual training (every image in), the one with the highest
    validation AP, then mAcc, then IoU."""

    task = "seg"
    columns = (
        "epoch", "step", "lr", "phase", "zoom", "train_loss",
        "val_ap", "val_macc", "val_tpr", "val_tnr", "val_iou", "seconds",
    )  # fmt: skip
    curves = (
        ("loss", "training loss", ("train_loss",)),
        ("validation (whole images)", "score", ("val_ap", "val_macc", "val_iou")),
    )

    def __init__(self, defect_weight: float = 1.0, image_loss: float = 0.0, type_weight: float = 1.0) -> None:
        if image_loss < 0:
            raise ConfigError(f"train.image_loss must be >= 0, got {image_loss}")
        if type_weight < 0:
            raise ConfigError(f"train.type_weight must be >= 0, got {type_weight}")
        self._type_weight = float(type_weight)
        self._defect_weight = float(defect_weight)
        self._weight = torch.tensor([1.0, self._defect_weight])
        self._image_loss = float(image_loss)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SegmentationTask:
        train = config["train"]
        return cls(
            defect_weight=train["defect_weight"],
            image_loss=train["image_loss"],
            type_weight=train["type_weight"],
        )

    def prepare(self, config: Mapping[str, Any], run_dir: Path, show_progress: bool) -> PreparedData:
        return prepare_segmentation_data(config, run_dir, show_progress)

    def data_fingerprint(self, data: PreparedData) -> Any:
        return [[s.image.as_posix(), s.defective] for s in data.images.samples]

    def classes(self, data: PreparedData) -> list[str]:
        return list(data.images.classes)

    def sampler(
        self, config: Mapping[str, Any], data: PreparedData, context: DistContext, global_batch: int
    ) -> SegmentationSampler:
        per_epoch = config["augment"]["per_epoch"]
        # the phases are fractions of the planned run (a re-planned one keeps them where they were)
        steps = max(1, per_epoch // global_batch) * planned_epochs(config["train"])
        return SegmentationSampler(
            data.train.defective,  # type: ignore[attr-defined]
            per_epoch,
            global_batch,
            config["train"]["seed"],
            gradual_schedule(config, steps),
            config["augment"]["defective_fraction"],
            rank=context.rank,
            world_size=context.world_size,
        )

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, tuple[float, ...]]:
        full = upsample_logits(logits, target.shape[-2:])
        if len(self._weight) != full.shape[1]:  # K defect types: every type weighted alike
            self._weight = torch.tensor([1.0] + [self._defect_weight] * (full.shape[1] - 1))
        if full.shape[1] > 2 and self._type_weight != 1.0:
            loss = typed_cross_entropy(full, target, self._weight, self._type_weight)
        else:  # one type, or the type term at full weight: the plain cross-entropy is the same loss
            loss = F.cross_entropy(full, target, weight=self._weight.to(full.device))
        if self._image_loss:
            loss = loss + self._image_loss * image_loss(full, target)
        return loss, ()

    def train_metrics(self, loss_sum: float, counts: Sequence[float], seen: int) -> dict[str, Any]:
        return {"train_loss": loss_sum / max(seen, 1)}

    def epoch_columns(self, sampler: Any, step: int) -> dict[str, Any]:
        schedule = sampler.schedule
        return {
            "phase": sampler.phase(step),
            "zoom": round(schedule.ratio(step), 3)
            if schedule is not None and sampler.phase(step) == "zoom"
            else 1.0,
        }

    def validate(self, model: nn.Module, data: PreparedData, metadata: Mapping[str, Any], device: str,
                 channels_last: bool) -> dict[str, Any]:  # fmt: skip
        assert data.val is not None
        model.eval()
        inspector = Inspector(backend=TorchBackend.from_model(model, dict(metadata)))
        outcomes, _ = evaluate_segmenter(inspector, data.val.images)  # type: ignore[attr-defined]
        report = segmentation_report(outcomes)
        return {f"val_{k}": report[k] for k in ("ap", "macc", "tpr", "tnr", "iou")}

    def selection_key(self, row: Mapping[str, Any]) -> tuple[float, ...]:
        # Only epochs of the last phase compete with one another: one from before defect-free images
        # joined has never been taught to pass them, and a validation part of a few images can
        # still score it perfect by chance (small sets tie at AP 1.0 for many epochs). Epochs that
        # were not validated (no validation part, or an earlier phase) rank by their number.
        final = 1.0 if row.get("phase", "all") == "all" else 0.0
        if row.get("val_ap") is None and row.get("val_macc") is None:
            return (final, -1.0, -1.0, -1.0, float(row["epoch"]))
        # rounded: differences in the last bits of a float (summation order) are not a better epoch
        figures = (
            -1.0 if row.get(k) is None else round(row[k], 9) for k in ("val_ap", "val_macc", "val_iou")
        )
        return (final, *figures, 0.0)

    def shrink_crops(self, config: dict[str, Any], data: PreparedData, factor: float) -> bool:
        # the area scales the step's cost; sides stay multiples of 32, at least MIN_CROP, and a
        # side already below MIN_CROP stays as it is (never larger than planned)
        crop = config["data"]["crop"] or config["data"]["input_size"]
        side = math.sqrt(max(factor, 0.0))
        smaller = [min(c, max(MIN_CROP, int(c * side) // 32 * 32)) for c in crop]
        if smaller == list(crop):
            return False
        config["data"]["crop"] = smaller
        data.train.crop = (smaller[0], smaller[1])  # type: ignore[attr-defined]
        return True

    def settled(self, parts: TrainingParts, epoch: int, step: int) -> bool:
        return parts.sampler.phase(step) == "all"  # type: ignore[attr-defined]

    def validates(self, row: Mapping[str, Any]) -> bool:
        # epochs before defect-free images joined are never chosen (selection_key) while a later one
        # exists, and the last epoch always is of the last phase: validating them only costs time
        return row.get("phase", "all") == "all"

    def validated_share(self, config: Mapping[str, Any]) -> float:
        gradual = config["gradual"]
        clean_from = gradual["clean_from"]
        return 1.0 - clean_from if gradual["enabled"] and clean_from < 1 else 1.0

    def metadata(self, config: Mapping[str, Any], data: PreparedData) -> dict[str, Any]:
        decision = config["decision"]
        return {"threshold": decision["threshold"], "min_area": decision["min_area"]}

    def finish(self, config: Mapping[str, Any], run_dir: Path, data: PreparedData) -> dict[str, Any] | None:
        if data.test is None:
            return None
        return evaluate_run_segmenter(run_dir / "best", data.test.images, run_dir)  # type: ignore[attr-defined]


#: Training crops a budget may shrink to (pixels a side): a few cells of the network's stride 32.
MIN_CROP = 128


def train_segmenter(
    config: Mapping[str, Any], resume: bool = False, show_progress: bool = True
) -> TrainResult:
    """Train a segmenter as ``config`` says (see :func:`lwcnn.training.loop.run_training`)."""
    return run_training(SegmentationTask, config, resume, show_progress)


def evaluate_run_segmenter(model_path: Path, test_images: Any, run_dir: Path) -> dict[str, Any]:
    """Score the run's best model on the test part through ONNX Runtime (as ``lwcnn inspect`` will
    run it), record the figures in its metadata and draw the worst cases (``test_worst/``, with a
    contact sheet ``test_worst.png``)."""
    report, outcomes, inspector = record_test_figures(model_path, test_images)
    worst = worst_cases(outcomes)
    if worst:
        write_pictures(
            inspector, test_images, worst, run_dir / "test_worst", sheet=run_dir / "test_worst.png"
        )
    log.info(
        f"test: AP {_fmt(report['ap'])}, mAcc {_fmt(report['macc'])}, TPR {_fmt(report['tpr'])}, "
        f"TNR {_fmt(report['tnr'])}, IoU {_fmt(report['iou'])} on {report['n']} images"
    )
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
