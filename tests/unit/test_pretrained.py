"""``model.init``: the bundled pretrained backbones load into their family, width and channels, a
mismatched one is refused in one line, channels convert exactly, and fine-tuning starts from them."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lwcnn.config import load_config
from lwcnn.errors import MissingError, ModelError
from lwcnn.models import create_model
from lwcnn.pretrained import (
    backbone_name,
    bundled_backbone,
    initialise,
    read_backbone,
    save_backbone,
    with_channels,
)
from lwcnn.training.classification import train_classifier
from lwcnn.training.loop import parameter_groups
from lwcnn.training.schedule import scaled_schedule
from lwcnn.weights import BACKBONES_DIR, bundled_backbones
from tests.synthetic import make_class_folders

#: The backbones the package must ship (issue 19): lw@0.35 and lw@0.75, gray and colour.
SHIPPED = [("lw", 0.35, 1), ("lw", 0.35, 3), ("lw", 0.75, 1), ("lw", 0.75, 3)]


def test_the_four_backbones_are_bundled_and_small():
    assert sorted(bundled_backbones()) == sorted(backbone_name(*shipped) for shipped in SHIPPED)
    for name in bundled_backbones():
        assert (BACKBONES_DIR / f"{name}.safetensors").stat().st_size < 600_000, name


@pytest.mark.parametrize(("family", "width", "channels"), SHIPPED, ids=lambda v: str(v))
def test_each_bundled_backbone_is_what_model_init_pretrained_loads(family, width, channels):
    path = bundled_backbone(family, width, channels)
    assert path is not None
    state, card = read_backbone(path)
    assert card["model"]["family"] == family and card["model"]["width"] == width
    assert card["in_channels"] == channels and card["pretraining"]["steps"] > 0
    for task in ("cls", "seg"):
        model = create_model(f"{family}@{width}", task=task, num_classes=4, in_channels=channels)
        fresh = {k: v.clone() for k, v in model.backbone.state_dict().items()}
        record = initialise(model, "pretrained")
        assert record["kind"] == "pretrained" and record["backbone"] == path.stem
        assert record["sha256"] == card["sha256"]
        loaded = model.backbone.state_dict()
        for key, tensor in state.items():
            torch.testing.assert_close(loaded[key], tensor)
        assert any(not torch.equal(fresh[k], loaded[k]) for k in state), "the weights must change"


def test_a_backbone_of_another_width_or_family_is_refused_in_one_line(tmp_path):
    source = create_model("lw@0.35", task="cls", num_classes=2, in_channels=1)
    card = {"model": {"name": "lw@0.35", "family": "lw", "width": 0.35}, "in_channels": 1}
    path = save_backbone(tmp_path / "small", source.backbone, card)
    for other in ("lw@0.75", "mobilenetv2@0.35"):
        model = create_model(other, task="cls", num_classes=2, in_channels=1)
        with pytest.raises(
            ModelError, match=r"small\.json: a backbone of lw@0\.35, cannot initialise a"
        ) as error:
            initialise(model, str(path))
        assert "\n" not in str(error.value)
    with pytest.raises(MissingError, match="no such path"):
        initialise(create_model("lw@0.35", task="cls", num_classes=2), str(tmp_path / "nowhere.json"))


@pytest.mark.parametrize("given", ["lw-0.35-mine", "lw-0.35-mine.json", "lw-0.35-mine.safetensors"])
def test_a_backbone_file_is_found_by_its_base_name_even_with_dots_in_it(tmp_path, given):
    source = create_model("lw@0.35", task="cls", num_classes=2, in_channels=1)
    card = {"model": {"name": "lw@0.35", "family": "lw", "width": 0.35}, "in_channels": 1}
    written = save_backbone(tmp_path / "lw-0.35-mine", source.backbone, card)
    assert written.name == "lw-0.35-mine.json" and (tmp_path / "lw-0.35-mine.safetensors").is_file()
    model = create_model("lw@0.35", task="cls", num_classes=2, in_channels=1)
    record = initialise(model, str(tmp_path / given))
    assert record["kind"] == "backbone" and record["backbone"] == "lw-0.35-mine"
    for key, tensor in source.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], tensor)


def test_three_channels_become_one_exactly_for_a_gray_image(tmp_path):
    torch.manual_seed(0)
    colour = create_model("lw@0.35", task="cls", num_classes=2, in_channels=3)
    with torch.no_grad():
        colour.train()(torch.randn(4, 3, 64, 64))  # BN statistics that are not the initial ones
    card = {"model": {"name": "lw@0.35", "family": "lw", "width": 0.35}, "in_channels": 3}
    path = save_backbone(tmp_path / "rgb", colour.backbone, card)
    gray = create_model("lw@0.35", task="cls", num_classes=2, in_channels=1)
    initialise(gray, str(path))
    image = torch.rand(2, 1, 64, 64)
    colour.eval(), gray.eval()
    with torch.no_grad():
        torch.testing.assert_close(gray.backbone(image)[-1], colour.backbone(image.repeat(1, 3, 1, 1))[-1])
    back = with_channels(with_channels(colour.backbone.state_dict(), 3, 1), 1, 3)
    assert back["blocks.0.0.weight"].shape[1] == 3


def test_pretrained_without_a_bundled_backbone_trains_from_scratch_and_says_why():
    model = create_model("mobilenetv2@0.35", task="cls", num_classes=2, in_channels=1)
    record = initialise(model, "pretrained")
    assert record["kind"] == "scratch" and "mobilenetv2@0.35" in record["reason"]
    assert initialise(model, "scratch") == {"kind": "scratch"}


@pytest.fixture(scope="module")
def patterns(tmp_path_factory):
    return make_class_folders(tmp_path_factory.mktemp("patterns"), per_class=10)


def _tiny(data, out, *extra):
    return load_config(None, [
        "data.input_size=[32,32]", "data.layout=folders", "data.split={train: 6, val: 2, test: 2}",
        "train.batch_size=6", "train.workers=0", "train.threads=1", "train.epochs=1",
        f"data.root={data}", f"out={out}", *extra,
    ])  # fmt: skip


def test_fine_tuning_from_the_pretrained_backbone_changes_the_starting_loss(patterns, tmp_path):
    """lr 0: the epoch's loss is the starting model's (only BN statistics move)."""
    losses = {}
    for init in ("scratch", "pretrained"):
        out = tmp_path / init
        train_classifier(_tiny(patterns, out, f"model.init={init}", "train.lr=0"), show_progress=False)
        losses[init] = float((out / "metrics.csv").read_text().splitlines()[1].split(",")[3])
        card = json.loads((out / "best.json").read_text())
        assert card["init"]["kind"] == init
    assert card["init"]["backbone"] == "lw-0.35-c1" and card["init"]["sha256"]
    assert abs(losses["scratch"] - losses["pretrained"]) > 1e-3


def test_a_pretrained_backbone_learns_at_its_own_rate_and_a_warm_up_starts_slow():
    model = create_model("lw@0.35", task="seg", in_channels=1)
    model.init = initialise(model, "pretrained")
    groups = parameter_groups(model, {"backbone_lr": 0.25})
    assert [g["lr_scale"] for g in groups] == [0.25, 1.0]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.backbone.parameters()}
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    scratch = create_model("lw@0.35", task="seg", in_channels=1)
    scratch.init = {"kind": "scratch"}
    assert [g["lr_scale"] for g in parameter_groups(scratch, {"backbone_lr": 0.25})] == [1.0]
    train = load_config(None, ["train.warmup=0.1"])["train"]
    schedule = scaled_schedule(train, 1000)
    assert schedule.warmup_steps == 100
    assert schedule.lr_at(0) == pytest.approx(train["lr"] / 100)
    assert schedule.lr_at(99) == pytest.approx(train["lr"] * train["lr_decay"] ** (99 / schedule.decay_every))
    assert isinstance(model, nn.Module)
