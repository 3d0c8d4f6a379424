"""What glibc's default handling of large blocks costs a CPU training step, and what
``lwcnn.training.memory.keep_freed_memory`` (which ``lwcnn train`` and ``lwcnn pretrain`` call) saves.

    python -m benchmarks.training_step_memory [--cases cls:256:64:fp32 cls:256:64:bf16 seg:256:32:fp32
        cls:128:64:fp32] [--steps 12] [--rounds 2] [--json]

Each case (task, side, batch, precision) trains lw@0.35 (1 channel, Adam, channels_last, random
data) for a few warm-up steps and then ``--steps`` timed ones, in a child process of its own: once
with glibc's defaults, once with freed memory kept; the two alternate over ``--rounds`` rounds. Per
run: the median step, the CPU seconds in user and kernel mode, the minor page faults and the peak
resident memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

from lwcnn.tables import format_table

CHILD = """
import json, resource, sys, time, torch
from lwcnn.models import create_model
from lwcnn.training.memory import keep_freed_memory
task, side, batch, precision, steps, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
    int(sys.argv[5]), sys.argv[6] == "1"
if keep:
    assert keep_freed_memory()
torch.manual_seed(0)
model = create_model("lw@0.35", task=task, num_classes=2, in_channels=1)
model = model.to(memory_format=torch.channels_last).train()
optimizer = torch.optim.Adam(model.parameters(), 1e-3)
x = torch.randn(batch, 1, side, side).to(memory_format=torch.channels_last)
y = torch.randint(0, 2, (batch,) if task == "cls" else (batch, side // 8, side // 8))
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = model(x)
        if task == "seg":
            out = torch.nn.functional.interpolate(out, size=y.shape[1:])
        loss = torch.nn.functional.cross_entropy(out.float(), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
for _ in range(3):
    step()
before, times = resource.getrusage(resource.RUSAGE_SELF), []
for _ in range(steps):
    started = time.perf_counter()
    step()
    times.append(time.perf_counter() - started)
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"step_ms": 1e3 * sorted(times)[len(times) // 2], "user_s": after.ru_utime - before.ru_utime,
                  "kernel_s": after.ru_stime - before.ru_stime, "faults": after.ru_minflt - before.ru_minflt,
                  "peak_mb": after.ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cases = ["cls:256:64:fp32", "cls:256:64:bf16", "seg:256:32:fp32", "cls:128:64:fp32"]
    parser.add_argument("--cases", nargs="+", default=cases, help="task:side:batch:precision")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for case in args.cases:
        task, side, batch, precision = case.split(":")
        runs: dict[str, list[dict]] = {"glibc default": [], "freed memory kept": []}
        for _ in range(args.rounds):
            for mode, keep in (("glibc default", "0"), ("freed memory kept", "1")):
                command = [sys.executable, "-c", CHILD, task, side, batch, precision, str(args.steps), keep]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                runs[mode].append(json.loads(done.stdout.strip().splitlines()[-1]))
        for mode, measured in runs.items():
            rows.append({
                "case": f"{task} {side}x{side} batch {batch} {precision}", "memory": mode,
                **{key: float(np.median([m[key] for m in measured])) for key in measured[0]},
            })  # fmt: skip
    if args.json:
        print(json.dumps(rows))
        return
    print(f"lw@0.35, 1 channel, {args.steps} timed steps a run, medians of {args.rounds} alternating runs")
    print(format_table(rows, [
        ("case", "case"), ("memory", "memory"), ("step_ms", "ms/step", ".0f"), ("user_s", "user s", ".1f"),
        ("kernel_s", "kernel s", ".1f"), ("faults", "page faults", ".0f"), ("peak_mb", "peak MB", ".0f"),
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
