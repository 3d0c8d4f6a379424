"""``lwcnn predict``: the class and its probability for each image (the inspection engine, terse)."""

from __future__ import annotations

import argparse
import json
import sys

from lwcnn.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify images with a trained model",
        description="Print the predicted class and its probability for each image (default model: neu).",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument(
        "--weights", default="neu", help="trained model (default: the bundled NEU classifier)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.runtime import InspectionFailure, Inspector

    inspector = Inspector(args.weights)
    if inspector.task != "cls":
        raise ConfigError(
            f"{args.weights}: a {inspector.task} model; lwcnn predict classifies "
            "(lwcnn inspect runs segmenters)"
        )
    results, failures = [], 0
    for result in inspector.inspect_paths(args.images):
        if isinstance(result, InspectionFailure):
            print(f"lwcnn predict: error: {result.error}", file=sys.stderr)
            failures += 1
            continue
        results.append({"image": result.image, "class": result.verdict, "probability": result.score})
        if not args.json:
            print(f"{result.image}\t{result.verdict}\t{result.score:.4f}")
    if args.json:
        print(json.dumps(results))
    return 1 if failures else 0
