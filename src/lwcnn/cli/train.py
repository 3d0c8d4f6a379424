"""``lwcnn train``: train a model from a folder of images (a planned config, a time budget) or from a
YAML config, with key=value overrides; cross-validate; resume a run."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwcnn.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a folder of images (or a config)",
        description=(
            "lwcnn train DATA [--budget 15m]: recognise the folder's layout (class folders: a classifier; "
            "images/ + masks/, KolektorSDD, DAGM, VOC boxes, DeepPCB: a segmenter), measure the data, "
            "print a plan (working size, scale, crops, decoder stride, sampling, epochs that fit the "
            "budget on this machine) and train it; the run's config.yaml reproduces it with --config. "
            "Or train as a YAML config says (see configs/). Any config key can be overridden as "
            "key=value, e.g. train.epochs=10 model.name=lw@0.75. The run folder receives the split, "
            "metrics, checkpoints and plots; an interrupted run continues with --resume RUN_FOLDER."
        ),
    )
    parser.add_argument("--config", help="YAML config file (e.g. configs/neu.yaml) instead of a plan")
    parser.add_argument(
        "overrides", nargs="*", metavar="DATA | key=value", help="the data folder, then config overrides"
    )
    parser.add_argument("--out", help="run folder (default: runs/<data folder name>)")
    parser.add_argument(
        "--budget", help="wall-clock budget of the whole run, e.g. 15m, 900s, 1h: epochs fitted to it"
    )
    parser.add_argument(
        "--task", choices=("cls", "seg"), help="classifier or segmenter, for a folder that fits both"
    )
    parser.add_argument(
        "--cv", type=int, metavar="K", help="K-fold cross-validation: K runs, figures as mean and spread"
    )
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last epoch")
    parser.add_argument("--init-from", metavar="WEIGHTS", help="fine-tune: start from a trained model")
    parser.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable images (reported) instead of stopping"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.training import train_model

    started = time.monotonic()  # the budget counts from here: measuring and planning are part of it
    data = [item for item in args.overrides if "=" not in item]
    overrides = [item for item in args.overrides if "=" in item]
    if len(data) > 1:
        raise ConfigError(f"one data folder, got {len(data)} ({', '.join(data)}); overrides are key=value")
    if args.init_from:
        overrides.append(f"train.init_from={args.init_from}")
    if args.skip_bad:
        overrides.append("data.skip_bad=true")
    if args.resume:
        if args.config or overrides or data or args.budget or args.cv:
            raise ConfigError(
                "--resume continues a run with its own config: give no data, config or overrides"
            )
        config = _resumed_config(args.resume)
    else:
        config = _new_config(args, data[0] if data else None, overrides, show=not args.json)
    if config["task"] == "pretrain":
        raise ConfigError("a pretraining config (task: pretrain) is for lwcnn pretrain, not lwcnn train")
    if args.cv or _cross_validation(config):
        code = _run_folds(config, args)
        _write_plan(args, config)
        return code
    try:
        result = train_model(config, resume=bool(args.resume), show_progress=not args.json, started=started)
    except KeyboardInterrupt:
        if (Path(config["out"]) / "resume.pt").exists():
            hint = f"continue with: lwcnn train --resume {config['out']}"
        else:
            hint = "no epoch was completed, nothing to resume"
        print(f"lwcnn train: interrupted; {hint}", file=sys.stderr)
        return 130
    if not result.main:  # another rank of a distributed run: rank 0 reports
        return 0
    _write_plan(args, config)
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
    summary["epochs"] = result.fit.final_epochs if result.fit else config["train"]["epochs"]
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


def _resumed_config(run_dir: str) -> dict[str, Any]:
    from lwcnn.config import load_config

    saved = Path(run_dir) / "config.yaml"
    return load_config(saved if saved.is_file() else None, [f"out={run_dir}"])


def _new_config(
    args: argparse.Namespace, data: str | None, overrides: list[str], show: bool
) -> dict[str, Any]:
    """The config to train: a file's (``--config``, with DATA as its data.root), or one planned from
    DATA; then --out, --budget, --cv and the key=value overrides."""
    from lwcnn.config import load_config
    from lwcnn.training.plan import parse_budget

    if args.out:
        overrides.append(f"out={args.out}")
    if args.budget:
        overrides.append(f"train.budget={parse_budget(args.budget)}")
    if args.cv is not None:
        if args.cv < 2:
            raise ConfigError(f"--cv {args.cv}: cross-validation needs at least 2 folds")
        overrides.append(f"data.split={{folds: {args.cv}, val: 0.2}}")
    if args.config:
        if data:
            overrides.insert(0, f"data.root={data}")
        return load_config(args.config, overrides)
    if data is None:  # key=value overrides alone, on the task's defaults (data.root=... among them)
        if not any(item.startswith("data.root=") for item in overrides):
            raise ConfigError("give the data folder (lwcnn train DATA) or a config (--config FILE)")
        return load_config(None, overrides)
    layout = next((o.partition("=")[2] for o in overrides if o.startswith("data.layout=")), None)
    plan = plan_for(data, args.task, args.out or f"runs/{Path(data).resolve().name}", layout)
    args.planned = plan
    if show:
        from lwcnn.data.statistics import describe

        print(
            f"lwcnn train: {plan.stats.layout} layout ({plan.evidence}), task {plan.stats.task}",
            file=sys.stderr,
        )
        print(f"  {describe(plan.stats)}", file=sys.stderr)
        for reason in plan.plan.reasons:
            print(f"  {reason}", file=sys.stderr)
    return load_config(None, overrides, defaults=plan.plan.config)


@dataclass(frozen=True)
class _Planned:
    """What ``lwcnn train DATA`` found and chose: the statistics, the plan, the layout's evidence."""

    stats: Any
    plan: Any
    evidence: str


def plan_for(data: str, task: str | None, out: str, layout: str | None = None) -> _Planned:
    """Detect ``data``'s layout (or take ``layout``, a ``data.layout=`` override), measure it and
    plan its training (no budget yet: overrides add it)."""
    from lwcnn.data.classification import scan_classification
    from lwcnn.data.layouts import Detected, detect_layout, layout_task
    from lwcnn.data.masked_images import scan_segmentation
    from lwcnn.data.statistics import measure_dataset
    from lwcnn.training.plan import plan_training

    if layout and layout != "auto":
        detected = Detected(task or layout_task(layout), layout, f"data.layout={layout}")
    else:
        detected = detect_layout(data, task)
    if detected.task == "cls":
        images: Any = scan_classification(data, detected.layout)
        own_split = bool(images.parts)  # train/ + test/ folders of class folders
    else:
        images = scan_segmentation(data, detected.layout)
        own_split = any(sample.part for sample in images.samples)
    stats = measure_dataset(images, detected.task)
    return _Planned(stats, plan_training(stats, data, out, own_split), detected.evidence)


def _write_plan(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """``plan.json`` in the run folder: the layout, the data's statistics and the reasons."""
    planned = getattr(args, "planned", None)
    if planned is None:
        return
    from lwcnn.fileio import atomic_write_json

    atomic_write_json(
        Path(config["out"]) / "plan.json",
        {
            "layout": planned.stats.layout,
            "evidence": planned.evidence,
            "statistics": planned.stats.to_dict(),
            "reasons": planned.plan.reasons,
        },
    )


def _cross_validation(config: dict[str, Any]) -> bool:
    """Whether the split asks for every fold (``{folds: K}`` or a folds file, no ``test_fold``)."""
    from lwcnn.training.folds import count_folds

    split = config["data"]["split"]
    return count_folds(split) is not None and "test_fold" not in split


def _run_folds(config: dict[str, Any], args: argparse.Namespace) -> int:
    from lwcnn.training.folds import folds_table, train_folds

    summary = train_folds(config, show_progress=not args.json)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"cross-validation, {summary['folds']} folds ({config['out']}/cv.json):")
    for line in folds_table(summary):
        print(f"  {line}")
    return 0
