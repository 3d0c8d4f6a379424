"""Inference rewrites: the rewritten graph computes the trained model's function."""

from __future__ import annotations

import pytest
import torch

from lwcnn.export.rewrites import LARGE_INPUT_PIXELS, KernelMajorPyramid, for_inference
from lwcnn.models import create_model
from lwcnn.models.lw import LWBottleneck, LWDepthwisePyramid


def trained_like(name: str, task: str, channels: int = 3):
    """A model with non-trivial BN statistics and affine parameters, so that folding is exercised."""
    torch.manual_seed(0)
    model = create_model(name, task=task, num_classes=5 if task == "cls" else 2, in_channels=channels)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        model.train()(torch.randn(4, channels, 96, 96) * 2 + 0.3)
    return model.eval()


@pytest.mark.parametrize("name", ["lw@0.35", "lw@0.75"])
@pytest.mark.parametrize("task", ["cls", "seg"])
def test_rewritten_model_gives_the_same_outputs(name, task):
    model = trained_like(name, task)
    rewritten = for_inference(model)
    assert all(
        isinstance(b.pyramid, KernelMajorPyramid) for b in rewritten.modules() if isinstance(b, LWBottleneck)
    )
    assert all(
        isinstance(b.pyramid, LWDepthwisePyramid) for b in model.modules() if isinstance(b, LWBottleneck)
    )
    for shape in ((1, 3, 64, 64), (2, 3, 75, 101)):
        x = torch.randn(*shape)
        with torch.no_grad():
            expected, got = model(x), rewritten(x)
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


def test_large_inputs_keep_the_grouped_convolution():
    model = trained_like("lw@0.35", "seg", channels=1)
    rewritten = for_inference(model, (512, 512))
    kinds = [type(b.pyramid) for b in rewritten.modules() if isinstance(b, LWBottleneck)]
    # the first LW block sees 256x256 > LARGE_INPUT_PIXELS; all later ones at most 128x128
    assert 256 * 256 > LARGE_INPUT_PIXELS >= 128 * 128
    assert kinds[0] is LWDepthwisePyramid and set(kinds[1:]) == {KernelMajorPyramid}
    x = torch.randn(1, 1, 96, 128)
    with torch.no_grad():
        assert torch.allclose(rewritten(x), model(x), atol=1e-5)
    small = for_inference(model, (200, 200))
    assert all(
        isinstance(b.pyramid, KernelMajorPyramid) for b in small.modules() if isinstance(b, LWBottleneck)
    )
