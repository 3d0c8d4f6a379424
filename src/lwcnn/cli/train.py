"""``lwcnn train``: train a model from a YAML config, with key=value overrides; resume a run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a config",
        description=(
            "Train a classifier as a YAML config says (see configs/). Any config key can be overridden "
            "as key=value, e.g. data.root=images/ train.epochs=10 model.name=lw@0.75. The run folder "
            "(out=...) receives the split, metrics, checkpoints and plots; an interrupted run continues "
            "with --resume RUN_FOLDER."
        ),
    )
    parser.add_argument("--config", help="YAML config file (e.g. configs/neu.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last epoch")
    parser.add_argument("--init-from", metavar="WEIGHTS", help="fine-tune: start from a trained model")
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable images (reported) instead of stopping"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.config import load_config
    from lwcnn.training.classification import train_classifier

    overrides = list(args.overrides)
    if args.init_from:
        overrides.append(f"train.init_from={args.init_from}")
    if args.skip_bad:
        overrides.append("data.skip_bad=true")
    if args.resume:
        if args.config or overrides:
            raise ValueError("--resume continues a run with its own config: give no --config or overrides")
        config = load_config(None, [f"out={args.resume}"])
    else:
        config = load_config(args.config, overrides)
        if config["task"] != "cls":
            raise ValueError(f"task {config['task']!r}: lwcnn train supports classification ('cls') so far")
    try:
        result = train_classifier(config, resume=bool(args.resume), show_progress=not args.json)
    except KeyboardInterrupt:
        if (Path(config["out"]) / "resume.pt").exists():
            hint = f"continue with: lwcnn train --resume {config['out']}"
        else:
            hint = "no epoch was completed, nothing to resume"
        print(f"lwcnn train: interrupted; {hint}", file=sys.stderr)
        return 130
    if not result.main:  # another rank of a distributed run: rank 0 reports
        return 0
    summary = {
        "run": str(result.run_dir),
        "best_epoch": result.best.get("epoch"),
        "val_accuracy": result.best.get("val_acc") if result.best.get("val_acc", -1) >= 0 else None,
        "test_accuracy": result.test["accuracy"] if result.test else None,
        "test_n": result.test["n"] if result.test else None,
        "skipped_images": len(result.skipped),
        "weights": str(result.run_dir / "best.safetensors"),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"run folder: {summary['run']}")
        print(f"best model: {summary['weights']} (epoch {summary['best_epoch']})")
        if result.test:
            print(f"test accuracy: {result.test['accuracy']:.4f} on {result.test['n']} images")
        if result.skipped:
            print(f"skipped {len(result.skipped)} unreadable image(s)")
    return 0
