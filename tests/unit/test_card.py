"""The model card: checked in one place wherever a model is loaded (JSON beside the weights, ONNX
metadata), with one-line errors naming the file; and the same card through both carriers."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest
import torch

from lwcnn.card import ONNX_METADATA_KEY, ModelCard, card_from_json, check_card
from lwcnn.checkpoints import load_model, read_metadata, save_model
from lwcnn.cli import main
from lwcnn.errors import ModelError
from lwcnn.export import export_onnx
from lwcnn.models import create_model
from lwcnn.runtime import Inspector
from lwcnn.weights import BUNDLED_DIR

GOOD = {
    "task": "seg",
    "model": {"name": "lw@0.35", "num_classes": 2},
    "classes": ["background", "defect"],
    "preprocessing": {"channels": 1, "size": [64, 64], "mean": [0.5], "std": [0.25], "scale": 0.5},
    "threshold": 0.4,
    "min_area": 3,
}


def test_a_card_round_trips_through_safetensors_json_and_onnx_metadata(tmp_path):
    torch.manual_seed(0)
    model = create_model("lw@0.35", task="seg", in_channels=1).eval()
    # a reduced precision's check travels too: --backend auto reads it from the ONNX file
    check = {"engine": "openvino", "split": "val", "n": 9, "agree": True, "differ": [], "threshold": 0.45}
    fields = {**{k: v for k, v in GOOD.items() if k != "model"}, "precisions": {"bf16": check}}
    meta_path = save_model(tmp_path / "m", model, fields)
    on_disk = check_card(json.loads(meta_path.read_text()), str(meta_path))
    _, loaded = load_model(tmp_path / "m")
    from_checkpoint = check_card({k: v for k, v in loaded.items() if k != "_path"}, "checkpoint")
    data = export_onnx(model, tmp_path / "m.onnx", loaded)
    stored = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}[ONNX_METADATA_KEY]
    from_onnx = card_from_json(stored, "m.onnx")
    assert on_disk == from_checkpoint == from_onnx  # task, classes, preprocessing, decision
    assert from_onnx.preprocessing.scale == 0.5 and from_onnx.threshold == 0.4 and from_onnx.min_area == 3
    assert from_onnx.precisions == {"bf16": check} and from_onnx.threshold_for("bf16") == 0.45
    # the export says what the engine pads to; a card written before that field existed means 32
    assert json.loads(stored)["network_stride"] == 32 == from_onnx.network_stride == on_disk.network_stride
    assert Inspector(tmp_path / "m.onnx").preprocessing == on_disk.preprocessing
    assert check_card(on_disk.to_dict(), "again") == on_disk == ModelCard.from_dict(from_onnx.to_dict())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("preprocessing"), "lacks 'preprocessing'"),
        (lambda m: m.pop("model"), "lacks 'model'"),
        (lambda m: m["preprocessing"].pop("size"), "'preprocessing' lacks size"),
        (lambda m: m["preprocessing"].update(channels=2), "'preprocessing' is wrong"),
        (lambda m: m.update(task="detect"), "'task' must be one of cls, seg"),
        (lambda m: m.update(classes=["background"]), "lists 1 classes but the model has 2 outputs"),
        (lambda m: m.update(threshold=1.5), "'threshold' must be between 0 and 1"),
        (lambda m: m.update(min_area=0), "'min_area' must be a whole number >= 1"),
        (lambda m: m.update(classes="defect"), "'classes' must be a list of names"),
        (lambda m: m.update(network_stride=0), "'network_stride' must be a whole number >= 1"),
    ],
)
def test_a_bad_card_is_one_error_naming_the_file(change, message):
    card = json.loads(json.dumps(GOOD))
    change(card)
    with pytest.raises(ModelError, match=message.replace("(", r"\(")) as caught:
        check_card(card, "parts/model.json")
    assert str(caught.value).startswith("parts/model.json: ") and "\n" not in str(caught.value)


def test_cut_off_metadata_names_the_file():
    with pytest.raises(ModelError, match=r"^x\.onnx: model metadata is not valid JSON"):
        card_from_json('{"task": "seg", "classes": ["backgr', "x.onnx")


def _bundled_copy(tmp_path, change):
    for suffix in (".json", ".safetensors"):
        shutil.copy(BUNDLED_DIR / f"neu{suffix}", tmp_path / f"neu{suffix}")
    meta = json.loads((tmp_path / "neu.json").read_text())
    change(meta)
    (tmp_path / "neu.json").write_text(json.dumps(meta))
    return tmp_path / "neu.json"


@pytest.mark.parametrize("command", ["inspect", "export", "evaluate"])
def test_commands_refuse_a_card_without_preprocessing_in_one_line(tmp_path, capsys, command):
    path = _bundled_copy(tmp_path, lambda m: m.pop("preprocessing"))
    args = {
        "inspect": [
            "inspect",
            "samples/neu",
            "--weights",
            str(path),
            "--out",
            str(tmp_path / "o"),
            "--backend",
            "torch",
        ],
        "export": ["export", "--weights", str(path), "--out", str(tmp_path / "x.onnx")],
        "evaluate": ["evaluate", "--weights", str(path), "--data", str(tmp_path)],
    }[command]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: model metadata lacks 'preprocessing'" in err[0]
    assert not (tmp_path / "x.onnx").exists()


def test_classes_shorter_than_the_outputs_are_reported_as_a_model_problem(tmp_path, capsys):
    path = _bundled_copy(tmp_path, lambda m: m.update(classes=m["classes"][:3]))
    with pytest.raises(ModelError, match="lists 3 classes but the model has 6 outputs"):
        read_metadata(path)
    # the same card inside an ONNX file (written by hand, as a stale or edited export would be)
    model = onnx.load(str(BUNDLED_DIR / "neu.onnx"))
    for prop in model.metadata_props:
        if prop.key == ONNX_METADATA_KEY:
            meta = json.loads(prop.value)
            meta["classes"] = meta["classes"][:3]
            meta["model"].pop("num_classes")  # so only the graph's output count can tell
            prop.value = json.dumps(meta)
    onnx.save(model, str(tmp_path / "short.onnx"))
    assert (
        main(
            [
                "inspect",
                "samples/neu",
                "--weights",
                str(tmp_path / "short.onnx"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "short.onnx: model metadata lists 3 classes but the model has 6 outputs" in capsys.readouterr().err


def test_export_into_a_folder_names_the_file_after_the_weights(tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    assert main(["export", "--weights", "neu", "--out", str(folder)]) == 0
    assert (folder / "neu.onnx").is_file() and "exports/neu.onnx" in capsys.readouterr().out
