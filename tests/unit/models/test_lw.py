"""The LW bottleneck and backbone as Section 3.2 and Table 2 define them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwcnn.models import LW_KERNELS, ConvBNAct, LWBackbone, LWBottleneck, make_divisible
from lwcnn.models.layers import same_padding
from lwcnn.models.lw import LWDepthwisePyramid
from lwcnn.profiling import count_flops


def conv_weights(module: nn.Module) -> int:
    """Weights of convolution kernels (4-D tensors), not BN scales or biases."""
    return sum(p.numel() for p in module.parameters() if p.dim() == 4)


def reference_bottleneck(block: LWBottleneck, x: torch.Tensor) -> torch.Tensor:
    """Section 3.2 written out literally: eight separate depthwise convolutions, each with its own BN
    and ReLU6, concatenated branch after branch, then the 1x1 projection and the residual."""
    c = block.pyramid.channels
    stride = block.pyramid.stride
    branches = []
    for k, ((kh, kw), weight) in enumerate(zip(LW_KERNELS, block.pyramid.weights, strict=True)):
        (top, bottom), (left, right) = same_padding(kh), same_padding(kw)
        y = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, stride=stride, groups=c)
        channels = torch.arange(c) * len(LW_KERNELS) + k  # this branch's BN channels
        bn = block.bn
        y = F.batch_norm(
            y, bn.running_mean[channels], bn.running_var[channels], bn.weight[channels], bn.bias[channels],
            eps=bn.eps,
        )  # fmt: skip
        branches.append(F.relu6(y))
    concatenated = torch.cat(branches, dim=1)  # paper order: channel k * C + c
    conv, bn = block.project[0], block.project[1]
    # Our pyramid orders channels c * 8 + k: permute the projection's inputs to the paper's order.
    order = torch.arange(len(LW_KERNELS) * c).reshape(c, len(LW_KERNELS)).t().reshape(-1)
    out = F.conv2d(concatenated, conv.weight[:, order])
    out = F.batch_norm(out, bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps)
    return out + x if block.use_residual else out


def randomise(module: nn.Module) -> None:
    """Random BN statistics and affine parameters, so that equivalence tests see every term."""
    with torch.no_grad():
        for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)


@pytest.mark.parametrize(("c_in", "c_out"), [(8, 8), (8, 16), (16, 24), (24, 24), (48, 96)])
def test_bottleneck_conv_weights_follow_eq5(c_in, c_out):
    assert conv_weights(LWBottleneck(c_in, c_out)) == (33 + 8 * c_out) * c_in


@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(8, 8, 1), (8, 16, 1), (8, 8, 2), (16, 24, 2)])
@pytest.mark.parametrize("size", [(9, 9), (10, 10), (13, 20)])
def test_bottleneck_equals_eight_separate_branches(c_in, c_out, stride, size):
    torch.manual_seed(0)
    block = LWBottleneck(c_in, c_out, stride=stride)
    randomise(block)
    block.eval()
    x = torch.randn(2, c_in, *size)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference_bottleneck(block, x), rtol=1e-5, atol=1e-5)


def test_bottleneck_has_the_papers_eight_depthwise_kernels():
    block = LWBottleneck(16, 24, stride=2)
    assert [tuple(w.shape) for w in block.pyramid.weights] == [(16, 1, kh, kw) for kh, kw in LW_KERNELS]
    assert {(5, 1), (1, 5), (3, 1), (1, 3), (2, 1), (1, 2), (2, 2), (3, 3)} == set(LW_KERNELS)
    assert block.pyramid.stride == 2
    assert block.bn.num_features == 8 * 16 and isinstance(block.act, nn.ReLU6)
    project = block.project
    assert project[0].in_channels == 8 * 16 and project[0].kernel_size == (1, 1)
    assert isinstance(project[-1], nn.BatchNorm2d)  # linear: no activation after the projection


def test_bottleneck_flops_count_the_papers_taps_not_the_window():
    # 33 taps per input channel for the pyramid, 8 * C_in * C_out for the projection, per position.
    assert count_flops(LWBottleneck(8, 16), (1, 8, 10, 10)) == 2 * 100 * (33 * 8 + 8 * 8 * 16)


@pytest.mark.parametrize("size", [(7, 7), (8, 8), (9, 12), (166, 166), (83, 83)])
@pytest.mark.parametrize("stride", [1, 2])
def test_pyramid_keeps_same_size(size, stride):
    block = LWBottleneck(4, 4, stride=stride).eval()
    x = torch.randn(1, 4, *size)
    expected = tuple(-(-s // stride) for s in size)
    assert tuple(block.pyramid(x).shape) == (1, 8 * 4, *expected)
    assert tuple(block(x).shape[-2:]) == expected


def test_even_kernels_pad_after():
    pyramid = LWDepthwisePyramid(1)
    with torch.no_grad():
        for weight in pyramid.weights:
            weight.fill_(1.0)
    out = pyramid(torch.ones(1, 1, 4, 4))[0, LW_KERNELS.index((2, 2))]
    assert out[0, 0] == 4  # a full 2x2 window at the top-left: nothing padded before
    assert out[-1, -1] == 1  # bottom-right window: one real pixel, three padded after
    assert out[0, -1] == 2 and out[-1, 0] == 2
    plain = ConvBNAct(1, 1, (2, 2), activation=None)  # the same rule in the shared conv layer
    assert isinstance(plain[0], nn.ZeroPad2d) and plain[0].padding == (0, 1, 0, 1)


def _zero_projection(block: LWBottleneck) -> None:
    bn = block.project[-1]
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def test_residual_adds_input_exactly_when_shapes_match():
    block = LWBottleneck(8, 8, stride=1).eval()
    _zero_projection(block)
    x = torch.randn(2, 8, 9, 11)
    assert block.use_residual
    assert torch.equal(block(x), x)


@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(8, 16, 1), (8, 8, 2), (8, 16, 2)])
def test_no_residual_when_shapes_differ(c_in, c_out, stride):
    block = LWBottleneck(c_in, c_out, stride=stride).eval()
    _zero_projection(block)
    assert not block.use_residual
    out = block(torch.randn(2, c_in, 9, 11))
    assert torch.count_nonzero(out) == 0


def test_backbone_follows_table2():
    backbone = LWBackbone(width=1.0)
    assert len(backbone.blocks) == 12
    lw_blocks = {i + 1: b for i, b in enumerate(backbone.blocks) if isinstance(b, LWBottleneck)}
    assert sorted(lw_blocks) == list(range(3, 12))
    # A repeated stage has its stride in its first block only: blocks 3, 5, 7, 8 are strided.
    strided = {n for n, b in lw_blocks.items() if b.pyramid.stride == 2}
    assert strided == {3, 5, 7, 8}
    assert {n for n, b in lw_blocks.items() if b.use_residual} == {4, 6, 9, 10, 11}
    x = torch.randn(1, 3, 331, 331)
    block4, block5, final = backbone.eval()(x)
    assert block4.shape == (1, 24, 83, 83)
    assert block5.shape == (1, 32, 42, 42)
    assert final.shape == (1, 320, 11, 11)


@pytest.mark.parametrize("width", [0.35, 0.5, 0.75, 1.0, 1.4])
def test_width_multiplier_scales_all_but_the_last_layer(width):
    backbone = LWBackbone(width=width)
    expected = (
        make_divisible(24 * width),
        make_divisible(32 * width),
        320 if width <= 1 else make_divisible(320 * width),
    )
    assert backbone.feature_channels == expected
    first = next(m for m in backbone.blocks[0].modules() if isinstance(m, nn.Conv2d))
    assert first.out_channels == make_divisible(32 * width)
    assert all(c % 8 == 0 for c in backbone.feature_channels)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(11.2, 16), (5.6, 8), (8.4, 8), (18, 24), (22.4, 24), (24, 24), (44.8, 48), (1792, 1792)],
)
def test_make_divisible_rounds_like_mobilenet(value, expected):
    assert make_divisible(value) == expected
