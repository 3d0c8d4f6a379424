"""Building blocks shared by every model family: channel rounding, conv + BN + activation."""

from __future__ import annotations

from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` the way MobileNet does.

    The result is the nearest multiple of ``divisor`` (at least ``min_value``, default ``divisor``),
    bumped up by one ``divisor`` if rounding down lost more than 10% of ``value``. The LW backbone and
    MobileNetV2 both use this rule, so a width multiplier means the same thing for both.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def same_padding(kernel_size: int) -> tuple[int, int]:
    """Padding (before, after) that keeps ``ceil(size / stride)`` outputs for any kernel size.

    Odd kernels pad symmetrically. Even kernels cannot, so the extra row/column goes after, as
    TensorFlow's 'SAME' does: a 2-tap kernel pads (0, 1).
    """
    before = (kernel_size - 1) // 2
    return before, kernel_size - 1 - before


class ConvBNAct(nn.Sequential):
    """Convolution without bias, batch normalisation, optional activation.

    ``kernel_size`` may be an int or a (height, width) pair; even sizes are padded 'same' with the
    extra row/column after (see :func:`same_padding`), so every kernel maps ``H x W`` to
    ``ceil(H / stride) x ceil(W / stride)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: type[nn.Module] | None = nn.ReLU6,
    ) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        (top, bottom), (left, right) = same_padding(kh), same_padding(kw)
        top, bottom, left, right = (p * dilation for p in (top, bottom, left, right))
        layers: list[nn.Module] = []
        if top == bottom and left == right:
            padding: tuple[int, int] = (top, left)
        else:
            layers.append(nn.ZeroPad2d((left, right, top, bottom)))
            padding = (0, 0)
        layers += [
            nn.Conv2d(
                in_channels,
                out_channels,
                (kh, kw),
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
        ]
        if activation is not None:
            layers.append(activation(inplace=True) if _takes_inplace(activation) else activation())
        super().__init__(*layers)
        self.out_channels = out_channels


def _takes_inplace(activation: type[nn.Module]) -> bool:
    return activation in (nn.ReLU, nn.ReLU6)
