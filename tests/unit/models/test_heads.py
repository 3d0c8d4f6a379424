"""The segmentation decoder's fusion step computes Figure 3's upsample-concatenate-convolve."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lwcnn.models.heads import UpsampleFuse


def test_upsample_fuse_equals_convolution_over_the_concatenation():
    torch.manual_seed(0)
    fuse = UpsampleFuse(context_channels=24, shortcut_channels=8, out_channels=16)
    with torch.no_grad():
        fuse.train()(torch.randn(2, 24, 5, 7), torch.randn(2, 8, 19, 27))  # non-trivial BN statistics
    fuse.eval()
    context, shortcut = torch.randn(1, 24, 5, 7), torch.randn(1, 8, 19, 27)  # odd, non-square sizes
    with torch.no_grad():
        upsampled = F.interpolate(context, size=(19, 27), mode="bilinear", align_corners=False)
        expected = torch.nn.Sequential(*fuse)(torch.cat([upsampled, shortcut], dim=1))  # the plain order
        got = fuse(context, shortcut)
    assert got.shape == (1, 16, 19, 27)
    assert torch.allclose(got, expected, atol=1e-5)
    assert sorted(fuse.state_dict()) == sorted(torch.nn.Sequential(*fuse).state_dict())
