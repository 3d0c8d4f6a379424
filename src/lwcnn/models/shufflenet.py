"""ShuffleNet v1 (Zhang et al., CVPR 2018; the paper's reference [24]) with any width multiplier.

The paper does not say which ShuffleNet it trained; it cites the v1 paper, so this is v1: grouped
1x1 convolutions with a channel shuffle, stage repeats (4, 8, 4), and no final 1x1 expansion.
The factory uses 8 groups: the v1 paper's most accurate setting at 0.25x (its Table 2), and the one
whose segmentation sizes come closest to the paper's Table 5 ShuffleNet row (docs/models.md).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lwcnn.models.backbone import Backbone
from lwcnn.models.layers import ConvBNAct, make_divisible

#: Output channels of stages 2-4 of ShuffleNet 1x, by group count (Table 1 of the v1 paper).
SHUFFLENET_STAGE_CHANNELS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
SHUFFLENET_REPEATS = (4, 8, 4)
STEM_CHANNELS = 24


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` groups so the next grouped conv sees every group."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet v1 unit: grouped 1x1, shuffle, depthwise 3x3, grouped 1x1; add (stride 1) or
    concatenate with a 3x3 average-pooled input (stride 2), then ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, groups: int, group_first: bool = True
    ) -> None:
        super().__init__()
        self.stride = stride
        self.groups = groups
        residual_out = out_channels - in_channels if stride == 2 else out_channels
        bottleneck = out_channels // 4
        first_groups = groups if group_first else 1
        self.shuffle_groups = first_groups
        self.reduce = ConvBNAct(in_channels, bottleneck, 1, groups=first_groups, activation=nn.ReLU)
        self.depthwise = ConvBNAct(
            bottleneck, bottleneck, 3, stride=stride, groups=bottleneck, activation=None
        )
        self.expand = ConvBNAct(bottleneck, residual_out, 1, groups=groups, activation=None)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.reduce(x)
        if self.shuffle_groups > 1:
            out = channel_shuffle(out, self.shuffle_groups)
        out = self.expand(self.depthwise(out))
        if self.pool is not None:
            return self.relu(torch.cat([self.pool(x), out], dim=1))
        return self.relu(out + x)


class ShuffleNetV1Backbone(Backbone):
    """ShuffleNet v1 feature extractor.

    Stage channels are the 1x channels for ``groups`` scaled by ``width`` and rounded to a multiple of
    ``4 * groups`` (so the bottleneck splits into whole groups). The 24-channel stem is kept at every
    width. Shortcut features: the max-pooled stem (stride 4) and stage 2 (stride 8).
    """

    feature_strides = (4, 8, 32)

    def __init__(self, width: float = 1.0, in_channels: int = 3, groups: int = 8) -> None:
        super().__init__()
        if groups not in SHUFFLENET_STAGE_CHANNELS:
            raise ValueError(f"ShuffleNet groups must be one of {sorted(SHUFFLENET_STAGE_CHANNELS)}")
        self.width = width
        self.groups = groups
        self.stem = nn.Sequential(
            ConvBNAct(in_channels, STEM_CHANNELS, 3, stride=2, activation=nn.ReLU),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        channels = STEM_CHANNELS
        outs = [make_divisible(c * width, 4 * groups) for c in SHUFFLENET_STAGE_CHANNELS[groups]]
        for stage, (out, repeats) in enumerate(zip(outs, SHUFFLENET_REPEATS, strict=True)):
            units = []
            for repeat in range(repeats):
                # The v1 paper does not group the very first 1x1: its input has only 24 channels.
                group_first = not (stage == 0 and repeat == 0)
                stride = 2 if repeat == 0 else 1
                units.append(ShuffleUnit(channels, out, stride, groups, group_first))
                channels = out
            stages.append(nn.Sequential(*units))
        self.stages = nn.ModuleList(stages)
        self.feature_channels = (STEM_CHANNELS, outs[0], outs[-1])

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features = [x]
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index == 0 or index == len(self.stages) - 1:
                features.append(x)
        return features
