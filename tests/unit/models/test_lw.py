"""The LW bottleneck and backbone as Section 3.2 and Table 2 define them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lwcnn.models import LW_KERNELS, ConvBNAct, LWBackbone, LWBottleneck, make_divisible


def conv_weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(("c_in", "c_out"), [(8, 8), (8, 16), (16, 24), (24, 24), (48, 96)])
def test_bottleneck_conv_weights_follow_eq5(c_in, c_out):
    assert conv_weights(LWBottleneck(c_in, c_out)) == (33 + 8 * c_out) * c_in


def test_bottleneck_has_the_papers_eight_depthwise_kernels():
    block = LWBottleneck(16, 24, stride=2)
    convs = [next(m for m in branch.modules() if isinstance(m, nn.Conv2d)) for branch in block.branches]
    assert [tuple(c.kernel_size) for c in convs] == list(LW_KERNELS)
    assert {(5, 1), (1, 5), (3, 1), (1, 3), (2, 1), (1, 2), (2, 2), (3, 3)} == set(LW_KERNELS)
    for conv in convs:
        assert conv.groups == 16 and conv.in_channels == conv.out_channels == 16
        assert conv.stride == (2, 2)
        assert conv.bias is None
    for branch in block.branches:
        assert isinstance(branch[-2], nn.BatchNorm2d) and isinstance(branch[-1], nn.ReLU6)
    project = block.project
    assert project[0].in_channels == 8 * 16 and project[0].kernel_size == (1, 1)
    assert isinstance(project[-1], nn.BatchNorm2d)  # linear: no activation after the projection


@pytest.mark.parametrize("size", [(7, 7), (8, 8), (9, 12), (166, 166), (83, 83)])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_branch_keeps_same_size(size, stride):
    block = LWBottleneck(4, 4, stride=stride).eval()
    x = torch.randn(1, 4, *size)
    expected = tuple(-(-s // stride) for s in size)
    for branch in block.branches:
        assert tuple(branch(x).shape[-2:]) == expected
    assert tuple(block(x).shape[-2:]) == expected


def test_even_kernels_pad_after():
    conv = ConvBNAct(1, 1, (2, 2), activation=None).eval()
    conv_layer = next(m for m in conv.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        conv_layer.weight.fill_(1.0)
    x = torch.ones(1, 1, 4, 4)
    out = conv_layer(conv[0](x))  # padding then convolution, without BN
    assert out[0, 0, 0, 0] == 4  # a full 2x2 window at the top-left: nothing padded before
    assert out[0, 0, -1, -1] == 1  # bottom-right window: one real pixel, three padded after
    assert out[0, 0, 0, -1] == 2 and out[0, 0, -1, 0] == 2


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
    strided = {n for n, b in lw_blocks.items() if b.branches[0][-3].stride == (2, 2)}
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
