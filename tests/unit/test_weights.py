from __future__ import annotations

import json

import pytest

from lwcnn.runtime import Inspector
from lwcnn.weights import BUNDLED_DIR, bundled_models, resolve_weights


def test_bundled_names_resolve_to_their_metadata():
    for name in bundled_models():
        path = resolve_weights(name)
        assert path.name == f"{name}.json" and path.with_suffix(".safetensors").is_file()


@pytest.mark.parametrize("name", bundled_models())
def test_bundled_models_may_run_in_bf16_where_the_cpu_has_it(name):
    """Each card (the JSON and the ONNX file's copy alike) holds a bf16 check that decided every
    validation image as fp32 (a segmenter at its own bf16 threshold), so --backend auto may time bf16
    on a CPU with AVX-512 BF16 or AMX."""
    meta = json.loads((BUNDLED_DIR / f"{name}.json").read_text())
    card = Inspector(name, threads=1).card
    check = meta["precisions"]["bf16"]
    assert card.precisions == meta["precisions"] and card.precision_verdict("bf16")[0]
    assert check["split"] == "val" and check["differ_count"] == 0
    assert ("threshold" in check) == (card.task == "seg")


def test_files_and_run_folders_resolve(tmp_path):
    (tmp_path / "best.json").write_text("{}")
    (tmp_path / "best.safetensors").write_bytes(b"")
    assert resolve_weights(tmp_path) == tmp_path / "best.json"
    assert resolve_weights(tmp_path / "best.safetensors") == tmp_path / "best.json"
    assert resolve_weights(tmp_path / "best") == tmp_path / "best.json"


def test_a_base_name_with_dots_is_a_name_not_a_suffix(tmp_path):
    # lw-0.35-line given bare: with_suffix would have looked for lw-0.json and missed the model.
    (tmp_path / "lw-0.35-line.json").write_text("{}")
    (tmp_path / "lw-0.35-line.safetensors").write_bytes(b"")
    assert resolve_weights(tmp_path / "lw-0.35-line") == tmp_path / "lw-0.35-line.json"
    assert resolve_weights(tmp_path / "lw-0.35-line.safetensors") == tmp_path / "lw-0.35-line.json"


def test_missing_weights_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no trained model there"):
        resolve_weights(tmp_path / "nothing")
    (tmp_path / "m.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="weights file missing"):
        resolve_weights(tmp_path / "m.json")
