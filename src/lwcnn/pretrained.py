"""Pretrained backbones: the files ``lwcnn pretrain`` writes, the ones bundled with the package, and
``model.init``, which starts a model from one of them.

A backbone file is ``NAME.safetensors`` (the backbone's state: weights and BN statistics, keys as
in ``model.backbone``) beside ``NAME.json``, its card (format :data:`BACKBONE_FORMAT`): the
architecture (family, width), the input channels and normalisation it was trained with, and how it
was made (objective, sources, steps, figures, commit). It is not a model that inspects anything:
``lwcnn inspect`` refuses it (its card has no task).

``model.init`` (config) takes ``pretrained`` (the bundled backbone of the model's family, width
and channels; where none is bundled, from scratch, and the run says so), ``scratch``, a backbone
file, or a trained model (a run folder or model file: every tensor whose name and shape match,
the head too where the classes agree, as ``--init-from`` always did).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from lwcnn import __version__
from lwcnn.errors import ConfigError, MissingError, ModelError
from lwcnn.fileio import atomic_write_bytes, atomic_write_json
from lwcnn.weights import BACKBONES_DIR, bundled_backbones, files_base, sibling

log = logging.getLogger("lwcnn.training")

#: The format of a backbone card (``NAME.json`` beside ``NAME.safetensors``).
BACKBONE_FORMAT = "lwcnn-backbone/1"
#: The values ``model.init`` takes besides a path.
INIT_CHOICES = ("pretrained", "scratch")


def backbone_name(family: str, width: float | None, channels: int) -> str:
    """The file name (no suffix) of a bundled backbone: ``lw-0.35-c1``."""
    return f"{family}-{width:g}-c{channels}" if width is not None else f"{family}-c{channels}"


def save_backbone(path: str | Path, backbone: nn.Module, card: Mapping[str, Any]) -> Path:
    """Write ``PATH.safetensors`` (the backbone's state) and ``PATH.json`` (its card, with the
    format, version, date and the weights' SHA-256 added), atomically, weights first."""
    base = files_base(path)
    state = {k: v.detach().contiguous().cpu() for k, v in backbone.state_dict().items()}
    data = save_safetensors(state)
    atomic_write_bytes(sibling(base, ".safetensors"), data)
    meta = {
        "format": BACKBONE_FORMAT,
        **dict(card),
        "sha256": hashlib.sha256(data).hexdigest(),
        "lwcnn_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(sibling(base, ".json"), meta)
    return sibling(base, ".json")


def is_backbone_file(path: str | Path) -> bool:
    """Whether ``path`` (a ``.json`` or ``.safetensors``, or the base name) is a backbone file."""
    card = sibling(path, ".json")
    if not card.is_file():
        return False
    try:
        return json.loads(card.read_text(encoding="utf-8")).get("format") == BACKBONE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_backbone(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state and the checked card of a backbone file; one-line errors naming the file."""
    card_path = sibling(path, ".json")
    weights = sibling(path, ".safetensors")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingError(f"{card_path}: no backbone card there") from None
    except (OSError, ValueError) as error:
        raise ModelError(f"{card_path}: unreadable backbone card ({error})") from None
    if not isinstance(card, dict) or card.get("format") != BACKBONE_FORMAT:
        raise ModelError(f"{card_path}: not an lwcnn backbone file (format {card.get('format')!r})")
    model = card.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("family"), str):
        raise ModelError(f"{card_path}: backbone card lacks 'model' (family and width)")
    if card.get("in_channels") not in (1, 3):
        raise ModelError(
            f"{card_path}: backbone card 'in_channels' must be 1 or 3, got {card.get('in_channels')!r}"
        )
    try:
        state = load_safetensors(weights.read_bytes())
    except FileNotFoundError:
        raise MissingError(f"{weights}: weights file missing beside {card_path.name}") from None
    except Exception as error:
        raise ModelError(f"{weights}: unreadable weights ({error})") from None
    return state, card


def stem_key(state: Mapping[str, torch.Tensor], channels: int) -> str:
    """The key of the first convolution's weight (the one that sees the ``channels`` input)."""
    for key, tensor in state.items():
        if tensor.dim() == 4 and tensor.shape[1] == channels:
            return key
    raise ModelError(f"no first convolution with {channels} input channel(s) in the backbone")


def with_channels(state: Mapping[str, torch.Tensor], channels: int, wanted: int) -> dict[str, torch.Tensor]:
    """The state for ``wanted`` input channels. 3 -> 1 sums the first convolution's weights over
    the colour channels: exactly what the 3-channel backbone computes on a gray image repeated in
    every channel (normalisation is the same for each). 1 -> 3 spreads them evenly: a colour image
    starts as its mean of the channels, and colour is learned when fine-tuning."""
    converted = dict(state)
    if channels == wanted:
        return converted
    key = stem_key(state, channels)
    weight = state[key]
    if wanted == 1:
        converted[key] = weight.sum(dim=1, keepdim=True)
    else:
        converted[key] = weight.repeat(1, wanted, 1, 1) / wanted
    return converted


def bundled_backbone(family: str, width: float | None, channels: int) -> Path | None:
    """The card of the bundled backbone for that family, width and channel count, if there is one."""
    name = backbone_name(family, width, channels)
    return BACKBONES_DIR / f"{name}.json" if name in bundled_backbones() else None


def initialise(
    model: nn.Module, init: str | None, normalize: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Start ``model`` as ``model.init`` says (see the module's docstring); return what the model's
    card records about it (``kind``: scratch, pretrained, backbone or trained, and from what).
    ``normalize``: the run's normalisation, compared with the backbone's (a line if they differ)."""
    spec = model.spec
    if init in (None, "", "scratch"):
        return {"kind": "scratch"}
    if init == "pretrained":
        path = bundled_backbone(spec.family, spec.width, spec.in_channels)
        if path is None:
            shipped = ", ".join(bundled_backbones()) or "none"
            reason = (
                f"no pretrained backbone is bundled for {spec.name} with {spec.in_channels} channel(s) "
                f"(bundled: {shipped})"
            )
            log.info(f"model.init=pretrained: {reason}; training from scratch")
            return {"kind": "scratch", "reason": reason}
        return {"kind": "pretrained", **load_backbone(model, path, normalize)}
    path = Path(init).expanduser()
    if is_backbone_file(path):
        return {"kind": "backbone", **load_backbone(model, path, normalize)}
    if not path.exists() and init not in _bundled_model_names():
        raise MissingError(
            f"model.init={init}: neither pretrained, scratch, a backbone file nor a trained model "
            "(no such path)"
        )
    from lwcnn.checkpoints import load_matching_weights

    fresh = load_matching_weights(model, init)
    log.info(f"initialised from {init}; newly initialised: {', '.join(fresh) or 'nothing'}")
    return {"kind": "trained", "from": str(init), "newly_initialised": len(fresh)}


def load_backbone(
    model: nn.Module, path: str | Path, normalize: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Load a backbone file into ``model.backbone`` (its input channels converted where they differ,
    :func:`with_channels`); a different family or width is a one-line error. Returns the record."""
    state, card = read_backbone(path)
    spec = model.spec
    theirs = card["model"]
    if theirs.get("family") != spec.family or theirs.get("width") != spec.width:
        raise ModelError(
            f"{sibling(path, '.json')}: a backbone of {theirs.get('name')}, cannot initialise a "
            f"{spec.name} (model.init takes a backbone of the same family and width)"
        )
    state = with_channels(state, card["in_channels"], spec.in_channels)
    try:
        model.backbone.load_state_dict(state)
    except RuntimeError as error:
        raise ModelError(
            f"{sibling(path, '.safetensors')}: does not fit {spec.name}'s backbone "
            f"({str(error).splitlines()[0]})"
        ) from None
    if normalize and card.get("normalize") and dict(normalize) != card["normalize"]:
        log.info(
            f"the backbone was pretrained with normalisation {card['normalize']}, "
            f"this run uses {dict(normalize)}"
        )
    pretraining = card.get("pretraining", {})
    log.info(
        f"backbone from {files_base(path).name} ({pretraining.get('objective', '?')} pretext, "
        f"{pretraining.get('steps', '?')} steps"
        + (
            f", channels {card['in_channels']} -> {spec.in_channels}"
            if card["in_channels"] != spec.in_channels
            else ""
        )
        + ")"
    )
    return {
        "backbone": files_base(path).name,
        "sha256": card.get("sha256"),
        "commit": card.get("commit"),
        "objective": pretraining.get("objective"),
        "sources": pretraining.get("sources"),
        "steps": pretraining.get("steps"),
        "in_channels": card["in_channels"],
    }


def check_init(value: Any) -> None:
    """``model.init`` is text (a choice or a path) or empty; anything else is a one-line error."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"model.init must be pretrained, scratch or a path, got {value!r}")


def _bundled_model_names() -> list[str]:
    from lwcnn.weights import bundled_models

    return bundled_models()
