"""Trained models bundled with the package, found by name (``--weights neu``).

A trained model is two files side by side: ``NAME.safetensors`` (weights) and ``NAME.json``
(metadata: model, classes, preprocessing, split, metrics, commit). This module only finds files;
it imports neither torch nor the training code.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent


def bundled_models() -> list[str]:
    """Names of the bundled trained models."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


def resolve_weights(spec: str | Path) -> Path:
    """The metadata file (``.json``) of a trained model given as a bundled name (``neu``), a
    ``.safetensors`` or ``.json`` file, or a run folder (its ``best`` model).

    Raises ``FileNotFoundError`` with a one-line message naming what was looked for.
    """
    text = str(spec)
    if text in bundled_models():
        return BUNDLED_DIR / f"{text}.json"
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "best.json"
    elif path.suffix == ".safetensors" or (path.suffix != ".json" and path.with_suffix(".json").is_file()):
        path = path.with_suffix(".json")
    if path.suffix != ".json" or not path.is_file():
        names = ", ".join(bundled_models()) or "none"
        raise FileNotFoundError(
            f"{spec}: no trained model there (expected a run folder, NAME.safetensors beside NAME.json, "
            f"or a bundled model: {names})"
        )
    if not path.with_suffix(".safetensors").is_file():
        raise FileNotFoundError(
            f"{path.with_suffix('.safetensors')}: weights file missing beside {path.name}"
        )
    return path
