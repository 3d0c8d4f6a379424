"""Which precision an export keeps: int8 (static, calibrated on training images) only where it is
faster on this machine, measured side by side with fp32, and for a classifier with the test
accuracy of each; a segmenter also tries int8 in its decoder only (mixed precision)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lwcnn.data.images import find_images, read_image
from lwcnn.data.preprocessing import Preprocessing
from lwcnn.errors import ConfigError
from lwcnn.export.quantize import classification_accuracy, compare_latency, quantize_onnx


def choose_precision(
    meta: dict[str, Any], fp32: bytes, weights: str, data_root: str | None = None,
    calibration_folder: str | None = None, calibration_images: int = 100, force: bool = False,
) -> tuple[bytes, dict[str, Any]]:  # fmt: skip
    """Quantise the fp32 export of the model ``meta`` describes, time every graph, and return the
    fastest one (with ``force``, the fastest int8 one) and a summary: ``precision``,
    ``calibration_images``, ``NAME_ms`` per graph and, for a classifier whose test part is at hand,
    ``NAME_test_accuracy`` and ``test_n``."""
    preprocessing = Preprocessing.from_dict(meta["preprocessing"])
    paths, test = calibration_and_test(meta, weights, data_root, calibration_folder, calibration_images)
    if not paths:
        raise ConfigError(f"{weights}: no calibration images (give --data or --calibration)")
    calibration = [preprocessing(read_image(p, preprocessing.channels)) for p in paths]
    graphs = {"fp32": fp32, "int8": quantize_onnx(fp32, calibration)}
    if meta["task"] == "seg":  # mixed precision: int8 decoder, fp32 backbone
        graphs["int8-decoder"] = quantize_onnx(fp32, calibration, scope="decoder")
    shape = (1, preprocessing.channels, *preprocessing.size)
    latency = compare_latency(graphs, shape)
    summary: dict[str, Any] = {"calibration_images": len(calibration), "input_shape": list(shape)}
    summary |= {f"{name}_ms": ms for name, ms in latency.items()}
    if test and meta["task"] == "cls":
        test_paths, labels = test
        images = [preprocessing(read_image(p, preprocessing.channels)) for p in test_paths]
        for name, graph in graphs.items():
            summary[f"{name}_test_accuracy"] = classification_accuracy(graph, images, labels)
        summary["test_n"] = len(images)
    candidates = [n for n in graphs if n != "fp32"] if force else list(graphs)
    summary["precision"] = min(candidates, key=latency.__getitem__)
    summary["graphs"] = list(graphs)
    return graphs[summary["precision"]], summary


def precision_line(summary: dict[str, Any]) -> str:
    """One line saying what was timed, what was kept, and the test accuracy of each graph."""
    timings = ", ".join(f"{name} {summary[f'{name}_ms']:.2f} ms" for name in summary["graphs"])
    chosen = summary["precision"]
    line = f"latency (1 thread, input {tuple(summary['input_shape'])}): {timings}; kept {chosen}"
    if chosen == "fp32":
        line += " (int8 is not faster here; --force-int8 keeps the fastest int8)"
    if "test_n" in summary:
        accuracies = ", ".join(f"{n} {summary[f'{n}_test_accuracy']:.4f}" for n in summary["graphs"])
        line += f"; test accuracy on {summary['test_n']} images: {accuracies}"
    return line


def calibration_and_test(
    meta: dict[str, Any], weights: str, data_root: str | None, folder: str | None, count: int
) -> tuple[list[Path], tuple[list[Path], list[int]] | None]:
    """Calibration images (evenly spread over the training part, or a folder's images) and the test
    part with labels when the model's split and data are at hand."""
    from lwcnn.data.classification import scan_classification
    from lwcnn.data.splits import Split

    count = max(1, count)
    if folder:
        found = find_images(Path(folder))
        return found[:: max(1, len(found) // count)][:count], None
    root = data_root or (meta.get("data") or {}).get("root")
    if not root or not Path(root).is_dir() or "split" not in meta or meta["task"] != "cls":
        raise ConfigError(
            f"{weights}: its training data is not at hand; give --data ROOT or --calibration FOLDER"
        )
    images = scan_classification(root, meta["data"].get("layout", "auto"))
    split = Split.from_dict(meta["split"])
    train = split.indices(images, "train")
    calibration = [images.root / images.paths[i] for i in train[:: max(1, len(train) // count)][:count]]
    test = None
    if "test" in split.parts:
        indices = split.indices(images, "test")
        test = ([images.root / images.paths[i] for i in indices], [images.labels[i] for i in indices])
    return calibration, test
