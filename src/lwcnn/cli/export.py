"""``lwcnn export``: a trained model as one self-contained ONNX file, optionally int8."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lwcnn.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX",
        description=(
            "Write a trained model as one self-contained ONNX file (no external data) with dynamic batch "
            "and image size; the task, classes, input channels, preprocessing and threshold are stored "
            "in its metadata (key 'lwcnn'). With --int8, quantise it (static, calibrated on training "
            "images), report the test accuracy and the latency of both, and keep int8 only if it is faster."
        ),
    )
    parser.add_argument(
        "--weights", required=True, help="trained model: bundled name, .safetensors or run folder"
    )
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--int8", action="store_true", help="static int8 quantisation where it is faster")
    parser.add_argument("--force-int8", action="store_true", help="with --int8: keep int8 even if slower")
    parser.add_argument(
        "--data",
        default=None,
        help="with --int8: the training data (default: the root the model was trained on)",
    )
    parser.add_argument(
        "--calibration", default=None, help="with --int8: a folder of images to calibrate on instead"
    )
    parser.add_argument(
        "--calibration-images", type=int, default=100, help="images to calibrate on (default 100)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.checkpoints import load_model
    from lwcnn.errors import OutputError
    from lwcnn.export import export_onnx
    from lwcnn.fileio import atomic_write_bytes

    out = Path(args.out)
    if out.is_dir():  # a folder: the file is named after the weights
        out = out / f"{_weights_name(args.weights)}.onnx"
    model, meta = load_model(args.weights)
    data = export_onnx(model, None, meta, opset=args.opset)
    summary: dict = {
        "out": str(out),
        "model": meta["model"]["name"],
        "task": meta["task"],
        "precision": "fp32",
    }
    if args.int8 or args.force_int8:
        data = _int8(args, meta, data, summary)
    try:
        atomic_write_bytes(out, data)
    except OSError as error:
        raise OutputError(f"{out}: cannot write the ONNX file ({error.strerror or error})") from None
    summary["bytes"] = len(data)
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"wrote {out} ({len(data) / 1024:.0f} KB): "
            f"{summary['model']} {summary['task']} {summary['precision']}"
        )
    return 0


def _weights_name(spec: str) -> str:
    """A file name for the export of ``spec``: a bundled model's name, a run folder's name or a
    weights file's stem."""
    path = Path(str(spec).removeprefix("bundled:"))
    return (path.stem if path.suffix in (".safetensors", ".json") else path.name) or "model"


def _int8(args: argparse.Namespace, meta: dict, fp32: bytes, summary: dict) -> bytes:
    """Quantise; measure; return the fastest graph (int8 only where it pays, unless forced)."""
    from lwcnn.data.images import read_image
    from lwcnn.data.preprocessing import Preprocessing
    from lwcnn.export.quantize import classification_accuracy, compare_latency, quantize_onnx

    preprocessing = Preprocessing.from_dict(meta["preprocessing"])
    calibration_paths, test = _calibration_and_test(args, meta)
    if not calibration_paths:
        raise ConfigError(f"{args.weights}: no calibration images (give --data or --calibration)")
    calibration = [preprocessing(read_image(p, preprocessing.channels)) for p in calibration_paths]
    graphs = {"fp32": fp32, "int8": quantize_onnx(fp32, calibration)}
    if meta["task"] == "seg":  # mixed precision: int8 decoder, fp32 backbone
        graphs["int8-decoder"] = quantize_onnx(fp32, calibration, scope="decoder")
    shape = (1, preprocessing.channels, *preprocessing.size)
    latency = compare_latency(graphs, shape)
    summary.update(calibration_images=len(calibration), **{f"{name}_ms": ms for name, ms in latency.items()})
    if test and meta["task"] == "cls":
        paths, labels = test
        images = [preprocessing(read_image(p, preprocessing.channels)) for p in paths]
        for name, graph in graphs.items():
            summary[f"{name}_test_accuracy"] = classification_accuracy(graph, images, labels)
        summary["test_n"] = len(images)
    candidates = [n for n in graphs if n != "fp32"] if args.force_int8 else list(graphs)
    chosen = min(candidates, key=latency.__getitem__)
    summary["precision"] = chosen
    if not args.json:
        timings = ", ".join(f"{name} {ms:.2f} ms" for name, ms in latency.items())
        line = f"latency (1 thread, input {shape}): {timings}; kept {chosen}"
        if chosen == "fp32":
            line += " (int8 is not faster here; --force-int8 keeps the fastest int8)"
        if "test_n" in summary:
            accuracies = ", ".join(f"{n} {summary[f'{n}_test_accuracy']:.4f}" for n in graphs)
            line += f"; test accuracy on {summary['test_n']} images: {accuracies}"
        print(line)
    return graphs[chosen]


def _calibration_and_test(
    args: argparse.Namespace, meta: dict
) -> tuple[list[Path], tuple[list[Path], list[int]] | None]:
    """Calibration images (evenly spread over the training part, or a folder's images) and the test
    part with labels when the model's split and data are at hand."""
    from lwcnn.data.classification import scan_classification
    from lwcnn.data.images import find_images
    from lwcnn.data.splits import Split

    count = max(1, args.calibration_images)
    test = None
    if args.calibration:
        folder = Path(args.calibration)
        found = find_images(folder)
        calibration = found[:: max(1, len(found) // count)][:count]
    else:
        root = args.data or (meta.get("data") or {}).get("root")
        if not root or not Path(root).is_dir() or "split" not in meta or meta["task"] != "cls":
            raise ConfigError(
                f"{args.weights}: its training data is not at hand; give --data ROOT or --calibration FOLDER"
            )
        images = scan_classification(root, meta["data"].get("layout", "auto"))
        split = Split.from_dict(meta["split"])
        train = split.indices(images, "train")
        calibration = [images.root / images.paths[i] for i in train[:: max(1, len(train) // count)][:count]]
        if "test" in split.parts:
            indices = split.indices(images, "test")
            test = ([images.root / images.paths[i] for i in indices], [images.labels[i] for i in indices])
    return calibration, test
