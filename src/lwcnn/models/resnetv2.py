"""Pre-activation ResNetV2-50 (He et al., ECCV 2016), laid out as TF-slim's ``resnet_v2_50``.

The paper trained TensorFlow models, and slim's layout reproduces its 23.65 M weights for 64
classes: biased root convolution, the stride of each block in its *last* unit, biased projection
shortcuts and output convolutions, and a final BN + ReLU before pooling.
"""

from __future__ import annotations

from torch import Tensor, nn

from lwcnn.models.backbone import Backbone
from lwcnn.models.layers import ConvBNAct

#: (bottleneck channels, output channels, units, stride of the last unit) per block.
RESNETV2_50_BLOCKS: tuple[tuple[int, int, int, int], ...] = (
    (64, 256, 3, 2),
    (128, 512, 4, 2),
    (256, 1024, 6, 2),
    (512, 2048, 3, 1),
)


class PreActBottleneck(nn.Module):
    """BN-ReLU pre-activation, then 1x1 -> 3x3 (stride) -> 1x1, added to an identity, strided
    subsampling or 1x1 projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, bottleneck: int, stride: int) -> None:
        super().__init__()
        self.preact = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self.stride = stride
        self.projection = (
            nn.Conv2d(in_channels, out_channels, 1, stride=stride) if in_channels != out_channels else None
        )
        self.residual = nn.Sequential(
            ConvBNAct(in_channels, bottleneck, 1, activation=nn.ReLU),
            ConvBNAct(bottleneck, bottleneck, 3, stride=stride, activation=nn.ReLU),
            nn.Conv2d(bottleneck, out_channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        preact = self.preact(x)
        if self.projection is not None:
            shortcut = self.projection(preact)
        else:
            shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        return shortcut + self.residual(preact)


class ResNetV2Backbone(Backbone):
    """ResNetV2-50 feature extractor (no width multiplier). Shortcut features are the last maps at
    strides 4 and 8, taken just before the unit that halves the resolution."""

    feature_strides = (4, 8, 32)

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, stride=2, padding=3),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        units: list[nn.Module] = []
        taps: list[int] = []
        channels = 64
        for bottleneck, out, count, stride in RESNETV2_50_BLOCKS:
            for index in range(count):
                last = index == count - 1
                if last and stride > 1:
                    taps.append(len(units) - 1)
                units.append(PreActBottleneck(channels, out, bottleneck, stride if last else 1))
                channels = out
        self.units = nn.ModuleList(units)
        self.postnorm = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self._taps = (taps[0], taps[1])
        self.feature_channels = (RESNETV2_50_BLOCKS[0][1], RESNETV2_50_BLOCKS[1][1], channels)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features: list[Tensor] = []
        for index, unit in enumerate(self.units):
            x = unit(x)
            if index in self._taps:
                features.append(x)
        features.append(self.postnorm(x))
        return features
