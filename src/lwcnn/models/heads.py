"""Task models built on any :class:`~lwcnn.models.backbone.Backbone`: a classifier and a segmenter
with the paper's ASPP decoder (Section 3.3, Figure 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwcnn.models.backbone import Backbone
from lwcnn.models.layers import ConvBNAct

#: Decoder widths. The paper gives none; these reproduce its sizes for all three encoders it reports
#: (Table 5, 3x512x512): lw@0.35 923 MFLOPs / 0.55 M, lw@0.75 1312 / 0.60, MobileNetV2@0.35 1630 /
#: 1.40. The weight gap between the MobileNetV2 (1280 channels in) and LW (320 in) decoders,
#: 0.85 M = 960 x 4 x ASPP width, pins the ASPP branches at about 128 channels; the FLOPs left once
#: the backbone is counted then fit a 512-wide projection at stride 32 and a 128-wide fusion layer at
#: stride 8. docs/models.md gives the arithmetic and the measured sizes.
ASPP_CHANNELS = 128
ASPP_RATES = (6, 12, 18)
PROJECT_CHANNELS = 512
FUSE_CHANNELS = 128


#: How a classifier pools its class maps into logits: "avg", the mean (the paper's global average
#: pooling); "avgmax", half the mean plus half the highest position, so that a defect covering a
#: few positions of the last feature map is not averaged away by the rest of the image.
POOLS = ("avg", "avgmax")


class Classifier(nn.Module):
    """Backbone -> class activation maps (the fully connected layer at every position of the last
    features) -> pooled over positions (``pool``, :data:`POOLS`) into the logits. With ``"avg"``
    this is global average pooling followed by the layer (both linear)."""

    def __init__(self, backbone: Backbone, num_classes: int, pool: str = "avg") -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.pool = pool
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        features = self.backbone(x)[-1]
        if self.pool == "avg":  # pool first: the layer then runs once, not at every position
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))
        return self.pool_maps(self.class_maps(features))

    def class_maps(self, features: Tensor) -> Tensor:
        """The fully connected layer applied at every position of ``features``: (N, classes, h, w)."""
        return F.conv2d(features, self.fc.weight[:, :, None, None], self.fc.bias)

    def pool_maps(self, maps: Tensor) -> Tensor:
        """The logits (N, classes) that the class maps pool into."""
        mean = maps.mean(dim=(2, 3))
        if self.pool == "avg":
            return mean
        return 0.5 * (mean + maps.amax(dim=(2, 3)))

    def logits_and_class_maps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The logits and the class activation maps (N, classes, h, w) in one pass: the logits are
        the maps pooled (their spatial mean for ``"avg"``), so the maps show what made them."""
        maps = self.class_maps(self.backbone(x)[-1])
        return self.pool_maps(maps), maps


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 (dilated) + BN + ReLU, then pointwise 1x1 + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__(
            ConvBNAct(in_channels, in_channels, 3, groups=in_channels, dilation=dilation, activation=nn.ReLU),
            ConvBNAct(in_channels, out_channels, 1, activation=nn.ReLU),
        )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling as the paper builds it: one 1x1 convolution and three
    depthwise-separable 3x3 convolutions with atrous rates 6, 12 and 18, concatenated."""

    def __init__(
        self, in_channels: int, channels: int = ASPP_CHANNELS, rates: tuple[int, ...] = ASPP_RATES
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNAct(in_channels, channels, 1, activation=nn.ReLU)]
            + [SeparableConv(in_channels, channels, rate) for rate in rates]
        )
        self.out_channels = channels * len(self.branches)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class SegmentationDecoder(nn.Module):
    """ASPP on the final features, a pointwise projection, bilinear upsampling to the shortcut's size,
    concatenation with the shortcut, a pointwise fusion and a pointwise classifier: three pointwise
    layers after the ASPP, as in Figure 3."""

    def __init__(
        self,
        in_channels: int,
        shortcut_channels: int,
        num_classes: int,
        aspp_channels: int = ASPP_CHANNELS,
        project_channels: int = PROJECT_CHANNELS,
        fuse_channels: int = FUSE_CHANNELS,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, aspp_channels)
        self.project = ConvBNAct(self.aspp.out_channels, project_channels, 1, activation=nn.ReLU)
        self.fuse = UpsampleFuse(project_channels, shortcut_channels, fuse_channels)
        self.classify = nn.Conv2d(fuse_channels, num_classes, 1)

    def forward(self, features: Tensor, shortcut: Tensor) -> Tensor:
        context = self.project(self.aspp(features))
        return self.classify(self.fuse(context, shortcut))


class UpsampleFuse(ConvBNAct):
    """Bilinear upsampling of the context to the shortcut's size, concatenation with the shortcut and
    a 1x1 convolution + BN + ReLU (Figure 3), computed in a cheaper, exactly equivalent order.

    A 1x1 convolution and bilinear upsampling are both linear, and bilinear weights sum to one, so
    ``conv(cat(up(context), shortcut)) == up(conv_c(context)) + conv_s(shortcut)``, where ``conv_c``
    and ``conv_s`` are the two column blocks of the convolution's weight. Mixing the 512 context
    channels down to 128 *before* the 4x upsampling does that product at 1/16 of the pixels: for
    lw@0.35 on 512x512 this is about half of the segmenter's arithmetic (the paper's formulation,
    which :meth:`macs` still reports, as the FLOPs counter uses the architecture's count). The
    parameters are those of the plain ``ConvBNAct`` over the concatenation.
    """

    def __init__(self, context_channels: int, shortcut_channels: int, out_channels: int) -> None:
        super().__init__(context_channels + shortcut_channels, out_channels, 1, activation=nn.ReLU)
        self.context_channels = context_channels

    def forward(self, context: Tensor, shortcut: Tensor) -> Tensor:  # type: ignore[override]
        conv, bn, act = self[0], self[1], self[2]
        weight = conv.weight
        mixed = F.conv2d(context, weight[:, : self.context_channels])
        mixed = F.interpolate(mixed, size=shortcut.shape[-2:], mode="bilinear", align_corners=False)
        return act(bn(mixed + F.conv2d(shortcut, weight[:, self.context_channels :])))

    def macs(self, output: Tensor) -> int:
        """The paper's count: the 1x1 convolution over the concatenation at the shortcut's size."""
        return output.numel() * self[0].in_channels


class Segmenter(nn.Module):
    """Encoder-decoder segmentation model: logits at the shortcut's stride.

    ``shortcut_stride`` 8 (the default; block 5 of the LW backbone) gives the paper's output stride 8
    (512x512 -> 64x64); 4 (block 4) gives output stride 4. Use :func:`upsample_logits` to bring the
    logits to the input size.
    """

    def __init__(self, backbone: Backbone, num_classes: int = 2, shortcut_stride: int = 8) -> None:
        super().__init__()
        if shortcut_stride not in backbone.feature_strides[:-1]:
            raise ValueError(
                f"shortcut_stride must be one of {backbone.feature_strides[:-1]}, got {shortcut_stride}"
            )
        self.backbone = backbone
        self.num_classes = num_classes
        self.output_stride = shortcut_stride
        self._shortcut_index = backbone.feature_strides.index(shortcut_stride)
        self.decoder = SegmentationDecoder(
            backbone.out_channels, backbone.feature_channels[self._shortcut_index], num_classes
        )

    def forward(self, x: Tensor) -> Tensor:
        features = self.backbone(x)
        return self.decoder(features[-1], features[self._shortcut_index])


def upsample_logits(logits: Tensor, size: tuple[int, int] | torch.Size) -> Tensor:
    """Bilinearly resize segmentation logits (N, K, h, w) to the input size (H, W)."""
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)
