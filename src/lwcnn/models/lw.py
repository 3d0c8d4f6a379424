"""The LW (light-weight) bottleneck and backbone of Huang et al., Sensors 2020 (Section 3.2, Table 2)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lwcnn.models.backbone import Backbone
from lwcnn.models.layers import ConvBNAct, make_divisible

#: The eight depthwise kernels of the LW bottleneck, as (height, width), in the paper's order.
LW_KERNELS: tuple[tuple[int, int], ...] = (
    (5, 1),
    (1, 5),
    (3, 1),
    (1, 3),
    (2, 1),
    (1, 2),
    (2, 2),
    (3, 3),
)

#: Table 2: (operator, output channels, stride of the first block, repeats). Twelve blocks in all.
LW_TABLE2: tuple[tuple[str, int, int, int], ...] = (
    ("conv3x3", 32, 2, 1),  # block 1
    ("conv1x1", 16, 1, 1),  # block 2
    ("lw", 24, 2, 2),  # blocks 3-4 (block 4: the stride-4 shortcut)
    ("lw", 32, 2, 2),  # blocks 5-6 (block 5: the stride-8 shortcut)
    ("lw", 32, 2, 1),  # block 7
    ("lw", 64, 2, 4),  # blocks 8-11
    ("conv1x1", 320, 1, 1),  # block 12
)


class LWBottleneck(nn.Module):
    """LW bottleneck: a pyramid of eight parallel depthwise convolutions, then a linear 1x1 projection.

    Each branch is a depthwise convolution with one of :data:`LW_KERNELS` (stride applied here),
    BN and ReLU6; the branches are concatenated (``8 * in_channels`` maps) and projected to
    ``out_channels`` by a 1x1 convolution with BN and no activation. A residual shortcut is added
    when the stride is 1 and the channel counts match. The convolution weights number
    ``(33 + 8 * out_channels) * in_channels``, the paper's Eq. (5).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            ConvBNAct(in_channels, in_channels, kernel, stride=stride, groups=in_channels)
            for kernel in LW_KERNELS
        )
        self.project = ConvBNAct(len(LW_KERNELS) * in_channels, out_channels, 1, activation=None)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
        return out + x if self.use_residual else out


class LWBackbone(Backbone):
    """The twelve-block LW backbone of Table 2.

    ``width`` multiplies every layer's channels (rounded with :func:`make_divisible`) except the final
    1x1 convolution to 320, which keeps 320 channels for widths below 1 (as MobileNetV2 keeps its last
    layer) and grows with wider networks. Block 2 (1x1 to 16) is linear, as a low-dimensional output
    is in the LW bottleneck; block 12 ends in ReLU6 like MobileNetV2's last layer.

    ``forward`` returns the outputs of block 4 (stride 4), block 5 (stride 8) and block 12
    (stride 32): the decoder's two possible shortcuts and the final features.
    """

    feature_strides = (4, 8, 32)

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        self.width = width
        blocks: list[nn.Module] = []
        channels = in_channels
        last = len(LW_TABLE2) - 1
        for index, (operator, base_out, stride, repeats) in enumerate(LW_TABLE2):
            if index == last:
                out = base_out if width <= 1.0 else make_divisible(base_out * width)
            else:
                out = make_divisible(base_out * width)
            for repeat in range(repeats):
                block_stride = stride if repeat == 0 else 1
                if operator == "conv3x3":
                    blocks.append(ConvBNAct(channels, out, 3, stride=block_stride))
                elif operator == "conv1x1":
                    activation = nn.ReLU6 if index == last else None
                    blocks.append(ConvBNAct(channels, out, 1, activation=activation))
                else:
                    blocks.append(LWBottleneck(channels, out, block_stride))
                channels = out
        self.blocks = nn.ModuleList(blocks)
        # Paper block numbers are 1-based: block 4 is index 3, block 5 index 4.
        self._taps = (3, 4, len(blocks) - 1)
        self.feature_channels = tuple(_out_channels(blocks[i]) for i in self._taps)

    def forward(self, x: Tensor) -> list[Tensor]:
        features: list[Tensor] = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self._taps:
                features.append(x)
        return features


def _out_channels(block: nn.Module) -> int:
    if isinstance(block, LWBottleneck):
        return block.project.out_channels
    assert isinstance(block, ConvBNAct)
    return block.out_channels
