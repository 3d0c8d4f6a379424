"""Training configuration: YAML files in ``configs/``, overridable with ``key=value`` arguments.

A config is a nested mapping merged onto :data:`CLASSIFICATION_DEFAULTS` or, for ``task: seg``,
:data:`SEGMENTATION_DEFAULTS`; unknown keys are errors
(a typo must not silently train with a default). Overrides use dotted keys and YAML values:
``train.epochs=5 model.name=mobilenetv2@0.35 data.input_size=[128,128]``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lwcnn.errors import ConfigError

#: Every key a classification config may have, with its default: the paper's recipe (Section 3.4).
CLASSIFICATION_DEFAULTS: dict[str, Any] = {
    "task": "cls",
    "out": "runs/cls",  # run folder: config, split, metrics, checkpoints, plots
    "data": {
        "root": None,  # folder of images (required)
        "layout": "auto",  # auto | neu | folders
        "channels": 1,  # 1: grayscale, 3: RGB
        "input_size": [200, 200],  # height, width the images are resized to
        "split": {"train": 0.7, "val": 0.1, "test": 0.2},  # per-class counts or fractions
        "split_seed": 0,
        "cache": True,  # keep decoded images in memory
        "skip_bad": False,  # skip unreadable images (reported) instead of stopping
    },
    "normalize": {"mean": [0.5], "std": [0.25]},  # on 0..1 pixel values; one value or one per channel
    # init: pretrained (the bundled backbone of the model's family, width and channels; from scratch
    # where none is bundled), scratch, a backbone file (lwcnn pretrain) or a trained model to start from
    # pool: how the class maps pool into the logits, avg or avgmax (lwcnn.models.heads.POOLS)
    "model": {"name": "lw@0.35", "pool": "avg", "init": "pretrained"},
    "augment": {
        "per_class": 0,  # class balancing: images drawn per class per epoch (0: each image once)
        "transforms": [],  # albumentations transforms: {name: HorizontalFlip, p: 0.5, ...}
    },
    "train": {
        "epochs": 30,
        "batch_size": 64,
        "optimizer": "adam",
        "lr": 1.0e-4,
        # exponential: the paper's (lr_decay every lr_decay_steps, scaled); cosine: half a cosine
        # from lr down to zero over the run's steps (lr_decay and lr_decay_steps then unused)
        "lr_schedule": "exponential",
        "lr_decay": 0.9,  # multiply the learning rate by this ...
        "lr_decay_steps": 10000,  # ... every so many steps (scaled for short runs, see below)
        "reference_steps": 60000,  # the paper's run length: shorter runs scale schedule constants
        "l2": 1.0e-4,  # L2 regularisation of convolution weights (TensorFlow's l2_loss convention)
        "bn_decay": 0.9997,  # BN moving-average decay (PyTorch momentum = 1 - decay), scaled too
        "bn_eps": 1.0e-5,
        "seed": 0,
        "threads": 0,  # torch intra-op threads (0: all cores)
        "workers": 1,  # data-loading processes (0: load in the training process)
        "channels_last": True,
        # bf16: forward pass and loss in bfloat16 autocast (weights, optimiser and validation stay fp32);
        # faster training on CPUs with AVX512-BF16 or AMX (docs/training.md), on recent GPUs too
        "precision": "fp32",
        "init_from": None,  # a trained model to start from: the same as model.init=PATH (older configs)
        # a pretrained backbone's learning rate, as a multiple of train.lr (the head's is train.lr)
        "backbone_lr": 1.0,
        "warmup": 0.0,  # this share of the run's first steps raises the learning rate from 0 linearly
        "log_every": 10,  # steps between progress-bar updates of loss and accuracy
        "accumulate": 1,  # micro-batches per step (gradient accumulation; batch_size stays the step's)
        "sync_bn": False,  # distributed on GPUs: batch norm over the global batch (SyncBatchNorm)
        "ema": 0.0,  # validate and save a moving average of the weights, this decay per step (0: off)
        "label_smoothing": 0.0,  # classification: target mass spread over the other classes
        # classification: this share of the epochs (the first) on inputs resized by low_res_scale
        "low_res": 0.0,
        "low_res_scale": 0.5,
        # wall-clock budget of the whole run in seconds (0: train.epochs as given): a timed probe
        # fits the epochs to it before training (lwcnn train --budget 15m); the run's config.yaml
        # records the epochs it chose, so that it reproduces the run
        "budget": 0.0,
        # with a budget: a segmenter's training crops shrink (to 128 px a side at least) until about
        # this many steps fit (0: the crops as configured)
        "min_steps": 0,
        # validate every so many epochs (and always the last); with a budget the probe raises it
        # until validation takes about a tenth of the training time
        "validate_every": 1,
        # written by a budget run that re-planned its epochs on the way (what its epochs really
        # cost): {planned_epochs: N, knots: [[run step, planned step], ...]}; the learning rate
        # follows the planned schedule with its remainder spread over the epochs re-planned, so
        # that the run's config.yaml reproduces it (lwcnn.training.schedule)
        "stretch": None,
    },
}


#: Every key a segmentation config may have, with its default: the classification recipe plus
#: images at a scale, training crops, gradual training (Sections 3.4.2, 4.4.2) and the image decision.
SEGMENTATION_DEFAULTS: dict[str, Any] = {
    "task": "seg",
    "out": "runs/seg",
    "data": {
        "root": None,  # folder of images with masks (required)
        "layout": "auto",  # auto | kolektorsdd | dagm | masks | voc | deeppcb | coco | labelme | yolo
        "channels": 1,
        "scale": 1.0,  # every image is resized by this factor first (training and inspection alike)
        "input_size": [512, 512],  # working size (scaled pixels): larger images are tiled at inspection
        "crop": [384, 384],  # training crops (scaled pixels); evaluation is always on whole images
        # fractions/counts of defective and of defect-free images alike; or {folds: FILE, test_fold: K,
        # val: 0.2} (cross-validation by group); or {val: 0.2} for data with its own train/test (DAGM)
        "split": {"train": 0.7, "val": 0.1, "test": 0.2},
        "split_seed": 0,
        "cache": True,
        "skip_bad": False,
        # merged: every type is "defect" (one output whatever the labels name); typed: one output per
        # type (K + 1). merged by default: in the same budget typed matched it on DeepPCB's validation
        # part but cost NEU-DET 1.3 IoU points (docs/results.md, "Defect types", second run); one
        # type is the same model either way
        "types": "merged",
    },
    "normalize": {"mean": [0.5], "std": [0.25]},
    # shortcut_stride: the decoder's shortcut, 8 (the paper's output stride) or 4 (thin defects)
    "model": {"name": "lw@0.35", "shortcut_stride": 8, "init": "pretrained"},
    "augment": {
        "per_epoch": 256,  # training crops per epoch
        "defective_fraction": 0.5,  # share of defective images once defect-free ones join (0: as they come)
        "transforms": [],  # albumentations transforms, applied to image and mask together
    },
    "gradual": {
        "enabled": True,
        "zoom_steps": 0.2,  # zoom ratio falls from start_ratio to 1 over these steps (< 1: run fraction)
        "clean_from": 0.5,  # defect-free images join at this step (< 1: fraction of the run)
        "start_ratio": 3.6,
    },
    "decision": {
        "threshold": 0.5,  # pixel defect probability
        "min_area": 1,  # defect pixels that make an image defective (1: the paper's any-pixel rule)
    },
    "train": {
        **{
            k: v
            for k, v in CLASSIFICATION_DEFAULTS["train"].items()
            if k not in ("label_smoothing", "low_res", "low_res_scale")
        },
        "defect_weight": 1.0,  # cross-entropy weight of defect pixels (background: 1)
        # with several defect types: weight of "which type, given a defect" in the pixel loss
        # (1: the plain cross-entropy over background and types; the decision's term keeps 1)
        "type_weight": 1.0,
        # weight of the image-level term: binary cross-entropy of each crop's highest pixel defect
        # logit against "the crop holds a defect" (0: pixel cross-entropy alone)
        "image_loss": 0.0,
    },
}

#: Every key of a pretraining config (``lwcnn pretrain``), with its default: the recipe of the
#: bundled backbones (docs/training.md, "Pretrained backbones"; configs/pretrain.yaml).
PRETRAINING_DEFAULTS: dict[str, Any] = {
    "task": "pretrain",
    "out": "runs/pretrain",
    "model": {"name": "lw@0.35"},
    "data": {
        "channels": 3,  # 3: RGB (half the images coloured); the 1-channel backbone is derived exactly
        "size": 128,  # pretext images, pixels a side (a multiple of 8)
        "categories": 256,  # formula categories (texture family + fixed parameters)
        "instances": 64,  # base textures per category (rendered once, kept in memory)
        "seed": 0,  # the formulas and the stream derive from it
        "images": None,  # a folder of the user's own images to cut samples from (optional)
        "images_share": 0.5,  # share of the samples cut from those images when given
        "workers": 1,  # processes that make the images
    },
    "pretext": {
        # classify: name the formula category (FractalDB's pretext); defects: that, and find and name
        # synthetic defects painted into the texture (a map at stride 8 and the kinds present)
        "objective": "defects",
        "defect_share": 0.6,  # share of samples with defects painted in (objective defects)
        "category_weight": 1.0,
        "map_weight": 1.0,
        "kinds_weight": 0.5,
    },
    "normalize": {"mean": [0.5], "std": [0.25]},
    "train": {
        "steps": 20000,
        "budget": 0.0,  # wall-clock seconds for the whole run (0: train.steps); fits the steps by a probe
        "batch_size": 64,
        "lr": 2.0e-3,  # AdamW, linear warm-up then cosine decay to zero
        "warmup": 0.02,
        "weight_decay": 1.0e-4,
        "precision": "auto",  # fp32, bf16, auto (bf16 where native and faster)
        "threads": 0,
        "seed": 0,
        "channels_last": True,
        "eval_every": 500,  # steps between evaluations on held-out images and checkpoints
        "eval_images": 512,
        "log_every": 10,
    },
}

DEFAULTS_BY_TASK: dict[str, dict[str, Any]] = {
    "cls": CLASSIFICATION_DEFAULTS,
    "seg": SEGMENTATION_DEFAULTS,
    "pretrain": PRETRAINING_DEFAULTS,
}


class ConfigLoader(yaml.SafeLoader):
    """YAML as PyYAML's safe loader reads it, but ``1e-3`` is a number (YAML 1.1, PyYAML's rules,
    needs a dot and a signed exponent: ``1.0e-3``; YAML 1.2 and every user expect ``1e-3``)."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_config(
    path: str | Path | None,
    overrides: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read ``path`` (YAML), merge it onto ``defaults`` (by default those of the config's ``task``,
    from the file or a ``task=`` override), apply ``key=value`` overrides."""
    loaded: Any = {}
    if path is not None:
        path = Path(path)
        try:
            loaded = yaml.load(path.read_text(encoding="utf-8"), ConfigLoader) or {}
        except OSError as error:
            raise ConfigError(f"{path}: cannot read config ({error.strerror or error})") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    if defaults is None:
        task = loaded.get("task", "cls")
        for override in overrides:
            if override.startswith("task="):
                task = override.partition("=")[2]
        if task not in DEFAULTS_BY_TASK:
            raise ConfigError(
                f"{path or 'override'}: task {task!r} is not one of {', '.join(DEFAULTS_BY_TASK)}"
            )
        defaults = DEFAULTS_BY_TASK[task]
    config = copy.deepcopy(dict(defaults))
    if loaded:
        _merge(config, loaded, defaults, prefix="", source=str(path))
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} must look like key=value (e.g. train.epochs=5)")
        try:
            value = yaml.load(text, ConfigLoader) if text else None
        except yaml.YAMLError:
            value = text
        if key.startswith("data.split.") and isinstance(config["data"].get("split"), dict):
            # one entry of the split (e.g. data.split.test_fold=1) changes that entry, not the whole split
            config["data"]["split"][key.removeprefix("data.split.")] = value
            continue
        nested: dict[str, Any] = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        _merge(config, nested, defaults, prefix="", source="override")
    check_values(config, defaults, source=str(path) if path is not None else "config")
    return config


#: Allowed ranges of numeric settings: (low, high, low inclusive, high inclusive); None: unbounded.
#: Checked once at load, so that a bad value is a one-line error naming the key, not an exception
#: deep inside training (``train.batch_size=0`` was a ZeroDivisionError).
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "data.channels": (1, 3, True, True),
    "data.scale": (0.0, 4.0, False, True),
    "data.split_seed": (0, None, True, True),
    "augment.per_class": (0, None, True, True),
    "augment.per_epoch": (1, None, True, True),
    "augment.defective_fraction": (0.0, 1.0, True, True),
    "gradual.zoom_steps": (0.0, None, True, True),
    "gradual.clean_from": (0.0, None, True, True),
    "gradual.start_ratio": (1.0, None, True, True),
    "decision.threshold": (0.0, 1.0, False, False),
    "decision.min_area": (1, None, True, True),
    "train.epochs": (1, None, True, True),
    "train.batch_size": (1, None, True, True),
    "train.lr": (0.0, None, True, True),  # 0: only BN statistics move (a fine-tuning probe)
    "train.lr_decay": (0.0, 1.0, False, True),
    "train.lr_decay_steps": (1, None, True, True),
    "train.reference_steps": (1, None, True, True),
    "train.l2": (0.0, None, True, True),
    "train.bn_decay": (0.0, 1.0, False, False),
    "train.bn_eps": (0.0, None, False, True),
    "train.seed": (0, None, True, True),
    "train.threads": (0, None, True, True),
    "train.workers": (0, None, True, True),
    "train.log_every": (1, None, True, True),
    "train.accumulate": (1, None, True, True),
    "train.label_smoothing": (0.0, 1.0, True, False),
    "train.defect_weight": (0.0, None, False, True),
    "train.image_loss": (0.0, None, True, True),
    "train.type_weight": (0.0, None, True, True),
    "train.budget": (0.0, None, True, True),
    "train.min_steps": (0, None, True, True),
    "train.validate_every": (1, None, True, True),
    "train.low_res": (0.0, 1.0, True, False),
    "train.low_res_scale": (0.1, 1.0, True, True),
    "train.backbone_lr": (0.0, 10.0, True, True),
    "train.warmup": (0.0, 0.5, True, True),
    "train.steps": (1, None, True, True),
    "train.weight_decay": (0.0, None, True, True),
    "train.eval_every": (1, None, True, True),
    "train.eval_images": (1, None, True, True),
    "data.size": (16, 1024, True, True),
    "data.categories": (1, None, True, True),
    "data.instances": (1, None, True, True),
    "data.seed": (0, None, True, True),
    "data.images_share": (0.0, 1.0, True, True),
    "pretext.defect_share": (0.0, 1.0, True, True),
    "pretext.category_weight": (0.0, None, True, True),
    "pretext.map_weight": (0.0, None, True, True),
    "pretext.kinds_weight": (0.0, None, True, True),
}


#: Allowed values of text settings, checked at load like :data:`RANGES`.
CHOICES: dict[str, tuple[str, ...]] = {
    "data.types": ("merged", "typed"),
    "model.pool": ("avg", "avgmax"),  # lwcnn.models.heads.POOLS (this module does not import torch)
    "pretext.objective": ("classify", "defects"),
    "train.precision": ("fp32", "bf16", "auto"),
    "train.lr_schedule": ("exponential", "cosine"),
}


def check_values(
    config: Mapping[str, Any], defaults: Mapping[str, Any], source: str, prefix: str = ""
) -> None:
    """Every value of ``config`` has its default's type (an integer where the default is one, a number
    where it is a float, made a float here; true/false where it is a bool) and lies in its
    :data:`RANGES`; raises :class:`ConfigError` naming the key, the value and what is allowed. After
    it, the code that uses a value neither casts nor checks it."""
    for key, default in defaults.items():
        dotted, value = f"{prefix}{key}", config.get(key)
        if isinstance(default, dict) and key != "split":
            check_values(value, default, source, prefix=f"{dotted}.")
            continue
        if dotted == "data.split" and not isinstance(value, Mapping):
            raise ConfigError(
                f"{source}: data.split must be a mapping of parts to fractions or per-class counts, e.g. "
                f"data.split={{train: 0.7, val: 0.1, test: 0.2}}, got {value!r}"
            )
        if dotted == "data.input_size" or dotted == "data.crop":
            if (
                not isinstance(value, list | tuple)
                or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 8 for v in value)
            ):
                raise ConfigError(f"{source}: {dotted} must be [height, width], integers >= 8, got {value!r}")
            continue
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{source}: {dotted} must be true or false, got {value!r}")
            continue
        if isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{source}: {dotted} must be an integer, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{source}: {dotted} must be a number, got {value!r}")
            value = config[key] = float(value)  # typed once here: no float() where it is used
        else:
            if dotted in CHOICES and value not in CHOICES[dotted]:
                raise ConfigError(
                    f"{source}: {dotted} must be one of {', '.join(CHOICES[dotted])}, got {value!r}"
                )
            continue
        if dotted in RANGES:
            _check_range(dotted, value, RANGES[dotted], source)


def _check_range(
    dotted: str, value: float, allowed: tuple[float | None, float | None, bool, bool], source: str
) -> None:
    low, high, low_in, high_in = allowed
    below = low is not None and (value < low if low_in else value <= low)
    above = high is not None and (value > high if high_in else value >= high)
    if below or above:
        lower = "" if low is None else f"{'>=' if low_in else '>'} {low:g}"
        upper = "" if high is None else f"{'<=' if high_in else '<'} {high:g}"
        wanted = " and ".join(part for part in (lower, upper) if part)
        raise ConfigError(f"{source}: {dotted} must be {wanted}, got {value!r}")


def _merge(
    target: dict[str, Any], update: Mapping[str, Any], schema: Mapping[str, Any], prefix: str, source: str
) -> None:
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            known = ", ".join(f"{prefix}{k}" for k in schema)
            raise ConfigError(f"{source}: unknown config key {dotted!r} (known: {known})")
        if isinstance(schema[key], dict) and key != "split":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: {dotted} must be a mapping")
            _merge(target[key], value, schema[key], prefix=f"{dotted}.", source=source)
        else:
            target[key] = copy.deepcopy(value)


def build_config(values: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """A complete config from a mapping of some keys (a planned config): merged onto its task's
    defaults and checked as :func:`load_config` checks a file."""
    task = values.get("task", "cls")
    if task not in DEFAULTS_BY_TASK:
        raise ConfigError(f"{source}: task {task!r} is not one of {', '.join(DEFAULTS_BY_TASK)}")
    defaults = DEFAULTS_BY_TASK[task]
    config = copy.deepcopy(dict(defaults))
    _merge(config, values, defaults, prefix="", source=source)
    check_values(config, defaults, source=source)
    return config


def dump_config(config: Mapping[str, Any]) -> str:
    """The config as YAML (what a run folder keeps, to resume or reproduce it)."""
    return yaml.safe_dump(dict(config), sort_keys=False)
