"""Augmentation with albumentations, built from the config's list of transforms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lwcnn.errors import ConfigError


def build_augmentation(transforms: Sequence[Mapping[str, Any]], seed: int | None = None) -> Any | None:
    """An ``albumentations.Compose`` of ``transforms`` (each ``{name: ClassName, **kwargs}``), or
    ``None`` when the list is empty. Unknown names and bad arguments are :class:`ValueError`s that
    name the transform."""
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
