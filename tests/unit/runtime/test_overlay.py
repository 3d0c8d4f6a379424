"""Overlay pictures of a typed segmenter: every colour drawn is named in the legend."""

from __future__ import annotations

import numpy as np

from lwcnn.runtime.engine import Inspection
from lwcnn.runtime.overlay import CAPTION_HEIGHT, overlay_image, type_colour
from lwcnn.runtime.regions import Region

TYPES = ("scratch", "stain", "hole")


def _legend_colours(picture: np.ndarray) -> set[tuple[int, int, int]]:
    row = picture[CAPTION_HEIGHT + 6]  # through the legend's colour squares
    return {tuple(int(v) for v in pixel) for pixel in row}


def test_a_region_of_mixed_pixel_types_names_every_colour_it_is_drawn_in() -> None:
    # one region, most of its pixels scratch (its type), a few stain: both colours are drawn, so
    # both types must be in the legend; a type that colours no pixel is not
    type_mask = np.zeros((40, 60), np.uint8)
    type_mask[10:20, 10:30] = 1
    type_mask[10:20, 30:34] = 2
    mask = type_mask > 0
    region = Region(int(mask.sum()), (10, 10, 34, 20), "scratch", 0.8)
    result = Inspection("x", "seg", "defective", True, 0.9, (40, 60), 1.0, area=region.area,
                        regions=[region], mask=mask, types=TYPES, type_mask=type_mask)  # fmt: skip
    colours = _legend_colours(np.asarray(overlay_image(np.full((40, 60, 1), 128, np.uint8), result)))
    assert type_colour(TYPES, "scratch") in colours
    assert type_colour(TYPES, "stain") in colours
    assert type_colour(TYPES, "hole") not in colours
