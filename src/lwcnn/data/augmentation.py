"""Augmentation with albumentations, built from the config's list of transforms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lwcnn.errors import ConfigError

#: Transforms whose output size is an argument: without one they get the network's input size.
SIZED = ("RandomResizedCrop", "RandomSizedCrop", "Resize", "RandomCrop", "CenterCrop")


def build_augmentation(
    transforms: Sequence[Mapping[str, Any]], seed: int | None = None, size: Sequence[int] | None = None
) -> Any | None:
    """An ``albumentations.Compose`` of ``transforms`` (each ``{name: ClassName, **kwargs}``), or
    ``None`` when the list is empty. Unknown names and bad arguments are :class:`ValueError`s that
    name the transform. ``size`` (height, width): what every augmented image must measure (a
    classifier's input); a transform of :data:`SIZED` without a size gets it, one with another is
    refused (a batch of mixed sizes cannot be stacked, and the network would train on a size it
    is never shown in inspection)."""
    if not transforms:
        return None
    import warnings

    with warnings.catch_warnings():  # albumentations warns about its own update check
        warnings.simplefilter("ignore")
        import albumentations as A

    built = []
    for index, spec in enumerate(transforms):
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ConfigError(f"augment.transforms[{index}] must be a mapping with a 'name'")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "name"}
        if size is not None and spec["name"] in SIZED:
            wanted = (int(size[0]), int(size[1]))
            given = _output_size(kwargs)
            if given is None:
                by_side = spec["name"] in ("Resize", "RandomCrop", "CenterCrop")  # height=, width=
                kwargs.update({"height": wanted[0], "width": wanted[1]} if by_side else {"size": wanted})
            elif given != wanted:
                raise ConfigError(
                    f"augment.transforms[{index}] {spec['name']}: outputs {given[0]} x {given[1]}, not "
                    f"data.input_size {wanted[0]} x {wanted[1]} (leave its size out: it follows the input)"
                )
        cls = getattr(A, str(spec["name"]), None)
        if cls is None or not isinstance(cls, type):
            raise ConfigError(
                f"augment.transforms[{index}]: albumentations has no transform {spec['name']!r}"
            )
        try:
            built.append(cls(**kwargs))
        except Exception as error:  # pydantic validation errors are long: keep the first line
            first = str(error).strip().splitlines()[0]
            raise ConfigError(f"augment.transforms[{index}] {spec['name']}: {first}") from None
    return A.Compose(built, seed=seed)


def _output_size(kwargs: Mapping[str, Any]) -> tuple[int, int] | None:
    if "size" in kwargs:
        return (int(kwargs["size"][0]), int(kwargs["size"][1]))
    if "height" in kwargs and "width" in kwargs:
        return (int(kwargs["height"]), int(kwargs["width"]))
    return None


def apply_augmentation(augmentation: Any | None, image: np.ndarray) -> np.ndarray:
    """Apply ``augmentation`` to an (H, W, C) uint8 image; keeps the channel axis."""
    if augmentation is None:
        return image
    out = augmentation(image=image)["image"]
    return out[:, :, None] if out.ndim == 2 else out


def apply_joint_augmentation(
    augmentation: Any | None, image: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``augmentation`` to an image and its mask (bool, or class indices) together:
    albumentations draws one spatial transform for both (the mask with nearest-neighbour
    interpolation) and applies pixel transforms (noise, blur, brightness) to the image only."""
    if augmentation is None:
        return image, mask
    out = augmentation(image=image, mask=mask.astype(np.uint8))
    augmented = out["image"]
    labels = out["mask"] > 0 if mask.dtype == bool else out["mask"].astype(mask.dtype)  # class indices kept
    return (augmented[:, :, None] if augmented.ndim == 2 else augmented), labels
