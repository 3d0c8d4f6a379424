"""``lwcnn export``: a trained model as one self-contained ONNX file, optionally int8."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
    from lwcnn.export.precision import choose_precision, precision_line
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
        data, chosen = choose_precision(
            meta, data, str(args.weights), data_root=args.data, calibration_folder=args.calibration,
            calibration_images=args.calibration_images, force=args.force_int8,
        )  # fmt: skip
        summary.update(chosen)
        if not args.json:
            print(precision_line(chosen))
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
