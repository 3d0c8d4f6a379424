"""One factory for every model: ``create_model("lw@0.35", task="seg")``.

A model name is a family, optionally followed by ``@`` and a width multiplier: ``lw@0.35``,
``mobilenetv2@1.4``, ``shufflenet@0.25``, ``resnetv2-50``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from torch import nn

from lwcnn.errors import ConfigError
from lwcnn.models.backbone import Backbone
from lwcnn.models.heads import POOLS, Classifier, Segmenter
from lwcnn.models.lw import LWBackbone
from lwcnn.models.mobilenetv2 import MobileNetV2Backbone
from lwcnn.models.resnetv2 import ResNetV2Backbone
from lwcnn.models.shufflenet import ShuffleNetV1Backbone

Task = Literal["cls", "seg"]
TASKS: tuple[str, ...] = ("cls", "seg")


@dataclass(frozen=True)
class ModelFamily:
    """A registered backbone family."""

    name: str
    description: str
    build: Callable[..., Backbone]
    default_width: float | None  # None: the family has no width multiplier
    paper_names: tuple[str, ...]  # the configurations the paper reports


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model from the factory (stored with trained weights)."""

    name: str
    family: str
    width: float | None
    task: str
    num_classes: int
    in_channels: int
    shortcut_stride: int | None
    pool: str | None = None  # a classifier's pooling of its class maps (heads.POOLS); None: "avg"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FAMILIES: dict[str, ModelFamily] = {}


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a backbone family to the factory (names are unique)."""
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is already registered")
    _FAMILIES[family.name] = family
    return family


register_family(
    ModelFamily(
        "lw",
        "LW backbone (Huang et al. 2020, Table 2): 12 blocks of 8-branch depthwise bottlenecks",
        lambda width, in_channels: LWBackbone(width, in_channels),
        default_width=0.35,
        paper_names=("lw@0.35", "lw@0.75"),
    )
)
register_family(
    ModelFamily(
        "mobilenetv2",
        "MobileNetV2 (Sandler et al. 2018), any width multiplier",
        lambda width, in_channels: MobileNetV2Backbone(width, in_channels),
        default_width=1.0,
        paper_names=("mobilenetv2@0.35", "mobilenetv2@1.4"),
    )
)
register_family(
    ModelFamily(
        "shufflenet",
        "ShuffleNet v1 (Zhang et al. 2018), 8 groups, any width multiplier",
        lambda width, in_channels: ShuffleNetV1Backbone(width, in_channels, groups=8),
        default_width=1.0,
        paper_names=("shufflenet@0.25",),
    )
)
register_family(
    ModelFamily(
        "resnetv2-50",
        "Pre-activation ResNetV2-50 (He et al. 2016), TF-slim layout",
        lambda width, in_channels: ResNetV2Backbone(in_channels),
        default_width=None,
        paper_names=("resnetv2-50",),
    )
)


def model_families() -> list[ModelFamily]:
    """The registered families, in registration order."""
    return list(_FAMILIES.values())


def list_models() -> list[str]:
    """The model names the paper reports, one per configuration, all accepted by :func:`create_model`."""
    return [name for family in _FAMILIES.values() for name in family.paper_names]


def parse_model_name(name: str) -> tuple[ModelFamily, float | None]:
    """Split ``family@width`` into the registered family and the width (the family's default if omitted)."""
    family_name, _, width_text = name.strip().lower().partition("@")
    family = _FAMILIES.get(family_name)
    if family is None:
        known = ", ".join(_FAMILIES)
        raise ConfigError(f"unknown model {name!r}: families are {known} (e.g. lw@0.35)")
    if family.default_width is None:
        if width_text:
            raise ConfigError(f"model {family.name!r} has no width multiplier: use {family.name!r}")
        return family, None
    if not width_text:
        return family, family.default_width
    try:
        width = float(width_text)
    except ValueError:
        raise ConfigError(f"bad width multiplier in {name!r}: expected a number after '@'") from None
    if not 0.0 < width <= 4.0:
        raise ConfigError(f"width multiplier in {name!r} must be in (0, 4]")
    return family, width


def create_model(
    name: str,
    task: Task = "cls",
    num_classes: int | None = None,
    in_channels: int = 3,
    shortcut_stride: int = 8,
    pool: str = "avg",
) -> nn.Module:
    """Build a classifier (``task="cls"``) or segmenter (``task="seg"``) by model name.

    ``num_classes`` is required for classification and defaults to 2 (background, defect) for
    segmentation. ``in_channels`` is 1 for grayscale or 3 for RGB input. ``shortcut_stride``
    (segmentation only) picks the decoder's shortcut: 8 (the paper's block 5, output stride 8) or 4
    (block 4). ``pool`` (classification only) is how the class maps pool into the logits
    (:data:`lwcnn.models.heads.POOLS`). The returned module carries its :class:`ModelSpec` as ``model.spec``.
    """
    family, width = parse_model_name(name)
    if task not in TASKS:
        raise ConfigError(f"task must be 'cls' or 'seg', got {task!r}")
    if num_classes is None:
        if task == "cls":
            raise ConfigError("num_classes is required for a classifier")
        num_classes = 2
    if num_classes < 2:
        raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
    if in_channels not in (1, 3):
        raise ConfigError(f"in_channels must be 1 (grayscale) or 3 (RGB), got {in_channels}")
    if pool not in POOLS:
        raise ConfigError(f"model.pool must be one of {', '.join(POOLS)}, got {pool!r}")
    backbone = family.build(width, in_channels)
    model: nn.Module
    if task == "cls":
        model = Classifier(backbone, num_classes, pool)
    else:
        model = Segmenter(backbone, num_classes, shortcut_stride)
    canonical = family.name if width is None else f"{family.name}@{width:g}"
    model.spec = ModelSpec(
        name=canonical,
        family=family.name,
        width=width,
        task=task,
        num_classes=num_classes,
        in_channels=in_channels,
        shortcut_stride=shortcut_stride if task == "seg" else None,
        pool=pool if task == "cls" else None,
    )
    return model
