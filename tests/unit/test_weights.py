from __future__ import annotations

import pytest

from lwcnn.weights import bundled_models, resolve_weights


def test_bundled_names_resolve_to_their_metadata():
    for name in bundled_models():
        path = resolve_weights(name)
        assert path.name == f"{name}.json" and path.with_suffix(".safetensors").is_file()


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
