"""Pictures of a result a person can open: the image beside the same image with what the model saw
drawn on it (a segmenter's defect mask and boxes, or a classifier's evidence heat map), captioned
with the verdict. Pillow and NumPy only."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lwcnn.data.preprocessing import resize_image
from lwcnn.data.shapes import TYPE_COLOURS
from lwcnn.limits import MAX_PICTURE_SIDE
from lwcnn.runtime.engine import Inspection
from lwcnn.runtime.regions import resize_bilinear

MASK_COLOUR = np.array([255, 40, 40], np.float32)
BOX_COLOUR = (255, 220, 0)
CAPTION_HEIGHT = 18
GAP = 4


def overlay_image(
    image: np.ndarray, result: Inspection, alpha: float = 0.45, max_side: int = MAX_PICTURE_SIDE
) -> Image.Image:
    """An RGB picture: the input on the left, the overlay on the right, the verdict above. An image
    whose longer side exceeds ``max_side`` is drawn reduced to that (its mask by "any defect pixel",
    its boxes scaled), so that the picture's memory stays bounded whatever the image's size."""
    mask, boxes = result.mask, [region.box for region in result.regions]
    types = result.type_mask if result.types is not None else None
    factor = max_side / max(image.shape[:2])
    if factor < 1.0:
        image, mask, boxes = _reduced(image, mask, boxes, factor)
        if types is not None:
            types = np.asarray(Image.fromarray(types).resize(mask.shape[::-1], Image.Resampling.NEAREST))
            types = np.where(mask, np.maximum(types, 1), 0).astype(np.uint8)
    height, width = image.shape[:2]
    # the picture is made in one array (a gray image broadcast to three channels, not repeated),
    # and only the defect pixels of the right half are blended
    legend = result.types is not None and bool(result.regions)  # a second caption row: the types found
    top_rows = CAPTION_HEIGHT * (2 if legend else 1)
    canvas = np.full((height + top_rows, 2 * width + GAP, 3), 24, np.uint8)
    left = canvas[top_rows:, :width]
    right = canvas[top_rows:, width + GAP :]
    left[...] = image
    if mask is not None:
        right[...] = image
        colour = MASK_COLOUR.astype(np.float64) if types is None else _type_colours()[types[mask]]
        tinted = right[mask].astype(np.float64) * (1 - alpha) + colour * alpha
        right[mask] = np.clip(tinted + 0.5, 0, 255).astype(np.uint8)
    elif result.class_map is not None:
        heatmap = resize_bilinear(result.class_map, (height, width))
        heat = heatmap[:, :, None]
        blended = left.astype(np.float32) * (1 - alpha * heat) + _hot(heatmap) * (alpha * heat)
        right[...] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    else:
        right[...] = image
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    for (x0, y0, x1, y1), region in zip(boxes, result.regions, strict=True):
        left, top = width + GAP + x0, top_rows + y0
        outline = BOX_COLOUR if region.type is None else type_colour(result.types, region.type)
        draw.rectangle((left - 1, top - 1, left + (x1 - x0), top + (y1 - y0)), outline=outline, width=2)
    font = ImageFont.load_default()
    draw.text((4, 3), caption(result), fill=(255, 255, 255), font=font)
    if legend:  # the types found, each in its colour
        x, y = 4, CAPTION_HEIGHT
        for name in _legend_types(result, types, mask):
            draw.rectangle((x, y + 2, x + 9, y + 11), fill=type_colour(result.types, name))
            draw.text((x + 13, y), str(name), fill=(255, 255, 255), font=font)
            x += 24 + int(draw.textlength(str(name), font=font))
    return picture


def _legend_types(result: Inspection, types: np.ndarray | None, mask: np.ndarray | None) -> list[str]:
    """The types to name: each region's type, then any other type that colours pixels of the
    picture (a region is named by most of its pixels, yet each pixel is drawn in its own type's
    colour, so a colour must not be left without its name)."""
    names = list(dict.fromkeys(str(r.type) for r in result.regions if r.type is not None))
    if types is not None and mask is not None and result.types:
        for index in np.unique(types[mask]):
            if 1 <= index <= len(result.types) and result.types[index - 1] not in names:
                names.append(result.types[index - 1])
    return names


def type_colour(types: tuple[str, ...] | None, name: str | None) -> tuple[int, int, int]:
    """The colour a defect type is drawn in (the same in overlays, contact sheets and the web page)."""
    if not types or name not in types:
        return BOX_COLOUR
    return TYPE_COLOURS[types.index(name) % len(TYPE_COLOURS)]


def _type_colours() -> np.ndarray:
    """Colour by type index (0: unused), as floats."""
    return np.array([MASK_COLOUR, *TYPE_COLOURS], np.float64)


def _reduced(
    image: np.ndarray, mask: np.ndarray | None, boxes: list[tuple[int, int, int, int]], factor: float
) -> tuple[np.ndarray, np.ndarray | None, list[tuple[int, int, int, int]]]:
    """``image`` (and its mask and boxes) reduced by ``factor`` < 1; a reduced pixel is defect if
    any pixel it covers was, so a crack one pixel wide stays visible."""
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    small = resize_image(image, (size[1], size[0]), reducing_gap=2.0)
    if mask is not None:
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)) > 0
    sx, sy = size[0] / width, size[1] / height
    scaled = [
        (
            int(x0 * sx),
            int(y0 * sy),
            max(int(x0 * sx) + 1, round(x1 * sx)),
            max(int(y0 * sy) + 1, round(y1 * sy)),
        )
        for x0, y0, x1, y1 in boxes
    ]
    return small, mask, scaled


def caption(result: Inspection) -> str:
    """One line: the verdict, its score and, for a segmenter, the defect area and region count."""
    text = f"{result.verdict}  {result.score:.3f}"
    if result.task == "seg" and (result.defective or (result.types is not None and result.regions)):
        text += f"  area {result.area} px  {len(result.regions)} region(s)"
    return text


def jpeg_bytes(picture: Image.Image, quality: int = 90) -> bytes:
    """A picture encoded as JPEG, without chroma subsampling (a one-pixel red tint stays red). On a
    1281 x 1004 KolektorSDD overlay about 15x faster to write than PNG even at zlib level 1 (PNG's
    per-row filtering and deflate dominate), and a third of its size."""
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def png_bytes(picture: Image.Image | np.ndarray, compress_level: int = 1) -> bytes:
    """A picture (or a boolean/uint8 mask, written as 0/255) encoded as PNG. zlib level 1: on a
    1028x530 steel overlay 4x faster to write than Pillow's default level 6, files ~20% larger."""
    if isinstance(picture, np.ndarray):
        array = picture.astype(np.uint8) * 255 if picture.dtype == bool else picture
        picture = Image.fromarray(array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def _hot(values: np.ndarray) -> np.ndarray:
    """A black-red-yellow-white colour ramp for 0..1 values, as (H, W, 3) floats in 0..255."""
    v = np.clip(values, 0.0, 1.0)[:, :, None]
    ramp = np.concatenate([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], axis=2)
    return ramp * 255.0
