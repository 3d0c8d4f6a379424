"""Running a segmenter over images with masks, through the inspection engine (the same rescaling,
tiling and decision as ``lwcnn inspect``), and scoring it; pictures of the results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from lwcnn.data.images import ImageReadError
from lwcnn.data.masked_images import MaskedImages, read_labels, read_sample
from lwcnn.errors import ConfigError, DataError
from lwcnn.evaluation.defect_types import TypeOutcome, type_outcome
from lwcnn.evaluation.metrics import average_precision, image_decisions, pixel_overlap
from lwcnn.fileio import atomic_write_bytes
from lwcnn.runtime.engine import Inspection, Inspector
from lwcnn.runtime.overlay import png_bytes


@dataclass(frozen=True)
class ImageOutcome:
    """One evaluated image: its truth (defective, defect area in pixels), the model's image score
    (highest pixel probability) and decision, and pixel IoU / Dice (defective images only)."""

    path: str
    group: str
    defective: bool
    true_area: int
    score: float
    predicted: bool
    area: int
    iou: float | None
    dice: float | None
    types: TypeOutcome | None = field(default=None, repr=False, compare=False)  # a model with types

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (a model with types: the true and the found types by name)."""
        return {k: v for k, v in vars(self).items() if k != "types"}


def evaluate_segmenter(
    inspector: Inspector,
    images: MaskedImages,
    skip_bad: bool = False,
    show_progress: bool = False,
) -> tuple[list[ImageOutcome], list[str]]:
    """Inspect every image of ``images`` at its own size and compare with its mask. Returns the
    outcomes and the one-line errors of images skipped as unreadable (with ``skip_bad``; else the
    first unreadable image raises). A model with defect types is compared type by type too
    (``ImageOutcome.types``; :func:`lwcnn.evaluation.defect_types.type_report`)."""
    outcomes, skipped = [], []
    typed = len(inspector.types) > 1
    if typed and list(images.types) != inspector.types:
        raise DataError(
            f"{images.root}: the data's defect types {list(images.types)} are not the model's "
            f"{inspector.types}"
        )
    for index in tqdm(
        range(len(images)), desc="evaluating", unit="img", disable=None if show_progress else True
    ):
        sample = images.samples[index]
        try:
            image, labels = read_labels(images, index, inspector.preprocessing.channels)
        except ImageReadError as error:
            if not skip_bad:
                raise
            skipped.append(str(error))
            continue
        result = inspector.inspect(image, name=sample.image.as_posix())
        outcome = outcome_of(result, sample.image.as_posix(), sample.group, labels > 0)
        if typed:
            outcome = replace(outcome, types=type_outcome(labels, result, len(inspector.types)))
        outcomes.append(outcome)
    return outcomes, skipped


def outcome_of(result: Inspection, path: str, group: str, truth: np.ndarray) -> ImageOutcome:
    iou = dice = None
    if truth.any():
        assert result.mask is not None
        iou, dice = pixel_overlap(truth, result.mask)
    return ImageOutcome(
        path,
        group,
        bool(truth.any()),
        int(truth.sum()),
        result.score,
        result.defective,
        result.area,
        iou,
        dice,
    )


def segmentation_report(outcomes: Sequence[ImageOutcome], per_group: bool = False) -> dict[str, Any]:
    """Image-level TPR, TNR, mAcc, accuracy (the Wood set's Eq. 10), error escape rate (missed
    defective images over all images, Ren et al. 2017), AP of the image score, mean pixel IoU and
    Dice over the defective images, and with ``per_group`` TPR per group (DAGM class)."""
    truth = [o.defective for o in outcomes]
    report = image_decisions(
        truth, [o.predicted for o in outcomes], [o.group for o in outcomes] if per_group else None
    )
    report["ap"] = average_precision(truth, [o.score for o in outcomes])
    report["escape_rate"] = report["fn"] / report["n"] if report["n"] else None
    ious = [o.iou for o in outcomes if o.iou is not None]
    dices = [o.dice for o in outcomes if o.dice is not None]
    report["iou"] = float(np.mean(ious)) if ious else None
    report["dice"] = float(np.mean(dices)) if dices else None
    return report


def worst_cases(outcomes: Sequence[ImageOutcome], count: int = 12) -> list[ImageOutcome]:
    """The images most worth a look: missed defects (lowest score first), false alarms (highest score
    first), then detected defects with the lowest IoU."""
    missed = sorted((o for o in outcomes if o.defective and not o.predicted), key=lambda o: o.score)
    false_alarms = sorted((o for o in outcomes if not o.defective and o.predicted), key=lambda o: -o.score)
    weak = sorted((o for o in outcomes if o.defective and o.predicted), key=lambda o: o.iou or 0.0)
    return (missed + false_alarms + weak)[:count]


TRUTH_COLOUR = np.array([40, 220, 40], np.float32)
PREDICTION_COLOUR = np.array([255, 40, 40], np.float32)


def comparison_picture(
    image: np.ndarray, prediction: np.ndarray, truth: np.ndarray, caption: str, alpha: float = 0.5
) -> Image.Image:
    """Three panels side by side: the image, the predicted mask (red) and the ground truth (green)
    on it, with a caption line above."""
    rgb = (np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image).astype(np.float32)
    panels = [rgb]
    for mask, colour in ((prediction, PREDICTION_COLOUR), (truth, TRUTH_COLOUR)):
        tint = mask[:, :, None] * alpha
        panels.append(rgb * (1 - tint) + colour * tint)
    height, width = rgb.shape[:2]
    gap, top = 4, 18
    picture = Image.new("RGB", (3 * width + 2 * gap, height + top), (24, 24, 24))
    for k, panel in enumerate(panels):
        picture.paste(
            Image.fromarray(np.clip(panel + 0.5, 0, 255).astype(np.uint8)), (k * (width + gap), top)
        )
    draw = ImageDraw.Draw(picture)
    draw.text((4, 3), caption, fill=(255, 255, 255), font=ImageFont.load_default())
    return picture


def write_pictures(
    inspector: Inspector,
    images: MaskedImages,
    outcomes: Sequence[ImageOutcome],
    folder: str | Path,
    sheet: str | Path | None = None,
    sheet_width: int = 1600,
) -> list[Path]:
    """A comparison picture (:func:`comparison_picture`) per outcome in ``folder`` and, with
    ``sheet``, a contact sheet of them all in a grid ``sheet_width`` pixels wide. Returns the files.

    The pictured images are read and inspected again: keeping every image's mask through an
    evaluation would hold a whole dataset of masks in memory to draw a dozen of them."""
    folder = Path(folder)
    where = {s.image.as_posix(): i for i, s in enumerate(images.samples)}
    written, pictures = [], []
    for outcome in outcomes:
        image, truth = read_sample(images, where[outcome.path], inspector.preprocessing.channels)
        result = inspector.inspect(image, name=outcome.path)
        assert result.mask is not None
        truth_text = f"defect {outcome.true_area} px" if outcome.defective else "defect-free"
        iou = f"  IoU {outcome.iou:.2f}" if outcome.iou is not None else ""
        caption = f"{outcome.path}: {truth_text}; {result.verdict} {result.score:.3f}{iou}"
        picture = comparison_picture(image, result.mask, truth, caption)
        path = folder / (outcome.path.replace("/", "_").rsplit(".", 1)[0] + ".png")
        atomic_write_bytes(path, png_bytes(picture))
        written.append(path)
        pictures.append(picture)
    if sheet is not None and pictures:
        written.append(contact_sheet(pictures, sheet, sheet_width))
    return written


def contact_sheet(pictures: Sequence[Image.Image], path: str | Path, width: int = 1600) -> Path:
    """Pictures shrunk to a common height and laid out in rows ``width`` pixels wide, as one PNG."""
    columns = max(1, min(len(pictures), 4))
    cell_w = width // columns
    cells = []
    for picture in pictures:
        scale = cell_w / picture.width
        cells.append(
            picture.resize((cell_w, max(1, round(picture.height * scale))), Image.Resampling.BILINEAR)
        )
    cell_h = max(c.height for c in cells)
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (cell_w * columns, cell_h * rows), (24, 24, 24))
    for k, cell in enumerate(cells):
        sheet.paste(cell, ((k % columns) * cell_w, (k // columns) * cell_h))
    atomic_write_bytes(path, png_bytes(sheet))
    return Path(path)


def area_scores(
    inspector: Inspector, images: MaskedImages, min_area: int = 1, show_progress: bool = False
) -> tuple[list[float], list[bool]]:
    """Each image's score for a ``min_area`` decision: the ``min_area``-th highest pixel defect
    probability (the highest for the paper's any-pixel rule). An image is defective at threshold t
    exactly when its score exceeds t. Returns the scores and the truth (defective or not)."""
    scores, truth = [], []
    for index in tqdm(
        range(len(images)), desc="scoring", unit="img", disable=None if show_progress else True
    ):
        image, mask = read_sample(images, index, inspector.preprocessing.channels)
        scores.append(min_area_score(inspector.defect_probability(image), min_area))
        truth.append(bool(mask.any()))
    return scores, truth


def min_area_score(probability: np.ndarray, min_area: int = 1) -> float:
    """An image's score for a ``min_area`` decision from its defect probability: its ``min_area``-th
    highest pixel probability (defective exactly when the score exceeds the threshold)."""
    values = probability.ravel()
    k = min(min_area, values.size)
    return float(np.partition(values, values.size - k)[values.size - k])


def calibrate_threshold(
    scores: Sequence[float], truth: Sequence[bool], escape_rate: float = 0.0
) -> dict[str, Any]:
    """The pixel threshold that lets at most ``escape_rate`` of the defective images through (1 -
    TPR) while calling as few defect-free images defective as possible: midway between the lowest
    score that must still be caught and the highest score below it. Returns the threshold with the
    TPR and TNR it gives on these images."""
    if not 0.0 <= escape_rate < 1.0:
        raise ConfigError(f"escape rate must be in [0, 1), got {escape_rate}")
    score = np.asarray(scores, float)
    positive = np.asarray(truth, bool)
    if not positive.any():
        raise DataError("calibration needs defective images, and the chosen images have none")
    defective = np.sort(score[positive])
    allowed = int(np.floor(escape_rate * len(defective) + 1e-9))
    lowest_caught = defective[allowed]
    below = score[score < lowest_caught]
    threshold = (lowest_caught + below.max()) / 2 if below.size else lowest_caught / 2
    threshold = float(np.clip(threshold, 1e-6, 1 - 1e-6))
    predicted = score > threshold
    decisions = image_decisions(positive, predicted)
    return {
        "threshold": threshold,
        "escape_rate_target": escape_rate,
        "n": decisions["n"],
        "defective": int(positive.sum()),
        "tpr": decisions["tpr"],
        "tnr": decisions["tnr"],
    }


def escape_tradeoff(scores: Sequence[float], truth: Sequence[bool]) -> list[dict[str, float]]:
    """Every operating point that these images can tell apart: for each number of defective images
    allowed through (0, 1, 2, ...), the threshold :func:`calibrate_threshold` would pick and what it
    costs, the false-alarm rate (defect-free images called defective)."""
    positives = int(np.asarray(truth, bool).sum())
    points = []
    for allowed in range(positives):
        chosen = calibrate_threshold(scores, truth, allowed / positives)
        points.append(
            {
                "escape_rate": allowed / positives,
                "threshold": chosen["threshold"],
                "false_alarm_rate": None if chosen["tnr"] is None else 1.0 - chosen["tnr"],
            }
        )
    return points


def calibration_warnings(
    defective: int, good: int, escape_rate: float, false_alarm_rate: float | None
) -> list[str]:
    """What a threshold from so few images cannot promise, in plain words (empty when nothing)."""
    warnings = []
    if defective and escape_rate < 1.0 / defective:
        bound = min(1.0, 3.0 / defective)  # the rule of three: 0 of n seen, 95% upper bound 3/n
        warnings.append(
            f"only {defective} defective images: catching all of them bounds the true escape rate "
            f"below {bound:.0%} (95%), not at {escape_rate:.1%}; calibrate on more defective images "
            "for a tighter promise"
        )
    if good < 20:
        warnings.append(f"only {good} defect-free images: the false-alarm rate is a rough estimate")
    if false_alarm_rate is not None and false_alarm_rate > MAX_FALSE_ALARMS:
        warnings.append(
            f"the target costs a false-alarm rate of {false_alarm_rate:.0%}: most good parts would be "
            "rejected (the model cannot separate these images at this escape rate; train longer or on "
            "more data, or allow a higher --escape-rate)"
        )
    return warnings


#: A threshold that rejects more than this share of good parts is not stored without --force.
MAX_FALSE_ALARMS = 0.5


def model_part_images(meta: dict[str, Any], data: str | Path, part: str) -> MaskedImages:
    """The images of ``part`` of a model's own split (its card's ``split``) in ``data``, scanned
    in the layout it was trained on (``all``: every image)."""
    from lwcnn.data.masked_images import scan_segmentation
    from lwcnn.data.splits import Split

    images = scan_segmentation(data, (meta.get("data") or {}).get("layout", "auto"))
    if len(meta.get("classes") or ()) == 2 and len(images.types) > 1:  # a one-type model of typed data
        images = images.merged()
    if part == "all":
        return images
    return images.subset(Split.from_dict(meta["split"]).indices(images, part))


def record_test_figures(model_path: str | Path, test_images: Any) -> tuple[dict[str, Any], list, Inspector]:
    """Score a trained segmenter on its test images at its current threshold and record ``test_*``
    figures in its metadata, with ``test_threshold`` and ``test_min_area`` (the decision they were
    measured at; ``lwcnn calibrate`` records them again after changing it)."""
    from lwcnn.checkpoints import update_metrics

    inspector = Inspector(model_path)
    outcomes, _ = evaluate_segmenter(inspector, test_images)
    report = segmentation_report(outcomes)
    figures = {f"test_{k}": report[k] for k in ("ap", "macc", "tpr", "tnr", "iou", "dice", "n")}
    figures |= {"test_threshold": inspector.threshold, "test_min_area": inspector.min_area}
    update_metrics(model_path, figures)
    return report, outcomes, inspector
