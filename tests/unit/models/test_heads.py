"""The heads: the segmentation decoder's fusion step computes Figure 3's upsample-concatenate-
convolve; a classifier's logits are its class maps pooled, as its metadata says."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lwcnn.checkpoints import build_from_spec, load_model, save_model
from lwcnn.errors import ConfigError
from lwcnn.models import create_model
from lwcnn.models.heads import POOLS, UpsampleFuse


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


@pytest.mark.parametrize("pool", POOLS)
def test_classifier_logits_are_its_class_maps_pooled(pool):
    torch.manual_seed(0)
    model = create_model("lw@0.35", task="cls", num_classes=3, in_channels=1, pool=pool).eval()
    x = torch.randn(2, 1, 96, 80)
    with torch.no_grad():
        logits = model(x)
        pooled, maps = model.logits_and_class_maps(x)
    mean, highest = maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))
    expected = mean if pool == "avg" else 0.5 * (mean + highest)
    assert torch.allclose(logits, expected, atol=1e-5)  # training's forward and inspection's agree
    assert torch.allclose(pooled, expected, atol=1e-5)


def test_avgmax_lets_one_position_move_the_logits_more_than_the_mean():
    model = create_model("lw@0.35", task="cls", num_classes=2, in_channels=1, pool="avgmax")
    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 1, 3, 4] = 6.4  # one position of 64 says "defect"
    assert model.pool_maps(maps)[0, 1].item() == pytest.approx(0.5 * (0.1 + 6.4))


def test_pool_travels_with_the_saved_model_and_an_unknown_one_is_refused(tmp_path):
    model = create_model("lw@0.35", task="cls", num_classes=2, in_channels=1, pool="avgmax")
    card = {
        "task": "cls",
        "classes": ["good", "bad"],
        "preprocessing": {"channels": 1, "size": [64, 64], "mean": [0.5], "std": [0.25], "scale": 1.0},
    }
    path = save_model(tmp_path / "m", model, card)
    loaded, meta = load_model(path)
    assert meta["model"]["pool"] == "avgmax" and loaded.pool == "avgmax"
    meta["model"].pop("pool")  # a model saved before the key existed pools by the mean
    assert build_from_spec(meta["model"]).pool == "avg"
    with pytest.raises(ConfigError, match=r"model\.pool"):
        create_model("lw@0.35", task="cls", num_classes=2, pool="max")
