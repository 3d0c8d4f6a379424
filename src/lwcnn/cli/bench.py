"""``lwcnn bench``: inference latency and throughput of lw@0.35 and mobilenetv2@0.35, classification
and segmentation, in ONNX Runtime, OpenVINO and PyTorch eager, 1 and 2 threads, batch 1 and 8; and
the bundled models from file to verdict beside their forward pass."""

from __future__ import annotations

import argparse
import json
import sys

from lwcnn.errors import ConfigError
from lwcnn.timing import BENCH_ENGINES as ENGINES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="inference speed in ONNX Runtime, OpenVINO and PyTorch, and from file to verdict",
        description=(
            "Median latency per forward pass and images/s for lw@0.35 and mobilenetv2@0.35 (classification "
            "3x200x200, segmentation 3x512x512 with the same decoder), ONNX Runtime fp32 and int8 (lwcnn's "
            "export with its inference rewrites; int8 calibrated on random inputs; for segmenters also "
            "int8 in the decoder only), OpenVINO fp32 and bf16 where installed and supported, and "
            "PyTorch eager (channels_last), 1 and 2 threads, batch 1 and 8, in --rounds interleaved "
            "rounds. Then, for the bundled models "
            "(neu, kolektorsdd) on generated image files: file to verdict without pictures, with pictures "
            "of the defective images and of all, beside the forward pass of the same engine in the same "
            "interleaved rounds, and a 2048x2048 image in tiles (megapixels/s). "
            "Engines run one at a time. Takes a few minutes."
        ),
    )
    parser.add_argument("--models", nargs="+", default=["lw@0.35", "mobilenetv2@0.35"], metavar="MODEL")
    parser.add_argument("--tasks", nargs="+", choices=("cls", "seg"), default=["cls", "seg"])
    parser.add_argument(
        "--engines", nargs="+", choices=ENGINES, default=None,
        help="default: every engine this install and CPU can run (OpenVINO from the openvino extra)",
    )  # fmt: skip
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per configuration (default 30)")
    parser.add_argument(
        "--budget", type=float, default=10.0, help="seconds per configuration at most (default 10)"
    )
    parser.add_argument(
        "--end-to-end-images", type=int, default=24, metavar="N",
        help="end-to-end rows: N generated image files per bundled model, file to verdict with and "
        "without pictures beside the forward pass, and a 2048x2048 image in tiles (0: none; default 24)",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=int, default=3,
        help="interleaved rounds: every configuration once a round, its figure the median of its rounds "
        "(--runs and --budget shared among them; default 3)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print a JSON list of rows")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lwcnn.profiling.bench import available_engines, end_to_end_rows, run_bench
    from lwcnn.tables import format_table
    from lwcnn.timing import END_TO_END_ENGINES

    if min(args.threads) < 1 or min(args.batch) < 1 or args.runs < 1 or args.rounds < 1:
        raise ConfigError("--threads, --batch, --runs and --rounds must be at least 1")
    if args.end_to_end_images < 0:
        raise ConfigError(f"--end-to-end-images must be 0 or more, got {args.end_to_end_images}")
    available = available_engines()
    if args.engines is None:
        args.engines = available
    elif set(args.engines) - set(available):
        missing = ", ".join(sorted(set(args.engines) - set(available)))
        raise ConfigError(
            f"engine(s) {missing} cannot run here (OpenVINO: pip install 'lwcnn[openvino]'; "
            "bf16 needs a CPU with AMX or AVX-512 BF16)"
        )
    # int8-decoder rows exist for segmenters only
    per_model = sum(
        1 for task in args.tasks for e in args.engines if task == "seg" or e != "onnxruntime-int8-decoder"
    )
    total = len(args.models) * per_model * len(args.threads) * len(args.batch)
    end_to_end = [e for e in args.engines if e in END_TO_END_ENGINES] if args.end_to_end_images else []
    total += len(args.tasks) * len(end_to_end)
    with tqdm(total=total, desc="bench", unit="config", file=sys.stderr, disable=None) as bar:
        rows = run_bench(args.models, args.tasks, args.engines, args.threads, args.batch, args.runs,
                         budget_s=args.budget, progress=lambda row: bar.update(1),
                         rounds=args.rounds)  # fmt: skip
        rows += end_to_end_rows(args.tasks, end_to_end, min(args.threads), args.end_to_end_images,
                                args.rounds, progress=lambda row: bar.update(1))  # fmt: skip
    if args.json:
        print(json.dumps([row.to_dict() for row in rows]))
        return 0
    columns = [("model", "model"), ("task", "task"), ("input", "input"), ("engine", "engine"),
               ("threads", "threads"), ("batch", "batch"), ("runs", "runs"),
               ("latency_ms", "median (ms)", ".2f"), ("images_per_s", "images/s", ".1f")]  # fmt: skip
    forward = [row.to_dict() for row in rows if row.what == "forward pass"]
    print(format_table(forward, columns))
    whole = [row.to_dict() for row in rows if row.what != "forward pass"]
    if whole:
        print(f"\nfrom file to verdict ({args.end_to_end_images} generated files per model, median of "
              f"{args.rounds} interleaved rounds; 'runs' = rounds):")  # fmt: skip
        print(format_table(whole, [
            ("model", "model"), ("engine", "engine"), ("what", "what"), ("latency_ms", "ms/image", ".2f"),
            ("images_per_s", "images/s", ".1f"), ("ratio_to_forward", "x forward", ".2f"),
            ("megapixels_per_s", "Mpixel/s", ".1f"),
        ]))  # fmt: skip
    return 0
