"""``lwcnn pretrain``: pretrain a backbone on formula-driven images (nothing downloaded), for
``model.init``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lwcnn.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain a backbone on formula-driven textures and synthetic defects (for model.init)",
        description=(
            "Pretrain a backbone with nothing downloaded: textures drawn from formulas (noise, "
            "gratings, dead leaves, fractals, cells, tracks, fibres, pits) and, with the defects "
            "objective, synthetic defects painted into them to find and name; optionally crops of "
            "your own images (--images). Writes RUN/backbone-c1 and RUN/backbone-c3 "
            "(.safetensors + .json) for lwcnn train ... model.init=RUN/backbone-c1.json. The "
            "defaults are the recipe of the bundled backbones (configs/pretrain.yaml); any key can be "
            "overridden as key=value. An interrupted run continues with --resume RUN."
        ),
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--config", help="YAML pretraining config (default: the bundled recipe)")
    parser.add_argument("--out", help="run folder (default: runs/pretrain)")
    parser.add_argument("--model", help="backbone to pretrain, e.g. lw@0.35 (the default), lw@0.75")
    parser.add_argument(
        "--objective", choices=("classify", "defects"), help="the pretext task (default: defects)"
    )
    parser.add_argument("--budget", help="wall-clock budget, e.g. 2h, 30m: the steps are fitted to it")
    parser.add_argument("--steps", type=int, help="training steps (instead of a budget)")
    parser.add_argument("--images", metavar="DIR", help="also cut samples from your own images in DIR")
    parser.add_argument("--resume", metavar="RUN", help="continue the pretraining in this folder")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.config import load_config
    from lwcnn.pretraining import pretrain
    from lwcnn.training.plan import parse_budget

    started = time.monotonic()
    if args.resume:
        if args.config or args.overrides or args.budget or args.steps or args.images or args.model:
            raise ConfigError("--resume continues a run with its own config: give no other settings")
        config = load_config(Path(args.resume) / "config.yaml", [f"out={args.resume}"])
    else:
        overrides = list(args.overrides)
        for flag, key in (("out", "out"), ("model", "model.name"), ("objective", "pretext.objective"),
                          ("steps", "train.steps"), ("images", "data.images")):  # fmt: skip
            if getattr(args, flag) is not None:
                overrides.append(f"{key}={getattr(args, flag)}")
        if args.budget:
            overrides.append(f"train.budget={parse_budget(args.budget)}")
        overrides.insert(0, "task=pretrain")
        config = load_config(args.config, overrides)
    try:
        result = pretrain(config, resume=bool(args.resume), show_progress=not args.json, started=started)
    except KeyboardInterrupt:
        resumable = (Path(config["out"]) / "resume.pt").exists()
        hint = f"continue with: lwcnn pretrain --resume {config['out']}" if resumable else "nothing to resume"
        print(f"lwcnn pretrain: interrupted; {hint}", file=sys.stderr)
        return 130
    summary = {
        "run": str(result.run_dir),
        "steps": result.steps,
        "minutes": round(result.seconds / 60, 2),
        "stopped_early": result.stopped_early,
        "metrics": result.metrics,
        "backbones": [str(p) for p in result.backbones],
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    figures = ", ".join(
        f"{k} {v:.4f}" for k, v in result.metrics.items() if k.endswith(("_acc", "_iou")) and v is not None
    )
    print(f"pretrained {result.steps} steps in {summary['minutes']:.1f} min: {figures}")
    for path in result.backbones:
        print(f"backbone: {path}  (lwcnn train DATA model.init={path})")
    return 0
