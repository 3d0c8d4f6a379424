"""``lwcnn evaluate``: score a trained model on a split of a dataset (by default its own test split)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a trained model: accuracy and confusion (classifier), TPR/TNR/mAcc/AP/IoU (segmenter)",
        description=(
            "Evaluate a trained model on one part of the split it was trained with (so test images are "
            "never training images), or on every image of --data with --split all. A classifier gets "
            "accuracy, per-class precision/recall and a confusion matrix; a segmenter image-level TPR, "
            "TNR, mAcc, accuracy, error escape rate and AP, and pixel IoU and Dice, on whole images "
            "through the inspection engine."
        ),
    )
    parser.add_argument(
        "--weights", required=True, help="trained model: bundled name, .safetensors or run folder"
    )
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--split", default="test", help="part of the model's split (default: test), or 'all'")
    parser.add_argument(
        "--out", help="folder for report.json and pictures (confusion matrix; segmenter: worst cases)"
    )
    parser.add_argument(
        "--overlays", action="store_true", help="segmenter: a comparison picture of every image in --out"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable images (reported) instead of stopping"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.checkpoints import read_metadata
    from lwcnn.evaluation.classifier import evaluate_classifier
    from lwcnn.evaluation.metrics import format_confusion
    from lwcnn.evaluation.plots import plot_confusion
    from lwcnn.fileio import atomic_write_json

    meta = read_metadata(args.weights)
    if meta["task"] == "seg":
        return run_segmenter(args, meta)
    metrics, skipped = evaluate_classifier(
        args.weights, args.data, args.split, args.skip_bad, args.batch_size
    )
    for line in skipped:
        print(f"lwcnn evaluate: skipped: {line}", file=sys.stderr)
    report = {
        "weights": str(args.weights),
        "data": str(args.data),
        "split": args.split,
        **metrics,
        "skipped": skipped,
    }
    if args.out:
        out = Path(args.out)
        plot_confusion(
            metrics["confusion"], metrics["classes"], out / "confusion.png", title=f"{args.split} split"
        )
        atomic_write_json(out / "report.json", report)
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"accuracy: {metrics['accuracy']:.4f} ({metrics['correct']}/{metrics['n']}) on the {args.split} split"
    )
    print("\nclass                precision  recall      n")
    for name, values in metrics["per_class"].items():
        p = "-" if values["precision"] is None else f"{values['precision']:.4f}"
        r = "-" if values["recall"] is None else f"{values['recall']:.4f}"
        print(f"{name:20s} {p:>9s}  {r:>6s}  {values['n']:5d}")
    print("\n" + format_confusion(metrics["confusion"], metrics["classes"]))
    if metrics["misclassified"]:
        print("\nmisclassified:")
        for item in metrics["misclassified"]:
            print(f"  {item['path']}: {item['true']} -> {item['predicted']} ({item['probability']:.3f})")
    if args.out:
        print(f"\nconfusion matrix and report written to {args.out}/")
    return 0


def run_segmenter(args: argparse.Namespace, meta: dict) -> int:
    from lwcnn.evaluation.defect_types import format_type_report, type_report
    from lwcnn.evaluation.segmenter import (
        evaluate_segmenter,
        model_part_images,
        segmentation_report,
        worst_cases,
        write_pictures,
    )
    from lwcnn.fileio import atomic_write_json
    from lwcnn.runtime.engine import Inspector

    inspector = Inspector(args.weights)
    images = model_part_images(meta, args.data, args.split)
    outcomes, skipped = evaluate_segmenter(inspector, images, args.skip_bad, show_progress=not args.json)
    for line in skipped:
        print(f"lwcnn evaluate: skipped: {line}", file=sys.stderr)
    report = {
        "weights": str(args.weights),
        "data": str(args.data),
        "split": args.split,
        "threshold": inspector.threshold,
        "min_area": inspector.min_area,
        **segmentation_report(outcomes, per_group=images.layout in ("dagm", "voc")),
        "images": [o.to_dict() for o in outcomes],
        "skipped": skipped,
    }
    typed = [o.types for o in outcomes if o.types is not None]
    if typed:
        report["defect_types"] = type_report(typed, inspector.types)
    if args.out:
        out = Path(args.out)
        if typed:
            from lwcnn.evaluation.plots import plot_confusion

            confusion = report["defect_types"]["confusion"]
            plot_confusion(confusion["matrix"], confusion["labels"], out / "type_confusion.png",
                           title="defect types (rows true, none: missed / false region)")  # fmt: skip
        worst = worst_cases(outcomes)
        if worst:
            write_pictures(inspector, images, worst, out / "worst", sheet=out / "worst.png")
        if args.overlays:
            write_pictures(inspector, images, outcomes, out / "overlays")
        atomic_write_json(out / "report.json", report)
    if args.json:
        print(json.dumps(report))
        return 0
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"{args.split} split: {report['n']} images, {report['tp'] + report['fn']} defective")
    names = {
        "tpr": "TPR (defective found)",
        "tnr": "TNR (defect-free passed)",
        "macc": "mAcc",
        "accuracy": "accuracy (Eq. 10)",
        "escape_rate": "error escape rate",
        "ap": "AP of the image score",
        "iou": "pixel IoU (defective)",
        "dice": "pixel Dice",
    }
    for key, name in names.items():
        print(f"  {name:28s} {fmt(report[key])}")
    missed = [o.path for o in outcomes if o.defective and not o.predicted]
    false_alarms = [o.path for o in outcomes if not o.defective and o.predicted]
    if missed:
        print("missed: " + ", ".join(missed))
    if false_alarms:
        print("false alarms: " + ", ".join(false_alarms))
    if typed:
        print("per defect type:")
        for line in format_type_report(report["defect_types"]):
            print(f"  {line}")
    if args.out:
        print(f"report and pictures of the worst cases written to {args.out}/")
    return 0
