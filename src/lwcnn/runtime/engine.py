"""The inspection engine: a trained model, its preprocessing, and the decision on each image.

``Inspector`` runs in ONNX Runtime by default and imports neither torch nor the training code, so a
runtime-only install (``pip install lwcnn[runtime]``) inspects images with exported or bundled
models. Preprocessing is the training's own (:class:`lwcnn.data.preprocessing.Preprocessing`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.card import ModelCard, check_card
from lwcnn.data.images import ImageReadError, read_image
from lwcnn.data.preprocessing import Preprocessing, pad_to_stride
from lwcnn.errors import ConfigError, MissingError, ModelError
from lwcnn.fileio import printable_path
from lwcnn.limits import DEFAULT_MAX_PIXELS
from lwcnn.runtime.backends import Backend, OnnxRuntimeBackend, cached_export
from lwcnn.runtime.regions import Region, find_regions, resize_bilinear, resize_bilinear_rows
from lwcnn.weights import BUNDLED_DIR, BUNDLED_PREFIX, bundled_name, resolve_weights

#: The model used when none is named: the bundled NEU steel-defect classifier.
DEFAULT_MODEL = "neu"
#: Class names taken to mean "no defect" when a classifier's metadata does not list its own.
OK_CLASS_NAMES = frozenset(
    {"ok", "good", "normal", "pass", "defect_free", "defect-free", "no_defect", "none"}
)
BACKENDS = ("auto", "onnxruntime", "torch")


@dataclass
class Inspection:
    """The result for one image.

    ``verdict`` is the class (classifier) or ``"OK"`` / ``"defective"`` (segmenter); ``score`` is the
    verdict class's probability (classifier) or the highest defect probability of any pixel
    (segmenter). For a segmenter, ``area`` counts defect pixels and ``regions`` lists the connected
    defect regions with their boxes; ``mask`` is the boolean defect mask at the image's size. For a
    classifier, ``class_map`` (0..1, at the backbone's last stride, e.g. 7x7 for 200x200) shows where
    the evidence for the verdict class lies (:meth:`heatmap` gives it at the image's size).
    """

    image: str
    task: str
    verdict: str
    defective: bool
    score: float
    size: tuple[int, int]
    ms: float
    probabilities: dict[str, float] | None = None
    area: int = 0
    regions: list[Region] = field(default_factory=list)
    mask: np.ndarray | None = field(default=None, repr=False)
    class_map: np.ndarray | None = field(default=None, repr=False)
    #: The image as the model read it (uint8, H x W x channels), when asked for (``keep_pixels``).
    pixels: np.ndarray | None = field(default=None, repr=False)

    def heatmap(self) -> np.ndarray | None:
        """A classifier's ``class_map`` resized (bilinearly) to the image's size."""
        return None if self.class_map is None else resize_bilinear(self.class_map, self.size)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (no arrays)."""
        height, width = self.size
        data: dict[str, Any] = {
            "image": self.image,
            "task": self.task,
            "verdict": self.verdict,
            "defective": self.defective,
            "score": round(self.score, 6),
            "height": height,
            "width": width,
            "ms": round(self.ms, 3),
        }
        if self.task == "cls":
            data["class"] = self.verdict
        if self.probabilities is not None:
            data["probabilities"] = {k: round(v, 6) for k, v in self.probabilities.items()}
        if self.task == "seg":
            data["area"] = self.area
            data["area_fraction"] = round(self.area / float(height * width), 8)
            data["boxes"] = [list(r.box) for r in self.regions]
            data["region_areas"] = [r.area for r in self.regions]
        return data


@dataclass(frozen=True)
class InspectionFailure:
    """An image that could not be inspected: ``error`` is one line naming the file and the problem."""

    image: str
    error: str


def open_backend(
    weights: str | Path | None = None, backend: str = "auto", threads: int | None = None
) -> Backend:
    """The backend for ``weights``: an ``.onnx`` file, a bundled model's name, or a trained model
    (run folder, ``.safetensors`` or ``.json``).

    ``auto`` and ``onnxruntime`` run ONNX Runtime; a trained model runs from its export cached beside
    it, made (once, by the training install: :func:`lwcnn.open_trained_model`) when there is none or
    its files changed. ``torch`` runs PyTorch eager (the training install too)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    spec = str(weights) if weights is not None else f"{BUNDLED_PREFIX}{DEFAULT_MODEL}"
    if spec.lower().endswith(".onnx"):
        if backend == "torch":
            raise ConfigError(f"{spec}: an ONNX file runs in ONNX Runtime, not the torch backend")
        if not Path(spec).is_file():
            raise MissingError(f"{spec}: no such ONNX file")
        return OnnxRuntimeBackend(spec, threads)
    bundled = bundled_name(spec)  # a bare name that is also a path on disk is refused as ambiguous
    if backend != "torch" and bundled is not None and (BUNDLED_DIR / f"{bundled}.onnx").is_file():
        return OnnxRuntimeBackend(BUNDLED_DIR / f"{bundled}.onnx", threads, source=bundled)
    metadata_path = resolve_weights(spec)
    if backend != "torch":
        cached = cached_export(metadata_path, threads, source=spec)  # exported before: no torch needed
        if cached is not None:
            return cached
    import lwcnn  # the package root reaches the training install's exporter (the runtime may not)

    try:
        return lwcnn.open_trained_model(metadata_path, backend, threads, source=spec)
    except ImportError as error:
        raise ModelError(
            f"{spec}: a trained model needs the training install (torch) to run; on a runtime-only "
            f"install use an ONNX file from 'lwcnn export' ({error})"
        ) from None


class Inspector:
    """Inspect images with a trained model.

    >>> inspector = Inspector()                     # the bundled NEU classifier, ONNX Runtime
    >>> result = inspector.inspect("steel.jpg")     # doctest: +SKIP
    >>> result.verdict, result.score                # doctest: +SKIP

    ``weights``: see :func:`open_backend`. ``threads``: ONNX Runtime (or torch) threads, default one
    per core. ``batch_size``: images (classifier) or tiles (segmenter) per forward pass.
    ``threshold``: a segmenter's pixel probability threshold (default: the model's, else 0.5);
    ``min_area``: defect pixels needed to call an image defective (default: the model's, else 1, the
    paper's rule: any defect pixel). ``tile_overlap``: pixels shared by neighbouring tiles when an
    image is larger than the segmenter's working size. ``ok_classes``: classifier classes that mean
    "no defect" (default: the model's ``ok_classes``, else names such as ``good`` or ``ok``).
    ``max_pixels``: image files with more pixels (width x height) are refused from their header,
    before they are decoded (default 40 M, as the service's; None: no limit).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        backend: str | Backend = "auto",
        threads: int | None = None,
        batch_size: int = 1,
        threshold: float | None = None,
        min_area: int | None = None,
        tile_overlap: int = 64,
        ok_classes: Iterable[str] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        # a Backend object is used as it is (training validates its live model this way)
        self.backend = open_backend(weights, backend, threads) if isinstance(backend, str) else backend
        self.weights = (
            str(weights) if weights is not None else DEFAULT_MODEL if isinstance(backend, str) else "model"
        )
        card = getattr(self.backend, "card", None) or check_card(self.backend.metadata, self.weights)
        self.card: ModelCard = card
        self.metadata = card.fields  # every field of the model's card, as written
        self.task: str = card.task
        self.classes: list[str] = list(card.classes)
        self.preprocessing: Preprocessing = card.preprocessing
        self.batch_size = batch_size
        self.threshold = float(threshold if threshold is not None else card.threshold or 0.5)
        self.min_area = int(min_area if min_area is not None else card.min_area or 1)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.min_area < 1:
            raise ConfigError(f"min_area must be at least 1 pixel, got {self.min_area}")
        if tile_overlap < 0:
            raise ConfigError(f"tile overlap must be >= 0, got {tile_overlap}")
        self.tile_overlap = tile_overlap
        if max_pixels is not None and max_pixels < 1:
            raise ConfigError(f"max_pixels must be at least 1, got {max_pixels}")
        self.max_pixels = max_pixels
        names = ok_classes if ok_classes is not None else card.ok_classes
        if names is None:
            self.ok_classes = {c for c in self.classes if c.lower() in OK_CLASS_NAMES}
        else:
            self.ok_classes = set(names)
            unknown = self.ok_classes - set(self.classes)
            if unknown:
                raise ConfigError(f"ok classes {sorted(unknown)} are not classes of the model {self.classes}")

    @property
    def model_name(self) -> str:
        """The architecture (``lw@0.35``) and the weights it was given as."""
        return f"{self.card.model_name} ({self.weights})"

    # -- one image -------------------------------------------------------------------------------
    def inspect(self, image: np.ndarray | str | Path, name: str | None = None) -> Inspection:
        """Inspect one image: a path, or a uint8 array (H, W) or (H, W, C) in the model's channels."""
        if not isinstance(image, np.ndarray):
            name = name or printable_path(image)
            image = read_image(image, self.preprocessing.channels, self.max_pixels)
        array = self._as_model_channels(image)
        if self.task == "cls":
            return self._classify([array], [name or "image"])[0]
        return self._segment(array, name or "image")

    def inspect_paths(
        self, paths: Sequence[str | Path], keep_pixels: bool = False
    ) -> Iterator[Inspection | InspectionFailure]:
        """Inspect image files in order, yielding one result per path: an unreadable or corrupt file
        (or any other failure on one image) yields an :class:`InspectionFailure` and the others go
        on. Classifier inputs are batched ``batch_size`` at a time. ``keep_pixels`` keeps each image
        (as read) in its result, for pictures. Results name their image by
        :func:`~lwcnn.fileio.printable_path` (a file name that is not UTF-8 comes back escaped)."""
        pending: list[tuple[np.ndarray, str]] = []
        for path in paths:
            name = printable_path(path)
            try:
                image = read_image(path, self.preprocessing.channels, self.max_pixels)
            except ImageReadError as error:
                yield from self._flush(pending, keep_pixels)
                pending = []
                yield InspectionFailure(name, str(error))
                continue
            if self.task == "cls":
                pending.append((image, name))
                if len(pending) >= self.batch_size:
                    yield from self._flush(pending, keep_pixels)
                    pending = []
                continue
            try:
                result = self._segment(image, name)
            except Exception as error:  # one bad image never ends the batch
                yield InspectionFailure(name, f"{name}: inspection failed ({error})")
                continue
            result.pixels = image if keep_pixels else None
            yield result
        yield from self._flush(pending, keep_pixels)

    def _flush(
        self, pending: list[tuple[np.ndarray, str]], keep_pixels: bool
    ) -> list[Inspection | InspectionFailure]:
        if not pending:
            return []
        try:
            results = self._classify([image for image, _ in pending], [name for _, name in pending])
        except Exception as error:  # one bad image never ends the batch: retry one at a time
            if len(pending) > 1:
                return [r for item in pending for r in self._flush([item], keep_pixels)]
            return [InspectionFailure(pending[0][1], f"{pending[0][1]}: inspection failed ({error})")]
        for result, (image, _) in zip(results, pending, strict=True):
            result.pixels = image if keep_pixels else None
        return list(results)

    def _as_model_channels(self, image: np.ndarray) -> np.ndarray:
        if image.dtype != np.uint8:
            raise ValueError(f"images must be uint8 arrays, got {image.dtype}")
        if image.ndim == 2:
            image = image[:, :, None]
        channels = self.preprocessing.channels
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise ValueError(f"an image must be (H, W), (H, W, 1) or (H, W, 3), got shape {image.shape}")
        if image.shape[2] == channels:
            return image
        if channels == 3:
            return np.repeat(image, 3, axis=2)
        # RGB to gray with the ITU-R 601 luma weights, as Pillow's 'L' (what training read)
        gray = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[:, :, None]

    # -- classification --------------------------------------------------------------------------
    def class_probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """A classifier's class probabilities (N, classes) for uint8 images in the model's channels,
        ``batch_size`` at a time: what :meth:`inspect` decides by, for evaluating many images."""
        if self.task != "cls":
            raise ConfigError(
                f"{self.weights}: class probabilities come from a classifier, not a {self.task} model"
            )
        parts = [
            _softmax(self.backend.run(self._batch(images[i : i + self.batch_size]))["logits"], axis=1)
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)

    def _batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.preprocessing(self._as_model_channels(image)) for image in images])

    def _classify(self, images: list[np.ndarray], names: list[str]) -> list[Inspection]:
        start = time.perf_counter()
        outputs = self.backend.run(self._batch(images))
        logits = outputs["logits"]
        probabilities = _softmax(logits, axis=1)
        maps = outputs.get("class_maps")
        each_ms = (time.perf_counter() - start) * 1000.0 / len(images)
        results = []
        for index, (image, name) in enumerate(zip(images, names, strict=True)):
            best = int(np.argmax(probabilities[index]))
            verdict = self.classes[best] if self.classes else str(best)
            class_map = None if maps is None else _normalised(maps[index, best])
            results.append(
                Inspection(
                    image=name,
                    task="cls",
                    verdict=verdict,
                    defective=verdict not in self.ok_classes,
                    score=float(probabilities[index, best]),
                    size=(int(image.shape[0]), int(image.shape[1])),
                    ms=each_ms,
                    probabilities={
                        c: float(p) for c, p in zip(self.classes, probabilities[index], strict=False)
                    },
                    class_map=class_map,
                )
            )
        return results

    # -- segmentation ----------------------------------------------------------------------------
    def defect_probability(self, image: np.ndarray) -> np.ndarray:
        """Per-pixel defect probability (H, W) of a uint8 image in the model's channels: the image is
        resized by the model's scale, run in one pass when it fits the working size, else in
        overlapping tiles of that size whose probabilities are averaged where they overlap, and the
        probability is brought back to the image's own size."""
        probability = self._scaled_probability(image)
        if probability.shape != image.shape[:2]:
            probability = resize_bilinear(probability, image.shape[:2])
        return probability

    def _scaled_probability(self, image: np.ndarray) -> np.ndarray:
        """The defect probability at the model's scale (no other resizing: fully convolutional)."""
        return self._tiled_probability(self.preprocessing.rescale(image))

    def _tiled_probability(self, image: np.ndarray) -> np.ndarray:
        """Probabilities of a (scaled) uint8 image, normalised tile by tile so that no float copy of
        a large image is ever made; overlapping tiles are averaged."""
        height, width = image.shape[:2]
        tile_h, tile_w = self.preprocessing.size
        if height <= tile_h and width <= tile_w:
            return self._probability(self.preprocessing.normalize(image)[None])[0]
        tops = _tile_starts(height, tile_h, self.tile_overlap)
        lefts = _tile_starts(width, tile_w, self.tile_overlap)
        boxes = [(t, left) for t in tops for left in lefts]
        total = np.zeros((height, width), np.float32)
        th, tw = min(tile_h, height), min(tile_w, width)
        for first in range(0, len(boxes), self.batch_size):
            chunk = boxes[first : first + self.batch_size]
            batch = np.stack(
                [self.preprocessing.normalize(image[t : t + th, left : left + tw]) for t, left in chunk]
            )
            for (t, left), probability in zip(chunk, self._probability(batch), strict=True):
                total[t : t + th, left : left + tw] += probability
        # the tiles form a grid: a pixel's tile count is its row's count times its column's
        rows, cols = np.zeros(height, np.float32), np.zeros(width, np.float32)
        for t in tops:
            rows[t : t + th] += 1.0
        for left in lefts:
            cols[left : left + tw] += 1.0
        for start in range(0, height, _STRIP_ROWS):  # in strips: no second full-size array
            strip = slice(start, start + _STRIP_ROWS)
            total[strip] /= rows[strip, None] * cols[None, :]
        return total

    def _probability(self, batch: np.ndarray) -> np.ndarray:
        height, width = batch.shape[-2:]
        # the network runs on multiples of its stride, as it was trained (pad_to_stride says why)
        padded = pad_to_stride(batch, axes=(-2, -1), stride=self.card.network_stride)
        logits = self.backend.run(padded)["logits"]
        full = resize_bilinear(logits, padded.shape[-2:])[..., :height, :width]
        # P(defect) = 1 - P(background), class 0 being the background
        return 1.0 - _softmax(full, axis=1)[:, 0]

    def _segment(self, image: np.ndarray, name: str) -> Inspection:
        start = time.perf_counter()
        mask, score = self._native_mask(self._scaled_probability(image), image.shape[:2])
        regions = find_regions(mask)
        area = int(mask.sum())
        defective = area >= self.min_area
        return Inspection(
            image=name,
            task="seg",
            verdict="defective" if defective else "OK",
            defective=defective,
            score=score,
            size=(int(image.shape[0]), int(image.shape[1])),
            ms=(time.perf_counter() - start) * 1000.0,
            area=area,
            regions=regions,
            mask=mask,
        )

    def _native_mask(self, probability: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
        """The defect mask at the image's own ``size`` and the highest probability, from the
        probability at the model's scale: resized in strips of rows (the same values as one
        :func:`resize_bilinear`), so a large image costs a boolean mask, not a float one."""
        if probability.shape == tuple(size):
            return probability > self.threshold, float(probability.max())
        mask = np.empty(size, dtype=bool)
        score = 0.0
        for start in range(0, size[0], _STRIP_ROWS):
            stop = min(size[0], start + _STRIP_ROWS)
            strip = resize_bilinear_rows(probability, size, start, stop)
            mask[start:stop] = strip > self.threshold
            score = max(score, float(strip.max()))
        return mask, score


#: Rows per strip where a full-size float map is worked through piecewise.
_STRIP_ROWS = 256


def _softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    shifted = logits - logits.max(axis=axis, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=axis, keepdims=True)


def _normalised(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12:
        return np.zeros_like(values, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spaced tile starts covering ``length`` with tiles of ``tile`` that overlap by at least
    ``overlap`` pixels (the last tile ends at the border)."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    count = -(-(length - tile) // step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]
