"""MobileNetV2 (Sandler et al., CVPR 2018), the paper's main baseline, written after TF-slim's definition."""

from __future__ import annotations

from torch import Tensor, nn

from lwcnn.models.backbone import Backbone
from lwcnn.models.layers import ConvBNAct, make_divisible

#: (expansion t, output channels c, repeats n, stride s) of the inverted-residual stages.
MOBILENETV2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class InvertedResidual(nn.Module):
    """Expand (1x1, ReLU6) -> depthwise 3x3 (ReLU6) -> linear 1x1 projection, residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_channels, hidden, 1))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden),
            ConvBNAct(hidden, out_channels, 1, activation=None),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return out + x if self.use_residual else out


class MobileNetV2Backbone(Backbone):
    """MobileNetV2 feature extractor with any width multiplier.

    Channels are ``make_divisible(c * width, 8)``; the final 1x1 layer keeps 1280 channels for
    widths up to 1 and scales above (``@1.4`` -> 1792), as in the original. Shortcut features are the
    outputs of the 24-channel stage (stride 4) and the 32-channel stage (stride 8).
    """

    feature_strides = (4, 8, 32)

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        self.width = width
        stem = make_divisible(32 * width)
        layers: list[nn.Module] = [ConvBNAct(in_channels, stem, 3, stride=2)]
        channels, stride_so_far = stem, 2
        taps: dict[int, int] = {}
        for expansion, base_out, repeats, stride in MOBILENETV2_STAGES:
            out = make_divisible(base_out * width)
            for repeat in range(repeats):
                layers.append(InvertedResidual(channels, out, stride if repeat == 0 else 1, expansion))
                channels = out
            stride_so_far *= stride
            taps[stride_so_far] = len(layers) - 1  # last layer at this stride
        last = make_divisible(1280 * width) if width > 1.0 else 1280
        layers.append(ConvBNAct(channels, last, 1))
        self.layers = nn.ModuleList(layers)
        self._taps = (taps[4], taps[8], len(layers) - 1)
        self.feature_channels = (make_divisible(24 * width), make_divisible(32 * width), last)

    def forward(self, x: Tensor) -> list[Tensor]:
        features: list[Tensor] = []
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index in self._taps:
                features.append(x)
        return features
