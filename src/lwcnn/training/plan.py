"""``lwcnn train DATA``: a training config chosen from what the data holds, with the reasons.

The recipe is one per task, the same for every dataset (nothing here names one); only what the
data makes necessary varies: the working size and scale (from the image sizes and how thin the
defects are), the training crop, the decoder's shortcut stride (output stride 4 for defects
thinner than a stride-8 cell), colour, the batch, the split (the data's own train/test parts where
it has them). The number of epochs is fitted to the time budget by a timed probe on this machine
when training starts (:mod:`lwcnn.training.budget`), not guessed here. :func:`plan_training` is
deterministic: the same statistics give the same config.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from lwcnn.config import build_config
from lwcnn.data.statistics import DatasetStatistics
from lwcnn.errors import ConfigError

#: The classifier's long side is kept between these (pixels): small images are not blown up past
#: what they hold, large ones are reduced to what a CPU trains on in minutes.
CLS_SIDE = (96, 256)
#: The segmenter works on whole images up to this many pixels a side (scaled); larger ones in tiles.
SEG_MAX_SIDE = 1024
#: Scaling may thin the 10th-percentile defect down to this many pixels, no further.
MIN_DEFECT_PX = 1.5
#: Scaled images are reduced until their long side is about this (the crops' context stays whole).
SEG_TARGET_SIDE = 704
#: Defects thinner than this (scaled px, median) get the stride-4 shortcut: a stride-8 output cell
#: is wider than such a line, and its outline blurs.
THIN_DEFECT_PX = 4.0
#: With a budget, a segmenter's crops shrink until about this many steps fit (the length of the
#: masks.yaml example run: 30 epochs of 32 steps).
MIN_SEG_STEPS = 1000
#: A classifier trains this share of its epochs (the first) at half the input side: on NEU in a
#: 5-minute budget, validation accuracy 0.950 against 0.933 at full size throughout (21 epochs
#: instead of 13; docs/results.md, "Generality").
LOW_RES = 0.6
#: Both tasks: half a cosine from 2e-3 to zero over the run, not the configs' exponential steps. As
#: good or better on the validation part of each of the seven development sets, same epochs, same
#: seed (mean headline 0.772 against 0.766; docs/results.md, "The learning-rate schedule").
RECIPE_OPTIMISER = "Adam 2e-3 falling along half a cosine to zero"
#: A classifier's batch is at most this: on 2 cores a step of 32 at 200-256 px costs about 0.53 of
#: one of 64 (6% more an image), so nearly twice the updates fit in the budget; on small inputs
#: (NEU's 100 px half-size epochs) a step's fixed cost shows, and about as many as with 64 fit.
#: Better than 64 on the median of three seeds on the validation parts of NEU and both ELPV
#: labellings at the same epochs; at 15 minutes ELPV +0.8 points, its four levels level
#: (docs/results.md, "The classifiers' batch").
CLS_MAX_BATCH = 32
#: A segmenter's batch of crops. Batches of 8 were ahead at the same epochs on DeepPCB and the
#: synthetic DAGM set, level on KolektorSDD, behind on NEU-DET; at 15 minutes, where 8 gets fewer
#: epochs, a tie on DeepPCB and NEU-DET (docs/results.md, "The segmenters' batch").
SEG_BATCH = 16
#: Scales the planner chooses from (a few, so that plans of similar data agree).
SCALES = (1.0, 0.75, 0.5, 0.375, 0.25)


@dataclass
class Plan:
    """A config and, line by line, why each choice was made."""

    config: dict[str, Any]
    reasons: list[str] = field(default_factory=list)


def parse_budget(text: str | float | int) -> float:
    """``15m``, ``90s``, ``1h``, ``1h30m`` or a bare number of minutes, as seconds (> 0)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text) * 60
    else:
        value = str(text).strip().lower()
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?:in)?)?(?:(\d+(?:\.\d+)?)s)?", value)
        if re.fullmatch(r"\d+(?:\.\d+)?", value):
            seconds = float(value) * 60
        elif parts and any(parts.groups()):
            h, m, s = (float(g) if g else 0.0 for g in parts.groups())
            seconds = h * 3600 + m * 60 + s
        else:
            raise ConfigError(f"--budget {text!r}: a duration such as 15m, 900s, 1h or 1h30m")
    if seconds <= 0:
        raise ConfigError(f"--budget {text!r}: must be longer than zero")
    return seconds


def plan_training(
    stats: DatasetStatistics, root: str, out: str, own_split: bool = False, budget_s: float = 0.0
) -> Plan:
    """The config for training on ``root`` (measured as ``stats``) into ``out``; ``own_split``: the
    data defines its own train/test parts (DAGM, DeepPCB); ``budget_s``: the wall-clock budget
    that the loop fits its epochs to (0: the recipe's epochs)."""
    plan = _plan_classifier(stats) if stats.task == "cls" else _plan_segmenter(stats)
    data = plan.config.setdefault("data", {})
    data |= {"root": root, "layout": stats.layout, "channels": stats.channels}
    plan.config["out"] = out
    plan.config["normalize"] = {"mean": [0.5], "std": [0.25]}
    if own_split:
        data["split"] = {"val": 0.2}
        plan.reasons.append(
            "split: the data's own train/test parts; its own val part validates, else 20% of train"
        )
    else:
        data["split"] = {"train": 0.6, "val": 0.2, "test": 0.2}
        plan.reasons.append(
            "split: 60/20/20 per class (validation large enough to choose the epoch and the threshold)"
        )
    if len(stats.types) > 1:
        shown = ", ".join(stats.types[:8]) + (", ..." if len(stats.types) > 8 else "")
        plan.reasons.append(
            f"types: the labels name {len(stats.types)} defect types ({shown}); data.types=merged (the "
            "default) learns one defect, typed one output each (in the same budget typed matched it "
            "on DeepPCB but cost NEU-DET 1.3 points of validation IoU: docs/results.md)"
        )
    plan.config["train"]["budget"] = float(budget_s)
    plan.config = build_config(plan.config, source="plan")  # merged onto the defaults, checked
    return plan


def _plan_classifier(stats: DatasetStatistics) -> Plan:
    reasons = []
    h, w = stats.median_size
    side = max(h, w)
    target = min(max(side, CLS_SIDE[0]), CLS_SIDE[1])
    factor = target / side
    size = [_round_to(h * factor, 8, 32), _round_to(w * factor, 8, 32)]
    reasons.append(
        f"input {size[1]} x {size[0]}: the median image ({w} x {h}) "
        + ("as it is" if math.isclose(factor, 1.0) else f"scaled by {factor:.2f}, aspect kept")
    )
    square = size[0] == size[1]
    transforms: list[dict[str, Any]] = [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "VerticalFlip", "p": 0.5},
        *([{"name": "RandomRotate90", "p": 0.5}] if square else []),
        {"name": "Affine", "translate_percent": [-0.1, 0.1], "border_mode": 4, "p": 0.5},
        # no size: it follows data.input_size (set on the command line too)
        {"name": "RandomResizedCrop", "scale": [0.7, 1.0], "ratio": [0.9, 1.1], "p": 0.3},
        *_illumination(),
        {"name": "GaussNoise", "std_range": [0.01, 0.04], "p": 0.2},
    ]
    counts = stats.class_counts
    reasons.append(
        "sampling: every image once an epoch, at its class's own frequency "
        f"({min(counts.values())}-{max(counts.values())} per class): balanced sampling would teach "
        "equal priors and reject good parts of a mostly defect-free line"
    )
    batch = int(min(CLS_MAX_BATCH, max(8, 2 ** math.floor(math.log2(max(1, stats.images * 0.6 / 8))))))
    reasons.append(
        f"batch {batch} (at least 8 steps an epoch, at most {CLS_MAX_BATCH}: more updates fit the "
        f"budget than with 64), {RECIPE_OPTIMISER}, a weight average (0.99) validated"
    )
    reasons.append(
        f"the first {LOW_RES:.0%} of the epochs on inputs of half the side (a step costs about a "
        "third: more epochs in the budget), the rest at full size"
    )
    reasons.append(
        "pooling: half the mean, half the highest position of the class maps (model.pool=avgmax): "
        "a defect on a few positions of a good part is not averaged away"
    )
    config = {
        "task": "cls",
        # avgmax, not the paper's mean: chosen on the validation parts of NEU and of ELPV (binary and
        # levels, two splits), as good or better in each of the five (docs/results.md)
        "model": {"pool": "avgmax"},
        "data": {"input_size": size},
        "augment": {"per_class": 0, "transforms": transforms},
        "train": {
            "batch_size": batch, "lr": 2.0e-3, "lr_schedule": "cosine", "ema": 0.99,
            "low_res": LOW_RES, "low_res_scale": 0.5,
        },
    }  # fmt: skip
    return Plan(config, reasons)


def _plan_segmenter(stats: DatasetStatistics) -> Plan:
    reasons = []
    h, w = stats.median_size
    thin = stats.defect_width[0] if stats.defect_width else None
    wanted = min(1.0, SEG_TARGET_SIDE / max(h, w))
    floor = min(1.0, MIN_DEFECT_PX / thin) if thin else 0.0
    # the largest listed scale that brings images down to the target, unless that thins the
    # defects below MIN_DEFECT_PX: then the smallest that keeps them
    allowed = [s for s in SCALES if s >= floor - 1e-9] or [1.0]
    scale = max((s for s in allowed if s <= wanted + 1e-9), default=min(allowed))
    why = "as they are" if scale == 1.0 else f"scaled by {scale:g} to about {SEG_TARGET_SIDE} px a side"
    if thin and scale * thin < 2 * MIN_DEFECT_PX and scale < 1.0:
        why += f", no further: the thinnest defects (10%: {thin:g} px) stay {scale * thin:.1f} px"
    reasons.append(f"scale {scale:g}: images {why}")
    big = (min(stats.max_size[0] * scale, SEG_MAX_SIDE), min(stats.max_size[1] * scale, SEG_MAX_SIDE))
    size = [_round_to(big[0], 32, 64, up=True), _round_to(big[1], 32, 64, up=True)]
    crop = [
        min(size[0], _round_to(min(h * scale, 384), 32, 128)),
        min(size[1], _round_to(min(w * scale, 384), 32, 128)),
    ]
    reasons.append(
        f"working size {size[1]} x {size[0]} (the largest scaled image in one pass), "
        f"training crops {crop[1]} x {crop[0]} (most of a median image: context for illumination)"
    )
    stride = 8
    if stats.defect_width and stats.defect_width[1] * scale < THIN_DEFECT_PX:
        stride = 4
        reasons.append(
            f"decoder shortcut at stride 4: defects are {stats.defect_width[1] * scale:.1f} px thick "
            "(median, scaled), thinner than a stride-8 output cell"
        )
    else:
        reasons.append("decoder shortcut at stride 8 (the paper's): defects are wider than its cells")
    transforms = [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "VerticalFlip", "p": 0.5},
        *_illumination(),
        {"name": "GaussNoise", "std_range": [0.01, 0.03], "p": 0.2},
    ]
    reasons.append(
        "recipe: gradual training (zoom 3.6 -> 1 over 15%, defect-free images from 30%), defect "
        f"pixels weighted 2, an image-level term (0.1), {RECIPE_OPTIMISER}, a weight average (0.99), "
        f"batch {SEG_BATCH}"
    )
    config = {
        "task": "seg",
        "data": {"scale": scale, "input_size": size, "crop": crop},
        "model": {"name": "lw@0.35", "shortcut_stride": stride},
        "augment": {"per_epoch": 512, "defective_fraction": 0.5, "transforms": transforms},
        "gradual": {"enabled": True, "zoom_steps": 0.15, "clean_from": 0.3, "start_ratio": 3.6},
        "train": {
            "batch_size": SEG_BATCH,
            "lr": 2.0e-3,
            "lr_schedule": "cosine",
            "defect_weight": 2.0,
            "image_loss": 0.1,
            "ema": 0.99,
            "min_steps": MIN_SEG_STEPS,
        },
    }
    reasons.append(
        f"with a budget: crops shrink (to 128 px at least) until about {MIN_SEG_STEPS} steps fit "
        "(fewer, larger crops leave a segmenter undertrained)"
    )
    return Plan(config, reasons)


def _illumination() -> list[dict[str, Any]]:
    """What real lines change between parts: brightness, contrast (down to faint defects), gamma,
    and gradients of light across the part (albumentations' Illumination)."""
    return [
        {
            "name": "RandomBrightnessContrast",
            "brightness_limit": 0.2,
            "contrast_limit": [-0.4, 0.2],
            "p": 0.5,
        },
        {"name": "RandomGamma", "gamma_limit": [80, 125], "p": 0.2},
        {"name": "Illumination", "mode": "linear", "intensity_range": [0.05, 0.2], "p": 0.3},
    ]


def _round_to(value: float, step: int, low: int, up: bool = False) -> int:
    rounded = math.ceil(value / step) * step if up else round(value / step) * step
    return int(max(low, rounded))


def plan_lines(plan: Plan) -> list[str]:
    """The plan as printed: one line per choice."""
    return [f"  {reason}" for reason in plan.reasons]
