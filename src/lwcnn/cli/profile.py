"""``lwcnn profile``: weights, FLOPs and CPU latency of a model, or of every configuration the
paper reports, side by side with its figures."""

from __future__ import annotations

import argparse
import json

from lwcnn.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="weights, FLOPs and CPU latency of a model",
        description=(
            "Print a model's weights (M), FLOPs (M, counted as 2 x multiply-accumulates of "
            "convolutions and matrix products, the paper's convention) and PyTorch eager CPU "
            "latency (median of many batch-1 runs after warm-up). Without MODEL, profile every "
            "configuration of the paper's Tables 3-5 and print its figures beside ours."
        ),
    )
    parser.add_argument("model", nargs="?", help="model name, e.g. lw@0.35 (omit for the paper table)")
    parser.add_argument("--task", choices=("cls", "seg"), default="cls", help="head (default: cls)")
    parser.add_argument("--classes", type=int, default=None, help="number of classes (seg: default 2)")
    parser.add_argument("--input", default="3x224x224", help="input size CxHxW (default 3x224x224)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for timing (default 1)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs (default 50; 20 per paper row)")
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed runs first (default 10; 3 per paper row)"
    )
    parser.add_argument("--no-latency", action="store_true", help="sizes only, skip timing")
    parser.add_argument(
        "--json", action="store_true", help="print JSON (one object; a list for the paper table)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.profiling import parse_input_shape, profile_model
    from lwcnn.tables import format_table

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    if args.model is None:
        return _paper_table(args)
    if args.task == "cls" and args.classes is None:
        raise ConfigError("--classes is required with --task cls")
    result = profile_model(
        args.model,
        args.task,
        args.classes,
        parse_input_shape(args.input),
        threads=args.threads,
        latency=not args.no_latency,
        warmup=10 if args.warmup is None else args.warmup,
        runs=50 if args.runs is None else args.runs,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    print(
        format_table(
            [result.to_dict()],
            [
                ("model", "model"),
                ("task", "task"),
                ("classes", "classes"),
                ("input", "input"),
                ("params_m", "weights (M)", ".4f"),
                ("flops_m", "FLOPs (M)", ".1f"),
                ("latency_ms", "latency (ms)", ".2f"),
                ("threads", "threads"),
            ],
        )
    )
    print(_footnote(result.latency_ms is not None, result.threads, result.runs))
    return 0


def _paper_table(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lwcnn.profiling.paper import PAPER_COLUMNS, PAPER_ROWS, compare_with_paper
    from lwcnn.tables import format_table

    runs = 20 if args.runs is None else args.runs
    with tqdm(total=len(PAPER_ROWS), desc="profiling", unit="model", disable=args.json) as bar:

        def advance(row: object) -> None:
            bar.set_postfix_str(f"{row.model} {row.task}")  # type: ignore[attr-defined]
            bar.update(1)

        rows = compare_with_paper(
            latency=not args.no_latency,
            threads=args.threads,
            warmup=3 if args.warmup is None else args.warmup,
            runs=runs,
            progress=advance,
        )
    if args.json:
        print(json.dumps(rows))
        return 0
    print(format_table(rows, PAPER_COLUMNS))
    print(
        "\nPaper: Huang et al., Sensors 2020, Tables 3-5 (t on an Intel i3-4010U, TensorFlow). "
        "Tables 3 and 5 are 64-class 3x331x331 and 2-class 3x512x512; Table 4 is NEU, 6 classes, 3x200x200."
    )
    print(_footnote(not args.no_latency, args.threads, runs))
    return 0


def _footnote(timed: bool, threads: int | None, runs: int | None) -> str:
    text = "FLOPs = 2 x multiply-accumulates of convolutions and matrix products (the paper's convention)."
    if timed:
        text += (
            f"\nLatency: PyTorch eager, batch 1, {threads} thread(s), median of {runs} runs after warm-up."
        )
    return text
