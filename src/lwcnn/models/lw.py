"""The LW (light-weight) bottleneck and backbone of Huang et al., Sensors 2020 (Section 3.2, Table 2)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwcnn.models.backbone import Backbone
from lwcnn.models.layers import ConvBNAct, make_divisible, same_padding

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


class LWDepthwisePyramid(nn.Module):
    """The eight parallel depthwise convolutions of the LW bottleneck, computed as one.

    Each kernel of :data:`LW_KERNELS` keeps its own ``(C, 1, kh, kw)`` weight (33 weights per
    channel in all, Eq. 5). The forward pass places the eight kernels at their 'same'-padding
    offsets in 5x5 windows and runs a single grouped convolution with 8 outputs per input channel:
    the same sums as eight separate convolutions (the other taps are structural zeros), but one
    operator instead of eight, which is about 3x faster in PyTorch eager on a CPU.

    Output channel ``c * 8 + k`` is kernel ``k`` applied to input channel ``c``: the paper's
    concatenation, in channel-major order (the following 1x1 convolution does not care).
    """

    window = 5

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.channels = channels
        self.stride = stride
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(channels, 1, kh, kw)) for kh, kw in LW_KERNELS
        )
        # Where each kernel sits in the 5x5 window: F.pad amounts (left, right, top, bottom).
        self._placements = []
        for kh, kw in LW_KERNELS:
            centre = self.window // 2
            top, left = centre - same_padding(kh)[0], centre - same_padding(kw)[0]
            self._placements.append((left, self.window - kw - left, top, self.window - kh - top))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise each kernel as ``nn.Conv2d`` would a depthwise convolution of its size."""
        for weight in self.weights:
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))

    def kernel(self) -> Tensor:
        """The combined ``(8 * C, 1, 5, 5)`` depthwise kernel (rebuilt each call, so gradients flow
        to the eight compact weights)."""
        padded = [F.pad(w, placement) for w, placement in zip(self.weights, self._placements, strict=True)]
        size = self.window
        return torch.stack(padded, dim=1).reshape(len(LW_KERNELS) * self.channels, 1, size, size)

    def forward(self, x: Tensor) -> Tensor:
        padding = self.window // 2
        return F.conv2d(x, self.kernel(), stride=self.stride, padding=padding, groups=self.channels)

    def macs(self, output: Tensor) -> int:
        """Multiply-accumulates of the eight convolutions as the paper counts them (no zero taps)."""
        taps_per_channel = sum(kh * kw for kh, kw in LW_KERNELS)
        return output.numel() // len(LW_KERNELS) * taps_per_channel


class LWBottleneck(nn.Module):
    """LW bottleneck: a pyramid of eight parallel depthwise convolutions, then a linear 1x1 projection.

    Each of the eight depthwise convolutions (kernels :data:`LW_KERNELS`, the block's stride applied
    there) is followed by BN and ReLU6; their ``8 * in_channels`` maps are projected to
    ``out_channels`` by a 1x1 convolution with BN and no activation. A residual shortcut is added
    when the stride is 1 and the channel counts match. The convolution weights number
    ``(33 + 8 * out_channels) * in_channels``, the paper's Eq. (5). BN is per channel, so one BN over
    the pyramid's maps is exactly one BN per branch.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.pyramid = LWDepthwisePyramid(in_channels, stride)
        self.bn = nn.BatchNorm2d(len(LW_KERNELS) * in_channels)
        self.act = nn.ReLU6(inplace=True)
        self.project = ConvBNAct(len(LW_KERNELS) * in_channels, out_channels, 1, activation=None)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.act(self.bn(self.pyramid(x))))
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
        self.feature_channels = tuple(block_out_channels(blocks[i]) for i in self._taps)

    def forward(self, x: Tensor) -> list[Tensor]:
        features: list[Tensor] = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self._taps:
                features.append(x)
        return features


def block_out_channels(block: nn.Module) -> int:
    """Output channels of one of :class:`LWBackbone`'s blocks (an LW bottleneck or a conv layer)."""
    if isinstance(block, LWBottleneck):
        return block.project.out_channels
    assert isinstance(block, ConvBNAct)
    return block.out_channels
