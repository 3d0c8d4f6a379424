"""Trained models bundled with the package, found by name (``--weights neu``).

A trained model is two files side by side: ``NAME.safetensors`` (weights) and ``NAME.json``
(metadata: model, classes, preprocessing, split, metrics, commit). This module only finds files;
it imports neither torch nor the training code.
"""

from __future__ import annotations

from pathlib import Path

from lwcnn.errors import ConfigError, MissingError

BUNDLED_DIR = Path(__file__).resolve().parent
#: Pretrained backbones (``lwcnn pretrain``'s files: NAME.safetensors + NAME.json), for model.init.
BACKBONES_DIR = BUNDLED_DIR / "backbones"


def bundled_models() -> list[str]:
    """Names of the bundled trained models."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


def bundled_backbones() -> list[str]:
    """Names of the bundled pretrained backbones (``lw-0.35-c1``: family, width, input channels)."""
    return sorted(p.stem for p in BACKBONES_DIR.glob("*.json") if p.with_suffix(".safetensors").exists())


#: The two files of a trained model or backbone: weights and card.
MODEL_SUFFIXES = (".safetensors", ".json")


def files_base(path: str | Path) -> Path:
    """A model's path without ``.json``/``.safetensors``. Any other dot stays part of the name
    (``lw-0.35-c1`` is a base name, not ``lw-0`` with a suffix, which ``with_suffix`` would make)."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in MODEL_SUFFIXES else path


def sibling(path: str | Path, suffix: str) -> Path:
    """The file of a model's pair (or its export) with ``suffix``: ``run/m-0.5`` -> ``run/m-0.5.json``."""
    base = files_base(path)
    return base.with_name(base.name + suffix)


#: ``bundled:NAME`` names a bundled model whatever lies on disk under that name.
BUNDLED_PREFIX = "bundled:"


def bundled_name(spec: str | Path) -> str | None:
    """The bundled model that ``spec`` names (``neu`` or ``bundled:neu``), or None for a path.

    A bare name that is also an existing path (a run folder ``./neu``) is ambiguous and refused
    with a one-line ``ValueError`` that says how to name either, rather than silently taking one."""
    text = str(spec)
    if text.startswith(BUNDLED_PREFIX):
        name = text.removeprefix(BUNDLED_PREFIX)
        if name not in bundled_models():
            names = ", ".join(bundled_models()) or "none"
            raise MissingError(f"{text}: no bundled model of that name (bundled: {names})")
        return name
    if text not in bundled_models():
        return None
    if Path(text).expanduser().exists():
        raise ConfigError(
            f"{text}: names both a bundled model and the path ./{text}; write ./{text} for the path or "
            f"{BUNDLED_PREFIX}{text} for the bundled model"
        )
    return text


def resolve_weights(spec: str | Path) -> Path:
    """The metadata file (``.json``) of a trained model given as a bundled name (``neu``,
    ``bundled:neu``), a ``.safetensors`` or ``.json`` file, or a run folder (its ``best`` model).

    Raises :class:`~lwcnn.errors.MissingError` (a ``FileNotFoundError``) with a one-line message
    naming what was looked for.
    """
    text = str(spec)
    name = bundled_name(text)
    if name is not None:
        return BUNDLED_DIR / f"{name}.json"
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "best.json"
    elif path.suffix == ".safetensors" or (path.suffix != ".json" and sibling(path, ".json").is_file()):
        path = sibling(path, ".json")
    if path.suffix != ".json" or not path.is_file():
        names = ", ".join(bundled_models()) or "none"
        raise MissingError(
            f"{spec}: no trained model there (expected a run folder, NAME.safetensors beside NAME.json, "
            f"or a bundled model: {names})"
        )
    if not sibling(path, ".safetensors").is_file():
        raise MissingError(f"{sibling(path, '.safetensors')}: weights file missing beside {path.name}")
    return path
