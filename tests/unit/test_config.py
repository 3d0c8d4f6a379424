from __future__ import annotations

from pathlib import Path

import pytest

from lwcnn.config import CLASSIFICATION_DEFAULTS, ConfigError, dump_config, load_config


def test_defaults_are_the_papers_recipe():
    config = load_config(None)
    train = config["train"]
    assert (train["optimizer"], train["lr"], train["lr_decay"], train["lr_decay_steps"]) == (
        "adam",
        1e-4,
        0.9,
        10000,
    )
    assert (train["l2"], train["bn_decay"], train["bn_eps"]) == (1e-4, 0.9997, 1e-5)
    assert config == load_config(None) and config is not CLASSIFICATION_DEFAULTS


def test_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: lw@0.75}\ntrain: {epochs: 3}\ndata: {split: {train: 5, test: 5}}\n")
    config = load_config(
        path, ["train.epochs=7", "data.input_size=[64, 96]", "data.root=/x y", "train.init_from="]
    )
    assert config["model"]["name"] == "lw@0.75"
    assert config["train"]["epochs"] == 7 and config["train"]["batch_size"] == 64
    assert config["data"]["input_size"] == [64, 96] and config["data"]["root"] == "/x y"
    assert config["data"]["split"] == {"train": 5, "test": 5}  # a split is replaced whole
    assert config["train"]["init_from"] is None
    assert load_config(_round_trip(tmp_path, config)) == config


def _round_trip(tmp_path, config):
    path = tmp_path / "dumped.yaml"
    path.write_text(dump_config(config))
    return path


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("train: {epocs: 3}\n", [], "unknown config key 'train.epocs'"),
        ("", ["modle.name=lw"], "unknown config key 'modle'"),
        ("", ["train.epochs"], "must look like key=value"),
        ("train: [1, 2\n", [], "not valid YAML"),
        ("- a\n- b\n", [], "must be a mapping"),
        ("train: 5\n", [], "train must be a mapping"),
        ("", ["data.split=0.5"], "data.split must be a mapping of parts"),
    ],
)
def test_bad_configs_are_one_line_errors_naming_the_source(tmp_path, text, overrides, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, overrides)
    assert "\n" not in str(caught.value)


def test_numbers_in_exponent_notation_are_numbers_in_files_and_overrides(tmp_path):
    # PyYAML alone reads 1e-3 as the string '1e-3' (YAML 1.1 wants 1.0e-3)
    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: 1e-3, l2: 5E-5}\n")
    config = load_config(path, ["train.bn_eps=1e-4", "train.ema=9.9e-1"])
    assert (config["train"]["lr"], config["train"]["l2"]) == (0.001, 5e-5)
    assert (config["train"]["bn_eps"], config["train"]["ema"]) == (1e-4, 0.99)
    assert load_config(None, ["data.root=run1e3"])["data"]["root"] == "run1e3"


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_every_committed_config_loads_with_its_task_defaults(path):
    config = load_config(path)
    assert config["task"] in ("cls", "seg", "pretrain")
    if config["task"] == "pretrain":
        assert config["pretext"]["objective"] == "defects" and "augment" not in config
    elif config["task"] == "seg":
        assert {"gradual", "decision"} <= set(config) and "crop" in config["data"]
    else:
        assert "per_class" in config["augment"] and "gradual" not in config


def test_one_split_entry_can_be_overridden_alone():
    path = Path(__file__).resolve().parents[2] / "configs" / "kolektorsdd.yaml"
    config = load_config(path, ["data.split.test_fold=2"])
    assert config["data"]["split"]["test_fold"] == 2 and config["data"]["split"]["val"] == 0.2
    with pytest.raises(ConfigError, match="unknown config key 'gradual'"):
        load_config(None, ["gradual.enabled=false"])  # a classification config has no gradual training


def test_a_classifier_pooling_is_a_choice_of_the_heads(tmp_path):
    from lwcnn.config import CHOICES
    from lwcnn.models.heads import POOLS

    assert CHOICES["model.pool"] == POOLS  # the config (torch-free) offers what the head builds
    path = tmp_path / "c.yaml"
    path.write_text("task: cls\nmodel: {name: lw@0.35, init: scratch}\n")  # a run's config before the key
    assert load_config(path, ["model.pool=avgmax"])["model"]["pool"] == "avgmax"
    with pytest.raises(ConfigError, match=r"model\.pool must be one of avg, avgmax"):
        load_config(path, ["model.pool=max"])
