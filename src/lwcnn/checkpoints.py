"""Trained models on disk: safetensors weights + JSON metadata, written atomically."""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from lwcnn import __version__
from lwcnn.card import CARD_FORMAT, check_card
from lwcnn.errors import ModelError
from lwcnn.fileio import atomic_write_bytes, atomic_write_json
from lwcnn.models import create_model
from lwcnn.weights import resolve_weights

FORMAT = CARD_FORMAT  # the card format, defined with the card


def save_model(path: str | Path, model: nn.Module, metadata: Mapping[str, Any]) -> Path:
    """Write ``PATH.safetensors`` and ``PATH.json`` (``path`` without or with either suffix).

    The metadata gets the model's spec, the format, the lwcnn version, the date and (unless
    ``metadata`` names it, as training does with the commit it started from) the git commit
    added; the weights file is written first, so a JSON file always has its weights.
    """
    base = Path(path)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(base.with_suffix(".safetensors"), save_safetensors(state))
    meta = {
        "format": FORMAT,
        "model": model.spec.to_dict(),
        **dict(metadata),
        "lwcnn_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if "commit" not in meta:
        meta["commit"] = git_commit()
    atomic_write_json(base.with_suffix(".json"), meta)
    return base.with_suffix(".json")


def update_metrics(spec: str | Path, metrics: Mapping[str, Any]) -> None:
    """Add ``metrics`` to a trained model's metadata (the weights file is left alone)."""
    path, meta = _read_card(spec)
    meta["metrics"] = {**meta.get("metrics", {}), **metrics}
    atomic_write_json(path, meta)


def update_metadata(spec: str | Path, fields: Mapping[str, Any]) -> Path:
    """Set top-level metadata fields of a trained model (e.g. a calibrated threshold); the weights
    file is left alone. Returns the metadata file."""
    path, meta = _read_card(spec)
    meta.update(fields)
    atomic_write_json(path, meta)
    return path


def read_metadata(spec: str | Path) -> dict[str, Any]:
    """The metadata (model card) of a trained model (bundled name, file or run folder), checked
    (:func:`lwcnn.card.check_card`): a missing or malformed field is one error naming the file."""
    return _read_card(spec)[1]


def _read_card(spec: str | Path) -> tuple[Path, dict[str, Any]]:
    path = resolve_weights(spec)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: unreadable model metadata ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        if found == "lwcnn-backbone/1":  # lwcnn pretrain's file: a start for training, not a model
            raise ModelError(
                f"{path}: a pretrained backbone (lwcnn pretrain), not a trained model; train one from it "
                f"with lwcnn train DATA model.init={path}"
            )
        raise ModelError(f"{path}: not an lwcnn model file (format {found!r})")
    check_card(meta, str(path))  # a missing or malformed field: one line naming the file, now
    return path, meta


def load_model(spec: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model in eval mode from its metadata and weights."""
    path, meta = _read_card(spec)
    model = build_from_spec(meta["model"])
    weights = path.with_suffix(".safetensors")
    try:
        state = load_safetensors(weights.read_bytes())
    except Exception as error:
        raise ModelError(f"{weights}: unreadable weights ({error})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ModelError(
            f"{weights}: weights do not fit {meta['model']['name']} ({str(error).splitlines()[0]})"
        ) from None
    return model.eval(), meta


def build_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """A fresh model from a :class:`~lwcnn.models.ModelSpec` dictionary."""
    return create_model(
        spec["name"],
        task=spec["task"],
        num_classes=spec["num_classes"],
        in_channels=spec["in_channels"],
        shortcut_stride=spec.get("shortcut_stride") or 8,
        **({"pool": spec.get("pool") or "avg"} if spec["task"] == "cls" else {}),
    )


def load_matching_weights(model: nn.Module, spec: str | Path) -> list[str]:
    """Fine-tuning: copy every tensor of a trained model whose name and shape match ``model``'s
    (the backbone, and the head when the class count agrees). Returns the names left as initialised."""
    source, meta = load_model(spec)
    if meta["model"]["family"] != model.spec.family or meta["model"]["width"] != model.spec.width:
        raise ModelError(f"{spec}: is a {meta['model']['name']}, cannot initialise a {model.spec.name}")
    own = model.state_dict()
    theirs = source.state_dict()
    matched = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
    own.update(matched)
    model.load_state_dict(own)
    return sorted(k for k in own if k not in matched)


def git_commit() -> str | None:
    """The commit of the lwcnn source tree, with ``-dirty`` if it has uncommitted changes."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def save_training_state(path: str | Path, state: Mapping[str, Any]) -> None:
    """The full state needed to resume (model, optimizer, counters), written atomically."""
    import io

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_training_state(path: str | Path) -> dict[str, Any]:
    """The state :func:`save_training_state` wrote. Loaded with ``weights_only=True``: tensors and
    plain Python values only, so a crafted ``resume.pt`` cannot run code (a full unpickling would
    call whatever the file names)."""
    import pickle

    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(
            f"{path}: refused: the training state holds something other than tensors and plain values "
            f"({first[:200]})"
        ) from None
    except Exception as error:
        raise ModelError(f"{path}: unreadable training state ({error})") from None
    if not isinstance(state, dict):
        raise ModelError(f"{path}: not an lwcnn training state (a {type(state).__name__})")
    return state
