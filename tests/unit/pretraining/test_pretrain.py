"""``lwcnn pretrain`` on tiny generated images: the run folder, loadable backbones, resuming an
interrupted run to the same weights, the user's own images, and what it refuses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lwcnn.cli import main
from lwcnn.config import load_config
from lwcnn.errors import ConfigError, RunExistsError
from lwcnn.models import create_model
from lwcnn.pretrained import initialise, read_backbone
from lwcnn.pretraining import pretrain
from lwcnn.pretraining import run as pretraining_run
from tests.synthetic import write_image

TINY = [
    "data.size=32", "data.categories=4", "data.instances=1", "data.workers=0", "train.batch_size=4",
    "train.eval_every=2", "train.eval_images=8", "train.threads=1", "train.precision=fp32",
    "train.log_every=1",
]  # fmt: skip


def tiny(out: Path, *extra: str) -> dict:
    return load_config(None, ["task=pretrain", *TINY, f"out={out}", *extra])


@pytest.mark.parametrize("objective", ["defects", "classify"])
def test_a_few_steps_write_backbones_that_load_into_their_model(tmp_path, capsys, objective):
    out = tmp_path / "run"
    code = main(["pretrain", "--out", str(out), "--steps", "4", "--objective", objective, "--json", *TINY])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 4 and len(summary["backbones"]) == 2
    for name in ("config.yaml", "metrics.csv", "learning_curves.png", "resume.pt"):
        assert (out / name).is_file(), name
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2  # evaluated at steps 2 and 4
    for channels in (1, 3):
        state, card = read_backbone(out / f"backbone-c{channels}.json")
        assert card["format"] == "lwcnn-backbone/1" and card["in_channels"] == channels
        assert card["model"] == {"name": "lw@0.35", "family": "lw", "width": 0.35}
        assert card["pretraining"]["objective"] == objective and card["pretraining"]["steps"] == 4
        assert any("nothing downloaded" in source for source in card["pretraining"]["sources"])
        model = create_model("lw@0.35", task="seg", in_channels=channels)
        record = initialise(model, str(out / f"backbone-c{channels}.json"))
        assert record["kind"] == "backbone" and record["sha256"] == card["sha256"]
        for key, tensor in state.items():
            torch.testing.assert_close(model.backbone.state_dict()[key], tensor)


def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch):
    straight = pretrain(tiny(tmp_path / "straight", "train.steps=6"), show_progress=False)
    real_step = pretraining_run._step
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # after the checkpoint at step 4
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(pretraining_run, "_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny(tmp_path / "resumed", "train.steps=6"), show_progress=False)
    monkeypatch.setattr(pretraining_run, "_step", real_step)
    assert main(["pretrain", "--resume", str(tmp_path / "resumed")]) == 0
    a = load_file(straight.run_dir / "backbone-c3.safetensors")
    b = load_file(tmp_path / "resumed" / "backbone-c3.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    rows = (tmp_path / "resumed" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6"]


def test_the_user_s_own_images_join_the_stream(tmp_path):
    for i in range(4):
        write_image(tmp_path / "own" / f"{i}.jpg", size=(80, 60), mode="RGB", seed=i)
    result = pretrain(
        tiny(tmp_path / "run", "train.steps=2", f"data.images={tmp_path / 'own'}"), show_progress=False
    )
    _, card = read_backbone(result.backbones[0])
    assert any("4 images of" in source for source in card["pretraining"]["sources"])


def test_what_pretrain_refuses(tmp_path, capsys):
    pretrain(tiny(tmp_path / "run", "train.steps=2"), show_progress=False)
    with pytest.raises(RunExistsError, match="already holds a pretraining run"):
        pretrain(tiny(tmp_path / "run", "train.steps=2"), show_progress=False)
    assert main(["pretrain", "--resume", str(tmp_path / "run"), "--steps", "3"]) == 2
    assert "give no other settings" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"pretext\.objective"):
        tiny(tmp_path / "x", "pretext.objective=contrastive")
    with pytest.raises(ConfigError, match="unknown model"):
        pretrain(tiny(tmp_path / "y", "model.name=vgg16"), show_progress=False)
    assert not (tmp_path / "y").exists()


def test_a_budget_fits_the_steps_and_holds(tmp_path):
    started = time.monotonic()
    result = pretrain(
        tiny(tmp_path / "run", "train.budget=12", "train.eval_every=1000"),
        show_progress=False,
        started=started,
    )
    elapsed = time.monotonic() - started
    assert result.steps > 5 and elapsed <= 12 * 1.1
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert saved["train"]["budget"] == 0 and saved["train"]["steps"] >= result.steps


def test_lwcnn_train_refuses_a_pretraining_config(capsys):
    configs = Path(__file__).resolve().parents[3] / "configs"
    assert main(["train", "--config", str(configs / "pretrain.yaml")]) == 2
    assert "is for lwcnn pretrain" in capsys.readouterr().err
