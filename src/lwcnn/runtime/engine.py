"""The inspection engine: a trained model, its preprocessing, and the decision on each image.

``Inspector`` runs in ONNX Runtime by default and imports neither torch nor the training code, so a
runtime-only install (``pip install lwcnn[runtime]``) inspects images with exported or bundled
models. Preprocessing is the training's own (:class:`lwcnn.data.preprocessing.Preprocessing`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
from lwcnn.runtime.defect_types import TileTypes, TypeGrid, typed_regions
from lwcnn.runtime.engine_choice import EngineChoice, choose
from lwcnn.runtime.probability import (
    STRIP_ROWS,
    ProbabilityRows,
    defect_probability,
    native_mask,
    regions_in_rows,
    softmax,
)
from lwcnn.runtime.regions import Region, resize_bilinear
from lwcnn.weights import BUNDLED_DIR, BUNDLED_PREFIX, bundled_name, resolve_weights

#: The model used when none is named: the bundled NEU steel-defect classifier.
DEFAULT_MODEL = "neu"
#: Class names taken to mean "no defect" when a classifier's metadata does not list its own.
OK_CLASS_NAMES = frozenset(
    {"ok", "good", "normal", "pass", "defect_free", "defect-free", "no_defect", "none"}
)
BACKENDS = ("auto", "onnxruntime", "openvino", "torch")
#: Images read (decoded and resized) ahead of the one being inspected, in a second thread.
READ_AHEAD = 2


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
    #: A model with defect types: their names, and each defect pixel's type (uint8 H x W, 0 good,
    #: k ``types[k - 1]``); every region has its type (``Region.type``).
    types: tuple[str, ...] | None = None
    type_mask: np.ndarray | None = field(default=None, repr=False)

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
            if self.types is not None:
                data["region_types"] = [r.type for r in self.regions]
                data["region_type_probabilities"] = [r.type_probability for r in self.regions]
                found = {r.type for r in self.regions}
                data["types_found"] = [t for t in self.types if t in found]
        return data


@dataclass(frozen=True)
class _ReadImage:
    """An image read ahead: as read, at the model's scale (segmenters), and as the network takes it
    (a classifier's (C, H, W) input; a segmenter's padded (1, C, H, W) batch where it is one pass)."""

    image: np.ndarray
    scaled: np.ndarray | None = None
    network_input: np.ndarray | None = None


@dataclass(frozen=True)
class InspectionFailure:
    """An image that could not be inspected: ``error`` is one line naming the file and the problem."""

    image: str
    error: str


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def inspection_threads(workers: int = 1) -> int:
    """Inference threads for images inspected from files (``lwcnn inspect``) by ``workers``: one
    each where several share the cores; for one, every core but one, which the read-ahead thread
    needs (with every core to ONNX Runtime its threads and the reader's slowed each other:
    docs/results.md, "From file to verdict")."""
    return 1 if workers > 1 else max(1, usable_cores() - 1)


def inspection_workers() -> int:
    """Images ``lwcnn inspect`` inspects at once by default: one per core (these small networks
    gain little from a second thread per image, and whole images in parallel scale with cores:
    docs/results.md, "Throughput on more cores")."""
    return usable_cores()


def open_backend(
    weights: str | Path | None = None,
    backend: str = "onnxruntime",
    threads: int | None = None,
    precision: str = "fp32",
    workers: int = 1,
) -> Backend:
    """The backend for ``weights``: an ``.onnx`` file, a bundled model's name, or a trained model
    (run folder, ``.safetensors`` or ``.json``).

    ``auto`` (here) and ``onnxruntime`` run ONNX Runtime (:func:`open_engine` makes ``auto``
    choose the fastest engine instead, as :class:`Inspector` does); a trained model runs from its
    export cached beside it, made (once, by the training install: :func:`lwcnn.open_trained_model`)
    when there is none or its files changed. ``openvino`` runs the same ONNX file in OpenVINO, in
    ``precision`` (``fp32`` or ``bf16``; the other engines run the file as it was exported).
    ``torch`` runs PyTorch eager (the training install too). ``workers``: callers that will run it
    at once (OpenVINO gives each a stream of ``threads``; an ONNX Runtime session runs concurrent
    calls in parallel as it is)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if precision != "fp32" and backend != "openvino":
        raise ConfigError(f"precision {precision!r} needs the openvino backend (this one is {backend})")
    spec = str(weights) if weights is not None else f"{BUNDLED_PREFIX}{DEFAULT_MODEL}"
    onnx_file, source = _onnx_file(spec, backend)
    if backend == "openvino":
        from lwcnn.runtime.openvino_engine import OpenVinoBackend

        if onnx_file is None:
            onnx_file, source = exported_file(spec, threads), spec
        return OpenVinoBackend(onnx_file, threads, precision, source=source, streams=workers)
    if onnx_file is not None:
        return OnnxRuntimeBackend(onnx_file, threads, source=source)
    metadata_path = resolve_weights(spec)
    if backend != "torch":
        cached = cached_export(metadata_path, threads, source=spec)  # exported before: no torch needed
        if cached is not None:
            return cached
    return _trained_model(spec, metadata_path, backend, threads)


def open_engine(
    weights: str | Path | None = None,
    backend: str = "auto",
    threads: int | None = None,
    precision: str = "fp32",
    workers: int = 1,
    sample: Sequence[str | Path] = (),
) -> tuple[Backend, EngineChoice | None]:
    """:func:`open_backend`, and for ``auto`` the engine and precision chosen for this CPU
    (:mod:`lwcnn.runtime.engine_choice`: measured here, from file to verdict on ``sample``, image
    files of the work to come, or on generated ones where fewer than four are given, among the
    candidates whose decisions agree with fp32) with the reason; a named backend is used as asked
    (choice None)."""
    if backend != "auto":
        return open_backend(weights, backend, threads, precision, workers), None
    if precision != "fp32":
        raise ConfigError(
            f"precision {precision!r} goes with a named backend (--backend openvino); auto chooses its own"
        )
    first = open_backend(weights, "onnxruntime", threads)
    path = getattr(first, "path", None)
    if not isinstance(first, OnnxRuntimeBackend) or path is None:
        why = "the model's export lives in memory only (no ONNX file for another engine)"
        return first, EngineChoice(first.name, first.precision, why)

    def open_candidate(engine: str, candidate_precision: str) -> Backend:
        if engine == "onnxruntime":
            return first
        from lwcnn.runtime.openvino_engine import OpenVinoBackend

        return OpenVinoBackend(path, threads, candidate_precision, source=first.source, streams=workers)

    with tempfile.TemporaryDirectory(prefix="lwcnn-engines-") as folder:
        timer = _file_to_verdict_rounds(first.card, Path(folder), workers, sample)
        choice, chosen = choose(first.card, path, first.precision, threads, open_candidate, workers, timer)
    return chosen, choice


def _file_to_verdict_rounds(card: ModelCard, folder: Path, workers: int, sample: Sequence[str | Path]):
    """``auto``'s round timer: a candidate backend inspects ``sample`` (at least four images), or
    else a few generated image files of the model's size (:func:`lwcnn.runtime.speed.
    generated_images`, written once, on first use), from file to verdict with ``workers`` workers:
    a round and the images it inspects."""
    from lwcnn.runtime.speed import generated_images

    paths: list[Path] = [Path(p) for p in sample] if len(sample) >= 4 else []

    def round_timer(backend: Backend):
        if not paths:
            height, width = card.preprocessing.size
            # a round of some 1 Mpixel at the working size, and four images a worker at least (a pool's
            # start is not its pace)
            count = int(np.clip(np.ceil(1e6 / (height * width)), 4 * workers, 32))
            paths.extend(generated_images(card.preprocessing, folder, count))
        inspector = Inspector(backend=backend, workers=workers)
        return (lambda: list(inspector.inspect_paths(paths))), len(paths)

    return round_timer


def _onnx_file(spec: str, backend: str) -> tuple[Path | None, str]:
    """The ONNX file that ``spec`` names (a path ending in .onnx, or a bundled model's) and the name
    its errors give, else (None, spec)."""
    if spec.lower().endswith(".onnx"):
        if backend == "torch":
            raise ConfigError(f"{spec}: an ONNX file runs in ONNX Runtime or OpenVINO, not the torch backend")
        if not Path(spec).is_file():
            raise MissingError(f"{spec}: no such ONNX file")
        return Path(spec), spec
    bundled = bundled_name(spec)  # a bare name that is also a path on disk is refused as ambiguous
    if backend != "torch" and bundled is not None and (BUNDLED_DIR / f"{bundled}.onnx").is_file():
        return BUNDLED_DIR / f"{bundled}.onnx", bundled
    return None, spec


def bundled_onnx_file(spec: str) -> Path | None:
    """The ONNX file of the bundled model ``spec`` names (``kolektorsdd``, ``bundled:neu``), else None."""
    return None if spec.lower().endswith(".onnx") else _onnx_file(spec, "onnxruntime")[0]


def exported_file(spec: str, threads: int | None) -> Path:
    """A trained model's current export cached beside it (made now if there is none), for an engine
    that reads ONNX files."""
    metadata_path = resolve_weights(spec)
    if cached_export(metadata_path, threads, source=spec) is None:
        _trained_model(spec, metadata_path, "onnxruntime", threads)  # exports and caches it
        if cached_export(metadata_path, threads, source=spec) is None:
            raise ModelError(
                f"{spec}: its folder is read-only, so its ONNX export cannot be cached there; "
                "make one with 'lwcnn export' and give that .onnx file"
            )
    return Path(metadata_path).with_suffix(".onnx")


def _trained_model(spec: str, metadata_path: Path, backend: str, threads: int | None) -> Backend:
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
    before they are decoded (default 40 M, as the service's; None: no limit). ``precision``: what
    the ``openvino`` backend computes in (``fp32``, or ``bf16`` on CPUs that have it). ``workers``:
    images :meth:`inspect_paths` inspects at once, each whole (read, network, decision) in its own
    thread through the one model (``threads`` is then each one's share; the service runs its
    concurrent requests through it the same way).

    ``backend="auto"`` (the default of ``lwcnn inspect`` and ``serve``) runs the fastest engine and
    precision measured on this CPU among those whose decisions agree with fp32
    (:mod:`lwcnn.runtime.engine_choice`; ``engine_choice`` says which and why), and a segmenter
    decides at the threshold calibrated for that precision; ``auto_sample``: image files of the
    work to come, to measure on (default: generated ones). The API's default stays ONNX Runtime:
    a script may train with torch after inspecting, and OpenVINO must not share its process.
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        backend: str | Backend = "onnxruntime",
        threads: int | None = None,
        batch_size: int = 1,
        threshold: float | None = None,
        min_area: int | None = None,
        tile_overlap: int = 64,
        ok_classes: Iterable[str] | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        precision: str = "fp32",
        workers: int = 1,
        auto_sample: Sequence[str | Path] = (),
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        # a Backend object is used as it is (training validates its live model this way)
        self.engine_choice: EngineChoice | None = None
        if isinstance(backend, str):
            self.backend, self.engine_choice = open_engine(
                weights, backend, threads, precision, workers, auto_sample
            )
        else:
            self.backend = backend
        self.weights = (
            str(weights) if weights is not None else DEFAULT_MODEL if isinstance(backend, str) else "model"
        )
        card = getattr(self.backend, "card", None) or check_card(self.backend.metadata, self.weights)
        self.card: ModelCard = card
        self.metadata = card.fields  # every field of the model's card, as written
        self.task: str = card.task
        self.classes: list[str] = list(card.classes)
        #: a segmenter's defect types (its classes after the background): one, or K named types
        self.types: list[str] = self.classes[1:] if self.task == "seg" else []
        self.preprocessing: Preprocessing = card.preprocessing
        self.batch_size = batch_size
        calibrated = card.threshold_for(self.backend.precision)
        self.threshold = float(threshold if threshold is not None else calibrated or 0.5)
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
    def engine(self) -> str:
        """The engine and the precision it runs in, e.g. ``onnxruntime fp32`` or ``openvino bf16``."""
        return f"{self.backend.name} {self.backend.precision}"

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
        if self.workers > 1:
            yield from self._inspect_in_pool(paths, keep_pixels)
            return
        pending: list[tuple[_ReadImage, str]] = []
        for name, read in self._read_ahead(paths):
            if isinstance(read, ImageReadError):
                yield from self._flush(pending, keep_pixels)
                pending = []
                yield InspectionFailure(name, str(read))
                continue
            if self.task == "cls":
                pending.append((read, name))
                if len(pending) >= self.batch_size:
                    yield from self._flush(pending, keep_pixels)
                    pending = []
                continue
            yield self._segmented(read, name, keep_pixels)
        yield from self._flush(pending, keep_pixels)

    def _segmented(self, read: _ReadImage, name: str, keep_pixels: bool) -> Inspection | InspectionFailure:
        try:
            result = self._segment(read.image, name, read.scaled, read.network_input)
        except Exception as error:  # one bad image never ends the batch
            return InspectionFailure(name, f"{name}: inspection failed ({error})")
        result.pixels = read.image if keep_pixels else None
        return result

    def _read_ahead(self, paths: Sequence[str | Path]) -> Iterator[tuple[str, _ReadImage | ImageReadError]]:
        """Each path's name and its image read and made ready for the network, or the error that
        reading it raised, in order. Reading runs in a second thread, :data:`READ_AHEAD` images
        ahead: decoding, resizing and normalising (Pillow and NumPy release the GIL) overlap the
        inference of the images before."""

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lwcnn-read")
        window: deque[tuple[str, Future]] = deque()
        try:
            for path in paths:
                window.append((printable_path(path), pool.submit(self._read, path)))
                if len(window) > READ_AHEAD:
                    name, future = window.popleft()
                    yield name, future.result()
            while window:
                name, future = window.popleft()
                yield name, future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _read(self, path: str | Path) -> _ReadImage | ImageReadError:
        """An image file read and made ready for the network, or the error that reading it raised."""
        try:
            image = read_image(path, self.preprocessing.channels, self.max_pixels)
        except ImageReadError as error:
            return error
        except Exception as error:  # a decoder's own failure on a strange file: skip it, not the run
            return ImageReadError(path, f"cannot be decoded ({type(error).__name__}: {error})")
        try:
            if self.task == "cls":
                return _ReadImage(image, network_input=self.preprocessing(image))
            scaled = self.preprocessing.rescale(image)
            return _ReadImage(image, scaled, self._network_input(scaled))
        except Exception:  # inspecting it fails again, and reports the image, in its own turn
            return _ReadImage(image)

    def _inspect_in_pool(
        self, paths: Sequence[str | Path], keep_pixels: bool
    ) -> Iterator[Inspection | InspectionFailure]:
        """:meth:`inspect_paths` with ``workers`` threads, each reading and inspecting whole images
        (a classifier: ``batch_size`` at a time) through the one backend, which runs concurrent
        calls in parallel (ONNX Runtime's session; OpenVINO's streams); results come in order."""

        def inspect_chunk(chunk: Sequence[str | Path]) -> list[Inspection | InspectionFailure]:
            slots: list[Inspection | InspectionFailure | None] = []  # None: classified below
            ready: list[tuple[_ReadImage, str]] = []
            for path in chunk:
                name, read = printable_path(path), self._read(path)
                if isinstance(read, ImageReadError):
                    slots.append(InspectionFailure(name, str(read)))
                elif self.task == "cls":
                    ready.append((read, name))
                    slots.append(None)
                else:
                    slots.append(self._segmented(read, name, keep_pixels))
            classified = iter(self._flush(ready, keep_pixels))
            return [slot if slot is not None else next(classified) for slot in slots]

        size = self.batch_size if self.task == "cls" else 1
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="lwcnn-inspect")
        window: deque[Future] = deque()
        try:
            for chunk in chunks:
                window.append(pool.submit(inspect_chunk, chunk))
                if len(window) >= 2 * self.workers:  # bounded: a folder is not read into memory
                    yield from window.popleft().result()
            while window:
                yield from window.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _flush(
        self, pending: list[tuple[_ReadImage, str]], keep_pixels: bool
    ) -> list[Inspection | InspectionFailure]:
        if not pending:
            return []
        images = [read.image for read, _ in pending]
        ready = [read.network_input for read, _ in pending]
        try:
            results = self._classify(images, [name for _, name in pending], ready)
        except Exception as error:  # one bad image never ends the batch: retry one at a time
            if len(pending) > 1:
                return [r for item in pending for r in self._flush([item], keep_pixels)]
            return [InspectionFailure(pending[0][1], f"{pending[0][1]}: inspection failed ({error})")]
        for result, image in zip(results, images, strict=True):
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
            softmax(self.backend.run(self._batch(images[i : i + self.batch_size]))["logits"], axis=1)
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.classes)), np.float32)

    def _batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self.preprocessing(self._as_model_channels(image)) for image in images])

    def _classify(
        self, images: list[np.ndarray], names: list[str], ready: Sequence[np.ndarray | None] = ()
    ) -> list[Inspection]:
        """``ready``: the images as the network takes them where they were prepared already."""
        start = time.perf_counter()
        known = len(ready) == len(images) and all(x is not None for x in ready)
        outputs = self.backend.run(np.stack(ready) if known else self._batch(images))
        logits = outputs["logits"]
        probabilities = softmax(logits, axis=1)
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
        probability = self._scaled_probability(self.preprocessing.rescale(image))[0].full()
        if probability.shape != image.shape[:2]:
            probability = resize_bilinear(probability, image.shape[:2])
        return probability

    def _network_input(self, image: np.ndarray) -> np.ndarray | None:
        """An image at the model's scale as the network takes it in one pass (normalised, padded to
        the network's stride as in training: pad_to_stride says why), or None when it is larger
        than the working size and goes in tiles."""
        height, width = image.shape[:2]
        tile_h, tile_w = self.preprocessing.size
        if height > tile_h or width > tile_w:
            return None
        batch = self.preprocessing.normalize(image)[None]
        return pad_to_stride(batch, axes=(-2, -1), stride=self.card.network_stride)

    def _scaled_probability(
        self, image: np.ndarray, padded: np.ndarray | None = None, size: tuple[int, int] | None = None
    ) -> tuple[ProbabilityRows, TypeGrid | None]:
        """The defect probability of an image at the model's scale (no other resizing: the network
        is fully convolutional), its rows computed as they are needed where it is one pass; and for
        a model with defect types their shares at the output cells, mapped to pixels of the image
        of ``size`` (its size before scaling). ``padded``: its network input, when made already
        (:meth:`_network_input`)."""
        height, width = image.shape[:2]
        padded = padded if padded is not None else self._network_input(image)
        if padded is None:
            return self._tiled_probability(image, size or (height, width))
        logits = self.backend.run(padded)["logits"]
        if logits.shape[1] == 2:
            difference = logits[0, 1] - logits[0, 0]
            return ProbabilityRows.of_logit_difference(difference, padded.shape[-2:], height, width), None
        probability = defect_probability(logits, padded.shape[-2:], height, width)[0]
        grid = TypeGrid.of_logits(logits[0], padded.shape[-2:], (height, width), size or (height, width))
        return ProbabilityRows.of_array(probability), grid

    def _tiled_probability(
        self, image: np.ndarray, size: tuple[int, int]
    ) -> tuple[ProbabilityRows, TypeGrid | None]:
        """Probabilities of a (scaled) uint8 image larger than the working size, normalised tile by
        tile so that no float copy of a large image is ever made; overlapping tiles are averaged.
        A model with defect types: their shares on one grid (``size``: the image before scaling)."""
        height, width = image.shape[:2]
        tile_h, tile_w = self.preprocessing.size
        tops = _tile_starts(height, tile_h, self.tile_overlap)
        lefts = _tile_starts(width, tile_w, self.tile_overlap)
        boxes = [(t, left) for t in tops for left in lefts]
        total = np.zeros((height, width), np.float32)
        th, tw = min(tile_h, height), min(tile_w, width)
        types = None
        for first in range(0, len(boxes), self.batch_size):
            chunk = boxes[first : first + self.batch_size]
            batch = np.stack(
                [self.preprocessing.normalize(image[t : t + th, left : left + tw]) for t, left in chunk]
            )
            padded = pad_to_stride(batch, axes=(-2, -1), stride=self.card.network_stride)
            logits = self.backend.run(padded)["logits"]
            if logits.shape[1] > 2 and types is None:
                stride = padded.shape[-2] // logits.shape[-2]
                types = TileTypes(logits.shape[1] - 1, (height, width), size, stride)
            for index, ((t, left), probability) in enumerate(
                zip(chunk, defect_probability(logits, padded.shape[-2:], th, tw), strict=True)
            ):
                total[t : t + th, left : left + tw] += probability
                if types is not None:
                    types.add(logits[index], t, left, (th, tw))
        # the tiles form a grid: a pixel's tile count is its row's count times its column's
        rows, cols = np.zeros(height, np.float32), np.zeros(width, np.float32)
        for t in tops:
            rows[t : t + th] += 1.0
        for left in lefts:
            cols[left : left + tw] += 1.0
        for start in range(0, height, STRIP_ROWS):  # in strips: no second full-size array
            strip = slice(start, start + STRIP_ROWS)
            total[strip] /= rows[strip, None] * cols[None, :]
        return ProbabilityRows.of_array(total), types.grid() if types is not None else None

    def _segment(
        self,
        image: np.ndarray,
        name: str,
        scaled: np.ndarray | None = None,
        network_input: np.ndarray | None = None,
    ) -> Inspection:
        """``scaled`` and ``network_input``: the image rescaled by the model's scale and as the
        network takes it, where they were made already (read ahead in another thread)."""
        start = time.perf_counter()
        if scaled is None:
            scaled = self.preprocessing.rescale(image)
        probability, grid = self._scaled_probability(scaled, network_input, image.shape[:2])
        mask, score, rows = native_mask(probability, image.shape[:2], self.threshold)
        regions, area = regions_in_rows(mask, rows)
        type_mask, counted = None, area
        if grid is not None:
            regions, type_mask = typed_regions(mask, regions, grid, self.types)
            # a type marked acceptable (ok_classes) does not make the image defective
            counted = sum(r.area for r in regions if r.type not in self.ok_classes)
        defective = counted >= self.min_area
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
            types=tuple(self.types) if grid is not None else None,
            type_mask=type_mask,
        )


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
