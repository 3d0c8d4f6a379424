"""Behaviour every model of the factory must have, for both heads."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lwcnn.data.preprocessing import NETWORK_STRIDE
from lwcnn.models import create_model, list_models, upsample_logits
from lwcnn.models.lw import LWBottleneck
from lwcnn.models.mobilenetv2 import InvertedResidual

MODELS = list_models()
TASKS = ("cls", "seg")


def build(name: str, task: str, in_channels: int = 3) -> nn.Module:
    return create_model(name, task=task, num_classes=5 if task == "cls" else 2, in_channels=in_channels)


def test_factory_lists_the_papers_models():
    assert set(MODELS) >= {
        "lw@0.35",
        "lw@0.75",
        "mobilenetv2@0.35",
        "mobilenetv2@1.4",
        "shufflenet@0.25",
        "resnetv2-50",
    }


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [(331, 331), (200, 200), (488, 512), (500, 1250)])
def test_output_shapes_for_odd_and_non_square_inputs(name, size):
    x = torch.randn(1, 1, *size)
    with torch.no_grad():
        logits = build(name, "cls", in_channels=1).eval()(x)
        masks = build(name, "seg", in_channels=1).eval()(x)
    assert logits.shape == (1, 5)
    assert masks.shape == (1, 2, math.ceil(size[0] / 8), math.ceil(size[1] / 8))
    assert upsample_logits(masks, size).shape == (1, 2, *size)


@pytest.mark.parametrize("name", ["lw@0.35", "lw@0.75", "mobilenetv2@0.35"])
def test_segmenter_output_stride(name):
    x = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        assert build(name, "seg").eval()(x).shape == (1, 2, 64, 64)
        block4 = create_model(name, task="seg", shortcut_stride=4).eval()
        assert block4(x).shape == (1, 2, 128, 128)


def test_segmenter_rejects_a_shortcut_the_backbone_lacks():
    with pytest.raises(ValueError, match="shortcut_stride"):
        create_model("lw@0.35", task="seg", shortcut_stride=16)


@pytest.mark.parametrize("name", MODELS)
def test_the_stride_inputs_are_padded_to_is_every_backbones_total_stride(name):
    """The engine (no torch) pads images to multiples of NETWORK_STRIDE; a backbone with another
    total stride would bring back the edge artefacts the padding exists to prevent."""
    backbone = build(name, "seg").backbone
    assert backbone.feature_strides[-1] == NETWORK_STRIDE
    with torch.no_grad():
        final = backbone.eval()(torch.randn(1, 3, 2 * NETWORK_STRIDE, 3 * NETWORK_STRIDE))[-1]
    assert final.shape[-2:] == (2, 3)


@pytest.mark.parametrize("name", MODELS)
def test_residuals_exactly_where_shapes_match(name):
    model = build(name, "seg").eval()
    seen: list[tuple[bool, bool]] = []

    def record(module, inputs, output):
        seen.append((module.use_residual, inputs[0].shape == output.shape))

    blocks = [m for m in model.modules() if isinstance(m, (LWBottleneck, InvertedResidual))]
    for block in blocks:
        block.register_forward_hook(record)
    with torch.no_grad():
        model(torch.randn(1, 3, 96, 96))
    assert len(seen) == len(blocks)
    assert all(uses == shapes_match for uses, shapes_match in seen)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("task", TASKS)
def test_gradients_reach_every_parameter(name, task):
    torch.manual_seed(0)
    model = build(name, task).train()
    x = torch.randn(2, 3, 96, 96)
    out = model(x)
    if task == "cls":
        loss = F.cross_entropy(out, torch.tensor([0, 3]))
    else:
        target = torch.randint(0, 2, (2, *out.shape[-2:]))
        loss = F.cross_entropy(out, target)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("task", TASKS)
def test_eval_output_same_alone_and_in_a_batch(name, task):
    torch.manual_seed(0)
    model = build(name, task)
    # Non-trivial running statistics, so that eval mode really differs from train mode.
    with torch.no_grad():
        model.train()(torch.randn(4, 3, 64, 64) * 2 + 1)
    model.eval()
    x = torch.randn(4, 3, 80, 72)
    with torch.no_grad():
        batch = model(x)
        alone = model(x[2:3])
    torch.testing.assert_close(alone[0], batch[2], rtol=1e-5, atol=1e-5)


def test_spec_records_how_to_rebuild_the_model():
    model = create_model("LW@0.75", task="seg", in_channels=1)
    assert model.spec.to_dict() == {
        "name": "lw@0.75",
        "family": "lw",
        "width": 0.75,
        "task": "seg",
        "num_classes": 2,
        "in_channels": 1,
        "shortcut_stride": 8,
        "pool": None,
    }
    classifier = create_model("lw@0.35", task="cls", num_classes=3, pool="avgmax")
    assert classifier.spec.to_dict()["pool"] == "avgmax"
    assert classifier.spec.to_dict()["shortcut_stride"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "vgg16"}, "unknown model 'vgg16'"),
        ({"name": "lw@wide"}, "bad width multiplier"),
        ({"name": "lw@0"}, "must be in"),
        ({"name": "resnetv2-50@0.5"}, "no width multiplier"),
        ({"name": "lw@0.35", "task": "det"}, "task must be"),
        ({"name": "lw@0.35", "task": "cls"}, "num_classes is required"),
        ({"name": "lw@0.35", "task": "cls", "num_classes": 1}, "at least 2"),
        ({"name": "lw@0.35", "task": "seg", "in_channels": 4}, "in_channels"),
    ],
)
def test_factory_errors_say_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model(**kwargs)


def test_default_width_is_the_papers():
    assert create_model("lw", task="seg").spec.width == 0.35
