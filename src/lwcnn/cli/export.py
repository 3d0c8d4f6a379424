"""``lwcnn export``: a trained model as one self-contained ONNX file."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained model to ONNX",
        description=(
            "Write a trained model as one self-contained ONNX file (no external data) with dynamic batch "
            "and image size; the task, classes, input channels, preprocessing and threshold are stored "
            "in its metadata (key 'lwcnn')."
        ),
    )
    parser.add_argument(
        "--weights", required=True, help="trained model: bundled name, .safetensors or run folder"
    )
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.checkpoints import load_model
    from lwcnn.export import export_onnx

    model, meta = load_model(args.weights)
    data = export_onnx(model, args.out, meta, opset=args.opset)
    summary = {"out": args.out, "bytes": len(data), "model": meta["model"]["name"], "task": meta["task"]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {args.out} ({len(data) / 1024:.0f} KB): {summary['model']} {summary['task']}")
    return 0
