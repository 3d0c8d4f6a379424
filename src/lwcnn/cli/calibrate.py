"""``lwcnn calibrate``: choose a segmenter's decision threshold for a target escape rate."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="pick a segmenter's threshold for a target escape rate and store it in the model",
        description=(
            "Run a trained segmenter over a part of its own split (default: val), find the pixel "
            "threshold that lets at most --escape-rate of the defective images through while passing "
            "as many defect-free images as possible, and store it (and --min-area) in the model's "
            "metadata, where lwcnn inspect, serve and export read it. The model's recorded test "
            "figures are measured again at the new threshold (the test images play no part in "
            "choosing it). Re-export ONNX files afterwards."
        ),
    )
    parser.add_argument(
        "--weights", required=True, help="trained segmenter: .safetensors, .json or run folder"
    )
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument(
        "--split", default="val", help="part of the model's split to calibrate on (default: val)"
    )
    parser.add_argument(
        "--escape-rate", type=float, default=0.0,
        help="largest share of defective images allowed to pass as OK (default 0: catch them all)",
    )  # fmt: skip
    parser.add_argument(
        "--min-area", type=int, help="defect pixels that make an image defective (default: the model's)"
    )
    parser.add_argument("--dry-run", action="store_true", help="report the threshold without storing it")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.evaluation.calibration import calibrate_model

    result = calibrate_model(
        args.weights, args.data, args.split, args.escape_rate, args.min_area,
        store=not args.dry_run, show_progress=not args.json,
    )  # fmt: skip
    min_area = result["min_area"]
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"threshold {result['threshold']:.6f} (min area {min_area} px) on {result['n']} {args.split} images "
        f"({result['defective']} defective): TPR {result['tpr']:.4f}, TNR {result['tnr']:.4f}"
    )
    print(f"stored in {result['written']}" if not args.dry_run else "not stored (--dry-run)")
    if "test" in result:
        figures = ", ".join(f"{k} {v:.4f}" for k, v in result["test"].items() if k != "n" and v is not None)
        print(
            f"test split at this threshold (recorded in the model): {figures} on {result['test']['n']} images"
        )
    return 0
