"""``--backend auto``: which engines and precisions it may choose between (a reduced precision only
with a card check that agreed with fp32), the fastest measured beyond a noise margin, the cache, and
the threshold calibrated for the precision it runs in. OpenVINO itself never loads in this process
(test_openvino_engine.py says why): its end-to-end check runs in a child (openvino_checks.py)."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest

from lwcnn.card import check_card
from lwcnn.errors import ModelError
from lwcnn.evaluation.precision import compare_decisions
from lwcnn.runtime import Inspector, engine_choice
from lwcnn.runtime.engine_choice import EngineChoice, candidates, choose, fastest

CARD = {
    "task": "seg",
    "model": {"name": "lw@0.35", "num_classes": 2},
    "classes": ["background", "defect"],
    "preprocessing": {"channels": 1, "size": [64, 64], "mean": [0.5], "std": [0.25]},
    "threshold": 0.4,
}


def with_check(**check) -> dict:
    return {**CARD, "precisions": {"bf16": {"n": 48, "split": "val", **check}}}


@pytest.fixture
def openvino_with_bf16(monkeypatch):
    """This process as one where OpenVINO is installed, torch is not loaded and the CPU has bf16
    (nothing of OpenVINO is imported)."""
    from lwcnn.runtime import openvino_engine

    monkeypatch.setattr(openvino_engine, "openvino_available", lambda: True)
    monkeypatch.setattr(openvino_engine, "cpu_precisions", lambda: ["fp32", "bf16"])
    monkeypatch.delitem(sys.modules, "torch", raising=False)


def test_bf16_is_a_candidate_only_where_its_check_agreed_with_fp32(openvino_with_bf16):
    unchecked, notes = candidates(check_card(CARD, "card"), "fp32")
    assert unchecked == [("onnxruntime", "fp32"), ("openvino", "fp32")]
    assert "bf16 was never checked against fp32 (lwcnn calibrate --precision bf16)" in notes[0]
    differed, notes = candidates(check_card(with_check(agree=False, differ=["a.png", "b.png"]), "c"), "fp32")
    assert ("openvino", "bf16") not in differed and "changed 2 of 48 decisions" in notes[0]
    agreed, notes = candidates(check_card(with_check(agree=True, threshold=0.41), "card"), "fp32")
    assert agreed[-1] == ("openvino", "bf16") and not notes


def test_a_constructed_disagreement_keeps_auto_off_the_precision(openvino_with_bf16):
    # bf16 moves one image's score across the threshold: its check disagrees, and auto refuses bf16
    names = ["a.png", "b.png", "c.png"]
    record = compare_decisions(names, [0.10, 0.52, 0.90], [0.10, 0.49, 0.90], "seg", (0.5, 0.5))
    assert record["agree"] is False and record["differ"] == ["b.png"] and record["differ_count"] == 1
    assert record["max_score_difference"] == pytest.approx(0.03)
    found, notes = candidates(check_card({**CARD, "precisions": {"bf16": record}}, "card"), "fp32")
    assert ("openvino", "bf16") not in found and "changed 1 of 3 decisions" in notes[0]
    # at a threshold calibrated in bf16 the same scores decide alike, and the check agrees
    agreeing = compare_decisions(names, [0.10, 0.52, 0.90], [0.10, 0.49, 0.90], "seg", (0.5, 0.45))
    assert agreeing["agree"] and agreeing["threshold"] == 0.45
    classes = compare_decisions(names, [0, 1, 2], [0, 2, 2], "cls")
    assert classes["differ"] == ["b.png"] and "threshold" not in classes


def test_openvino_is_left_out_where_it_is_missing_or_torch_is_loaded(monkeypatch):
    from lwcnn.runtime import openvino_engine

    card = check_card(with_check(agree=True), "card")
    monkeypatch.setattr(openvino_engine, "openvino_available", lambda: False)
    assert candidates(card, "fp32") == ([("onnxruntime", "fp32")], [
        "openvino is not installed (pip install 'lwcnn[openvino]')"])  # fmt: skip
    monkeypatch.setattr(openvino_engine, "openvino_available", lambda: True)
    assert "torch" in sys.modules  # this test process trains with torch
    found, notes = candidates(card, "fp32")
    assert found == [("onnxruntime", "fp32")] and "torch loaded" in notes[0]


def test_another_engine_must_beat_onnx_runtime_by_the_margin():
    base = ("onnxruntime", "fp32")
    assert fastest({base: 10.0, ("openvino", "fp32"): 9.0}) == ("openvino", "fp32")
    assert fastest({base: 10.0, ("openvino", "fp32"): 9.7}) == base  # within noise: stay
    assert fastest({base: 10.0, ("openvino", "fp32"): 12.0, ("openvino", "bf16"): 6.0}) == (
        "openvino",
        "bf16",
    )


class Sleeper:
    """A backend that takes ``ms`` per run."""

    def __init__(self, name: str, precision: str, ms: float) -> None:
        self.name, self.precision, self.ms = name, precision, ms

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        assert batch.shape == (1, 1, 64, 64)  # the model's working size, padded to its stride
        time.sleep(self.ms / 1000.0)
        return {"logits": np.zeros((1, 2, 64, 64), np.float32)}


def test_the_fastest_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch, openvino_with_bf16):
    monkeypatch.setenv("LWCNN_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes")
    speeds = {("onnxruntime", "fp32"): 8.0, ("openvino", "fp32"): 6.0, ("openvino", "bf16"): 2.0}
    opened: list[tuple[str, str]] = []

    def open_candidate(engine: str, precision: str) -> Sleeper:
        opened.append((engine, precision))
        return Sleeper(engine, precision, speeds[(engine, precision)])

    card = check_card(with_check(agree=True), "card")
    choice, backend = choose(card, model, "fp32", 1, open_candidate)
    assert (choice.engine, choice.precision, backend.precision) == ("openvino", "bf16", "bf16")
    assert not choice.cached and set(choice.timings) == {"onnxruntime fp32", "openvino fp32", "openvino bf16"}
    assert (
        choice.timings["openvino bf16"] < choice.timings["openvino fp32"] < choice.timings["onnxruntime fp32"]
    )
    assert "fastest measured here (openvino bf16" in choice.reason
    opened.clear()
    again, _ = choose(card, model, "fp32", 1, open_candidate)
    assert again.cached and (again.engine, again.precision) == ("openvino", "bf16") and opened == [
        ("openvino", "bf16")]  # fmt: skip
    # another thread or worker count is another measurement (two workers: two callers at once)
    choose(card, model, "fp32", 2, open_candidate)
    assert len(opened) == 4
    pooled, _ = choose(card, model, "fp32", 1, open_candidate, workers=2)
    assert not pooled.cached and len(opened) == 7 and pooled.timings["onnxruntime fp32"] < 8.0
    saved = json.loads((tmp_path / "cache" / "engine-choices.json").read_text())
    assert len(saved) == 3 and all(entry["measured"] for entry in saved.values())


def test_a_cache_that_cannot_be_written_only_means_measuring_again(tmp_path, monkeypatch, openvino_with_bf16):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("LWCNN_CACHE_DIR", str(blocked / "cache"))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    card = check_card(CARD, "card")
    for _ in range(2):
        choice, _ = choose(
            card, model, "fp32", 1, lambda e, p: Sleeper(e, p, 1.0 if e == "openvino" else 3.0)
        )
        assert (choice.engine, choice.cached) == ("openvino", False)


def test_a_cards_bad_precision_check_is_a_one_line_error():
    with pytest.raises(ModelError, match="'precisions' must map bf16 or int8 to a check"):
        check_card({**CARD, "precisions": {"fp8": {}}}, "m.json")
    with pytest.raises(ModelError, match=r"'precisions.bf16.threshold' must be in \(0, 1\)"):
        check_card({**CARD, "precisions": {"bf16": {"threshold": 2}}}, "m.json")


class Fixed:
    """A backend in ``precision`` whose card is ``card``."""

    name = "fake"

    def __init__(self, card: dict, precision: str) -> None:
        self.card, self.metadata, self.precision = check_card(card, "fake"), card, precision

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return {"logits": np.zeros((len(batch), 2, *batch.shape[2:]), np.float32)}


def test_a_segmenter_decides_at_the_threshold_calibrated_for_its_precision():
    card = with_check(agree=True, threshold=0.37)
    assert Inspector(backend=Fixed(card, "bf16")).threshold == 0.37
    assert Inspector(backend=Fixed(card, "fp32")).threshold == 0.4
    assert Inspector(backend=Fixed(with_check(agree=True), "bf16")).threshold == 0.4  # none of its own
    assert Inspector(backend=Fixed(card, "bf16"), threshold=0.6).threshold == 0.6  # asked for


def test_auto_reports_what_it_chose_and_the_api_default_stays_onnx_runtime(segmenter_onnx):
    path, _ = segmenter_onnx
    assert Inspector(path).engine == "onnxruntime fp32" and Inspector(path).engine_choice is None
    auto = Inspector(path, backend="auto")  # torch is loaded here: ONNX Runtime, and auto says why
    assert isinstance(auto.engine_choice, EngineChoice) and auto.engine == "onnxruntime fp32"
    assert "torch loaded" in auto.engine_choice.reason or "not installed" in auto.engine_choice.reason
    assert auto.engine_choice.to_dict()["engine"] == "onnxruntime"
    with pytest.raises(Exception, match="auto chooses its own"):
        Inspector(path, backend="auto", precision="bf16")


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LWCNN_CACHE_DIR", str(tmp_path / "x"))
    assert engine_choice.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("LWCNN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert engine_choice.cache_dir() == tmp_path / "xdg" / "lwcnn"


def test_auto_times_the_runs_own_images_where_it_has_four(tmp_path, monkeypatch):
    from lwcnn.runtime.engine import _file_to_verdict_rounds

    seen: list[list] = []
    monkeypatch.setattr(
        Inspector, "inspect_paths", lambda self, paths, keep_pixels=False: seen.append(paths) or []
    )
    card = check_card(CARD, "card")
    own = [tmp_path / f"part{i}.png" for i in range(5)]
    run_round, images = _file_to_verdict_rounds(card, tmp_path / "gen", 1, own)(Fixed(CARD, "fp32"))
    run_round()
    assert images == 5 and seen[-1] == own and not (tmp_path / "gen").exists()
    _file_to_verdict_rounds(card, tmp_path / "gen", 2, own[:2])(Fixed(CARD, "fp32"))[0]()
    generated = sorted((tmp_path / "gen").iterdir())
    assert seen[-1] == generated and len(generated) >= 8  # four a worker at least
