"""Would ``torch.compile`` pay for a budgeted CPU training run? A training step of lw@0.35 in eager
mode against the same step compiled, timed interleaved in one process, and the compile's own cost.

    python -m benchmarks.compile_training_step [--task cls] [--side 256] [--batch 32] [--threads 2]
        [--steps 8] [--warm-cache] [--json]

Both models start from the same seed (1 channel, channels_last, Adam 2e-3, random data; a
classifier pools as the one command's do, ``avgmax``). "compile s" is the wall time of compiling
plus the first two compiled steps; each later input size would compile again. It is cold (a
fresh, empty compile cache, as on a machine that never compiled this model) unless
``--warm-cache`` keeps the user's cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

if "--warm-cache" not in sys.argv:  # read when torch's compiler loads, so set before importing it
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="lwcnn-compile-")

import torch
import torch.nn.functional as F

from lwcnn.models import create_model
from lwcnn.tables import format_table


def _stepper(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=("cls", "seg"), default="cls")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="timed steps of each, interleaved")
    parser.add_argument(
        "--warm-cache", action="store_true", help="keep torch's compile cache (default: a fresh one)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        pool = {"pool": "avgmax"} if args.task == "cls" else {}
        built = create_model("lw@0.35", task=args.task, num_classes=2, in_channels=1, **pool)
        return built.to(memory_format=torch.channels_last).train()

    x = torch.randn(args.batch, 1, args.side, args.side).contiguous(memory_format=torch.channels_last)
    out_side = args.side // 8  # the segmenter's logits are at stride 8
    y = torch.randint(0, 2, (args.batch,) if args.task == "cls" else (args.batch, out_side, out_side))
    eager = _stepper(model(), x, y)
    start = time.perf_counter()
    compiled = _stepper(torch.compile(model()), x, y)
    compiled()
    compiled()
    compile_s = time.perf_counter() - start
    times: dict[str, list[float]] = {"eager": [], "compiled": []}
    for _ in range(args.steps):
        for name, step in (("eager", eager), ("compiled", compiled)):
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    eager_s, compiled_s = (statistics.median(times[name]) for name in ("eager", "compiled"))
    row = {
        "case": f"{args.task} {args.side} px, batch {args.batch}, {args.threads} threads",
        "eager s": round(eager_s, 3),
        "compiled s": round(compiled_s, 3),
        "speed-up": round(eager_s / compiled_s, 2),
        "compile s": round(compile_s, 1),
    }
    if args.json:
        print(json.dumps(row))
        return
    print(format_table([row], [(key, key) for key in row]))


if __name__ == "__main__":
    main()
