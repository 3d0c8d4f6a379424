"""Inference rewrites: the rewritten graph computes the trained model's function, in the layout
ONNX Runtime runs fast."""

from __future__ import annotations

import pytest
import torch

from lwcnn.export.rewrites import NCHWC_BLOCK, LWInferenceBackbone, LWInferenceBlock, for_inference
from lwcnn.models import create_model
from lwcnn.models.lw import LWBottleneck


def trained_like(name: str, task: str, channels: int = 3, **kwargs):
    """A model with non-trivial BN statistics and affine parameters, so that folding is exercised."""
    torch.manual_seed(0)
    classes = 5 if task == "cls" else 2
    model = create_model(name, task=task, num_classes=classes, in_channels=channels, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
        model.train()(torch.randn(4, channels, 96, 96) * 2 + 0.3)
    return model.eval()


def assert_same_function(model, rewritten, channels: int = 3) -> None:
    for shape in ((1, channels, 64, 64), (2, channels, 75, 101)):
        x = torch.randn(*shape)
        with torch.no_grad():
            expected, got = model(x), rewritten(x)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * float(expected.abs().max()))


@pytest.mark.parametrize("name", ["lw@0.35", "lw@0.5", "lw@0.75", "lw@1.0"])
@pytest.mark.parametrize("task", ["cls", "seg"])
def test_rewritten_model_gives_the_same_outputs(name, task):
    model = trained_like(name, task)
    rewritten = for_inference(model)
    assert isinstance(rewritten.backbone, LWInferenceBackbone)
    assert not any(isinstance(m, LWBottleneck) for m in rewritten.modules())
    assert sum(isinstance(m, LWBottleneck) for m in model.modules()) == 9  # the original is untouched
    assert_same_function(model, rewritten)


def test_a_doubled_shortcut_feeds_the_decoder_one_copy():
    # lw@0.35's stride-4 shortcut (block 4) has 8 channels: doubled inside the backbone
    model = trained_like("lw@0.35", "seg", channels=1, shortcut_stride=4)
    rewritten = for_inference(model)
    assert_same_function(model, rewritten, channels=1)


def lw_block_widths(model, channels: int) -> list[tuple[int, int]]:
    """(input channels, concatenated pyramid channels) of every LW block in a forward pass."""
    widths = []

    def record(module, args, output):
        widths.append((args[0].shape[1], module.project[0].in_channels))

    blocks = [m for m in model.modules() if isinstance(m, LWInferenceBlock)]
    handles = [b.register_forward_hook(record) for b in blocks]
    with torch.no_grad():
        model(torch.randn(1, channels, 64, 64))
    for handle in handles:
        handle.remove()
    return widths


def test_every_lw_map_fills_whole_channel_blocks():
    # lw@0.35 has LW blocks of 8 and 24 channels; ONNX Runtime's blocked layout takes 16 at a time
    model = trained_like("lw@0.35", "cls")
    widths = lw_block_widths(for_inference(model), 3)
    assert len(widths) == 9
    assert all(w % NCHWC_BLOCK == 0 for pair in widths for w in pair), widths
    # with 8-channel blocks (AVX2) nothing needs doubling: inputs keep the trained widths
    narrow = lw_block_widths(for_inference(model, block=8), 3)
    trained = [b.pyramid.channels for b in model.modules() if isinstance(b, LWBottleneck)]
    assert [w for w, _ in narrow] == trained
    assert_same_function(model, for_inference(model, block=8))


def test_models_without_an_lw_backbone_are_unchanged():
    model = trained_like("mobilenetv2@0.35", "seg")
    rewritten = for_inference(model)
    assert type(rewritten.backbone) is type(model.backbone)
    assert_same_function(model, rewritten)
