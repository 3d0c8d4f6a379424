"""``lwcnn calibrate``: choose a segmenter's decision threshold for a target escape rate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


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
    parser.add_argument(
        "--force", action="store_true",
        help="store the threshold even when it rejects most good parts (refused otherwise)",
    )  # fmt: skip
    parser.add_argument(
        "--plot", metavar="PNG",
        help="draw the escape-rate / false-alarm trade-off here (default: tradeoff.png beside the model)",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32",
        help=(
            "fp32 (default): choose the threshold as above. bf16: check the model in OpenVINO bf16 "
            "against fp32 on the same images (a segmenter's threshold calibrated again in bf16, the "
            "same target) and store the check, which lets --backend auto run it in bf16 where every "
            "decision agreed; classifiers too. Needs a CPU with AMX or AVX-512 BF16"
        ),
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.evaluation.calibration import calibrate_model

    if args.precision != "fp32":
        return _check_precision(args)

    result = calibrate_model(
        args.weights, args.data, args.split, args.escape_rate, args.min_area,
        store=not args.dry_run, show_progress=not args.json, force=args.force,
        plot=args.plot or _default_plot(args.weights),
    )  # fmt: skip
    refused = not args.dry_run and not result["stored"]
    if args.json:
        print(json.dumps(result))
        return 1 if refused else 0
    min_area = result["min_area"]
    false_alarms = result["false_alarm_rate"]
    cost = (
        "no defect-free images to count" if false_alarms is None else f"false-alarm rate {false_alarms:.1%}"
    )
    print(
        f"threshold {result['threshold']:.6f} (min area {min_area} px) on {result['n']} {args.split} images "
        f"({result['defective']} defective): TPR {result['tpr']:.4f}, TNR {_fmt(result['tnr'])}; "
        f"it costs {cost}"
    )
    print("trade-off (escape rate -> false-alarm rate, threshold):")
    for point in result["tradeoff"][:8]:
        print(
            f"  {point['escape_rate']:6.1%} -> {_fmt(point['false_alarm_rate'], '.1%')}"
            f"  (threshold {point['threshold']:.4f})"
        )
    if len(result["tradeoff"]) > 8:
        print(f"  ... {len(result['tradeoff']) - 8} more points in --json")
    if "plot" in result:
        print(f"trade-off plot: {result['plot']}")
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        print("not stored (--dry-run)")
    elif refused:
        print(
            f"lwcnn calibrate: not stored: the threshold rejects {false_alarms:.0%} of the good {args.split} "
            "images (store it anyway with --force)",
            file=sys.stderr,
        )
        return 1
    else:
        print(f"stored in {result['written']}")
    if "test" in result:
        figures = ", ".join(f"{k} {v:.4f}" for k, v in result["test"].items() if k != "n" and v is not None)
        print(
            f"test split at this threshold (recorded in the model): {figures} on {result['test']['n']} images"
        )
    return 0


def _check_precision(args: argparse.Namespace) -> int:
    from lwcnn.evaluation.precision import check_precision

    result = check_precision(
        args.weights,
        args.data,
        args.split,
        args.precision,
        store=not args.dry_run,
        show_progress=not args.json,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    decided = f"at its own threshold {result['threshold']:.6f}, " if "threshold" in result else ""
    print(
        f"{result['engine']} {args.precision} {decided}against onnxruntime fp32 on {result['n']} "
        f"{args.split} "
        f"images: {result['n'] - result['differ_count']} decisions the same, {result['differ_count']} not"
        + (f" ({', '.join(result['differ'][:5])})" if result["differ"] else "")
    )
    usable = "may run it" if result["agree"] else f"will not run it in {args.precision}"
    where = "not stored (--dry-run)" if args.dry_run else f"stored in {result['written']}"
    print(f"{where}; --backend auto {usable}")
    return 0


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "n/a" if value is None else format(value, spec)


def _default_plot(weights: str) -> str | None:
    """``tradeoff.png`` in the run folder (or beside the model file); None for a bundled name."""
    path = Path(weights)
    if path.is_dir():
        return str(path / "tradeoff.png")
    if path.suffix in (".json", ".safetensors") and path.parent.is_dir():
        return str(path.with_name(f"{path.stem}.tradeoff.png"))
    return None
