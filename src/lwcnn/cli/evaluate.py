"""``lwcnn evaluate``: score a trained model on a split of a dataset (by default its own test split)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="accuracy, per-class precision/recall and confusion matrix of a trained model",
        description=(
            "Evaluate a trained classifier on one part of the split it was trained with (so test images "
            "are never training images), or on every image of --data with --split all."
        ),
    )
    parser.add_argument(
        "--weights", required=True, help="trained model: bundled name, .safetensors or run folder"
    )
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--split", default="test", help="part of the model's split (default: test), or 'all'")
    parser.add_argument("--out", help="folder for the confusion matrix PNG and report JSON")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable images (reported) instead of stopping"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.checkpoints import load_model
    from lwcnn.data.classification import scan_classification
    from lwcnn.data.datasets import ClassificationDataset
    from lwcnn.data.preprocessing import Preprocessing
    from lwcnn.data.splits import Split
    from lwcnn.evaluation.classifier import predict_probabilities, score
    from lwcnn.evaluation.metrics import format_confusion
    from lwcnn.evaluation.plots import plot_confusion
    from lwcnn.fileio import atomic_write_json

    model, meta = load_model(args.weights)
    if meta["task"] != "cls":
        raise ValueError(f"{args.weights}: a {meta['task']} model; lwcnn evaluate handles classifiers so far")
    images = scan_classification(args.data, meta.get("data", {}).get("layout", "auto"))
    if list(images.classes) != meta["classes"]:
        raise ValueError(
            f"{args.data}: classes {list(images.classes)} differ from the model's {meta['classes']}"
        )
    if args.split != "all":
        split = Split.from_dict(meta["split"])
        images = images.subset(split.indices(images, args.split))
    dataset = ClassificationDataset(images, Preprocessing.from_dict(meta["preprocessing"]))
    skipped = [str(error) for error in dataset.load_all(args.skip_bad)]
    for line in skipped:
        print(f"lwcnn evaluate: skipped: {line}", file=sys.stderr)
    metrics = score(predict_probabilities(model, dataset, args.batch_size), dataset)
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
