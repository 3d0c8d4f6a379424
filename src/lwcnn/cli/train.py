"""``lwcnn train``: train a model from a YAML config, with key=value overrides; resume a run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lwcnn.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a config",
        description=(
            "Train a classifier (task: cls) or a segmenter (task: seg) as a YAML config says "
            "(see configs/). Any config key can be overridden "
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
    from lwcnn.training import train_model

    overrides = list(args.overrides)
    if args.init_from:
        overrides.append(f"train.init_from={args.init_from}")
    if args.skip_bad:
        overrides.append("data.skip_bad=true")
    if args.resume:
        if args.config or overrides:
            raise ConfigError("--resume continues a run with its own config: give no --config or overrides")
        saved = Path(args.resume) / "config.yaml"
        config = load_config(saved if saved.is_file() else None, [f"out={args.resume}"])
    else:
        config = load_config(args.config, overrides)
    try:
        result = train_model(config, resume=bool(args.resume), show_progress=not args.json)
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
        "task": config["task"],
        "best_epoch": result.best.get("epoch"),
        "skipped_images": len(result.skipped),
        "weights": str(result.run_dir / "best.safetensors"),
    }
    if config["task"] == "cls":
        summary["val_accuracy"] = result.best.get("val_acc")
        summary["test_accuracy"] = result.test["accuracy"] if result.test else None
    else:
        for key in ("ap", "macc", "iou"):
            summary[f"val_{key}"] = result.best.get(f"val_{key}")
            summary[f"test_{key}"] = result.test[key] if result.test else None
    summary["test_n"] = result.test["n"] if result.test else None
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"run folder: {summary['run']}")
        print(f"best model: {summary['weights']} (epoch {summary['best_epoch']})")
        if result.test and config["task"] == "cls":
            print(f"test accuracy: {result.test['accuracy']:.4f} on {result.test['n']} images")
        elif result.test:
            figures = ", ".join(
                f"{k} {result.test[k]:.4f}"
                for k in ("ap", "macc", "tpr", "tnr", "iou")
                if result.test[k] is not None
            )
            print(
                f"test: {figures} on {result.test['n']} images "
                f"(worst cases: {result.run_dir / 'test_worst.png'})"
            )
        if result.skipped:
            print(f"skipped {len(result.skipped)} unreadable image(s)")
    return 0
