"""The pretext tasks a backbone is pretrained on, as small heads over any factory backbone.

- ``classify``: name the formula category of a texture (FractalDB's formula-driven
  classification): a linear layer on the globally pooled last features.
- ``defects``: that, and find what does not belong to the texture: a defect map at stride 8 (the
  backbone's block-5 features, where the segmenter's decoder takes its shortcut, plus the last
  features brought up to it) and the kinds of defect present (a multi-label linear layer).

The heads are deliberately small (the segmenter's ASPP decoder alone has ten times the backbone's
weights): what the pretext needs has to be learned by the backbone, the only part kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwcnn.data.synthetic_defects import DEFECT_KINDS
from lwcnn.models.layers import ConvBNAct
from lwcnn.models.registry import parse_model_name

OBJECTIVES: tuple[str, ...] = ("classify", "defects")
#: Channels of the defect-map head.
MAP_CHANNELS = 64
#: Weight of a defect cell in the map's loss: defect cells are about 3% of all (most defects are
#: thin or small), and unweighted the map first learns to answer "none" everywhere.
DEFECT_CELL_WEIGHT = 3.0


class DefectMapHead(nn.Module):
    """Logits of "a defect pixel lies in this cell" at stride 8: the stride-8 features and the last
    features (upsampled) through 1x1 layers, summed, then one output channel."""

    def __init__(self, shortcut_channels: int, context_channels: int) -> None:
        super().__init__()
        self.shortcut = ConvBNAct(shortcut_channels, MAP_CHANNELS, 1, activation=None)
        self.context = ConvBNAct(context_channels, MAP_CHANNELS, 1, activation=None)
        self.out = nn.Conv2d(MAP_CHANNELS, 1, 1)

    def forward(self, shortcut: Tensor, context: Tensor) -> Tensor:
        up = F.interpolate(
            self.context(context), size=shortcut.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.out(F.relu(self.shortcut(shortcut) + up))[:, 0]


class PretextModel(nn.Module):
    """A factory backbone (``model_name``: ``lw@0.35``...) with the heads of ``objective``."""

    def __init__(self, model_name: str, in_channels: int, categories: int, objective: str) -> None:
        super().__init__()
        family, width = parse_model_name(model_name)
        self.model_name = family.name if width is None else f"{family.name}@{width:g}"
        self.family, self.width = family.name, width
        self.objective = objective
        self.backbone = family.build(width, in_channels)
        channels = self.backbone.out_channels
        self.category = nn.Linear(channels, categories)
        self._stride8 = self.backbone.feature_strides.index(8)
        if objective == "defects":
            self.defect_map = DefectMapHead(self.backbone.feature_channels[self._stride8], channels)
            self.kinds = nn.Linear(channels, len(DEFECT_KINDS))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = self.backbone(x)
        pooled = torch.flatten(F.adaptive_avg_pool2d(features[-1], 1), 1)
        out = {"category": self.category(pooled)}
        if self.objective == "defects":
            out["map"] = self.defect_map(features[self._stride8], features[-1])
            out["kinds"] = self.kinds(pooled)
        return out


def pretext_loss(
    out: Mapping[str, Tensor],
    category: Tensor,
    defect_map: Tensor,
    kinds: Tensor,
    weights: Mapping[str, float],
) -> tuple[Tensor, dict[str, float]]:
    """The weighted sum of the objective's terms (``weights``: the config's ``pretext`` section),
    and each term's value. Samples with no category (a user's image: -1) add no category term."""
    logits = out["category"].float()
    labelled = category >= 0
    terms: dict[str, Tensor] = {}
    if labelled.any():
        terms["category"] = F.cross_entropy(logits[labelled], category[labelled])
    if "map" in out:
        terms["map"] = F.binary_cross_entropy_with_logits(
            out["map"].float(), defect_map, pos_weight=torch.tensor(DEFECT_CELL_WEIGHT)
        )
        terms["kinds"] = F.binary_cross_entropy_with_logits(out["kinds"].float(), kinds)
    total = sum(weights[f"{name}_weight"] * value for name, value in terms.items())
    if not isinstance(total, Tensor):  # no term at all (a batch of user images, classify)
        total = logits.sum() * 0.0
    return total, {name: float(value.detach()) for name, value in terms.items()}


@torch.no_grad()
def pretext_metrics(model: PretextModel, batches: list[tuple[Tensor, ...]]) -> dict[str, Any]:
    """On held-out images: category accuracy; for ``defects`` the defect cells' IoU, whether an
    image holds a defect (any cell above 0.5) against the truth, and the kinds' accuracy."""
    model.eval()
    right = labelled = 0
    inter = union = image_right = images = kinds_right = kinds_total = 0
    for image, category, defect_map, kinds in batches:
        out = model(image)
        mask = category >= 0
        right += int((out["category"].argmax(1)[mask] == category[mask]).sum())
        labelled += int(mask.sum())
        if "map" in out:
            found, truth = out["map"] > 0, defect_map > 0.5
            inter += int((found & truth).sum())
            union += int((found | truth).sum())
            image_right += int((found.flatten(1).any(1) == truth.flatten(1).any(1)).sum())
            images += len(image)
            kinds_right += int(((out["kinds"] > 0) == (kinds > 0.5)).sum())
            kinds_total += kinds.numel()
    model.train()
    metrics: dict[str, Any] = {"category_acc": right / labelled if labelled else None}
    if images:
        metrics |= {
            "map_iou": inter / union if union else None,
            "image_acc": image_right / images,
            "kinds_acc": kinds_right / kinds_total,
        }
    return metrics
