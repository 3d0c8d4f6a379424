"""``lwcnn predict``: the class and its probability for each image."""

from __future__ import annotations

import argparse
import json
import sys


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
    import numpy as np
    import torch

    from lwcnn.checkpoints import load_model
    from lwcnn.data.images import ImageReadError, read_image
    from lwcnn.data.preprocessing import Preprocessing

    model, meta = load_model(args.weights)
    if meta["task"] != "cls":
        raise ValueError(f"{args.weights}: a {meta['task']} model; lwcnn predict classifies")
    preprocessing = Preprocessing.from_dict(meta["preprocessing"])
    classes = meta["classes"]
    results, failures = [], 0
    for path in args.images:
        try:
            x = preprocessing(read_image(path, preprocessing.channels))
        except ImageReadError as error:
            print(f"lwcnn predict: error: {error}", file=sys.stderr)
            failures += 1
            continue
        with torch.inference_mode():
            probabilities = torch.softmax(model(torch.from_numpy(x)[None]), dim=1)[0].numpy()
        best = int(np.argmax(probabilities))
        results.append({"image": path, "class": classes[best], "probability": float(probabilities[best])})
        if not args.json:
            print(f"{path}\t{classes[best]}\t{probabilities[best]:.4f}")
    if args.json:
        print(json.dumps(results))
    return 1 if failures else 0
