"""Whether two versions of lwcnn give the same `lwcnn inspect` answers and pictures.

    python benchmarks/inspect_parity.py --before OLD/src [--after NEW/src] --weights neu PATH... \
        [--weights kolektorsdd PATH...]

Each ``--weights W PATH...`` group is inspected by both versions (their ``src`` folders on
PYTHONPATH; ``--after`` defaults to the installed lwcnn), and the results are compared row by row
(every field but the timing and the picture paths; scores and probabilities to ``--tolerance``, as
results.json rounds them to 6 decimals) and picture by picture (overlay and mask files, byte for
byte, matched through the rows). Prints one line per group, with the fields that differ and on how
many rows, and the largest score difference; exits 1 if anything differs.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

IGNORED = {"ms", "overlay", "mask"}


def inspect(src: str | None, weights: str, paths: list[str], out: Path, options: list[str]) -> list[dict]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = str(Path(src).resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    command = [
        sys.executable,
        "-m",
        "lwcnn",
        "inspect",
        *paths,
        "--weights",
        weights,
        "--out",
        str(out),
        "--json",
        *options,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1, 3):
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)["results"]


def fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in IGNORED}


def differing_fields(before: dict, after: dict, tolerance: float) -> set[str]:
    """The fields in which two rows differ: numbers (score, probabilities) by more than ``tolerance``."""
    a, b = fields(before), fields(after)
    differ = set(a) ^ set(b)
    for key in set(a) & set(b):
        if key == "probabilities":
            if a[key].keys() != b[key].keys() or any(abs(a[key][c] - b[key][c]) > tolerance for c in a[key]):
                differ.add(key)
        elif key == "score":
            if abs(a[key] - b[key]) > tolerance:
                differ.add(key)
        elif a[key] != b[key]:
            differ.add(key)
    return differ


def same_pictures(before: dict, after: dict) -> bool:
    for key in ("overlay", "mask"):
        if (key in before) != (key in after):
            return False
        if key in before and not filecmp.cmp(before[key], after[key], shallow=False):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", required=True, help="the src folder of the version to compare with")
    parser.add_argument(
        "--after", default=None, help="the src folder of the version under test (default: installed)"
    )
    parser.add_argument("--weights", nargs="+", action="append", required=True, metavar="W PATH",
                        help="a model and the images to inspect with it (repeatable)")  # fmt: skip
    parser.add_argument("--after-option", action="append", default=[], metavar="OPTION",
                        help="an option for the version under test only (repeatable)")  # fmt: skip
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="the largest score difference taken as equal (1e-5)")  # fmt: skip
    args = parser.parse_args()
    differs = False
    with tempfile.TemporaryDirectory() as tmp:
        for number, (weights, *paths) in enumerate(args.weights):
            if not paths:
                raise SystemExit(f"--weights {weights}: give the images to inspect after it")
            old = inspect(args.before, weights, paths, Path(tmp) / f"before-{number}", [])
            new = inspect(args.after, weights, paths, Path(tmp) / f"after-{number}", args.after_option)
            counts: Counter[str] = Counter()
            for a, b in zip(old, new, strict=False):
                counts.update(differing_fields(a, b, args.tolerance))
            rows = len(old) == len(new) and not counts
            pictures = len(old) == len(new) and all(
                same_pictures(a, b) for a, b in zip(old, new, strict=False)
            )
            largest = max((abs(a["score"] - b["score"]) for a, b in zip(old, new, strict=False)), default=0.0)
            defective = sum(r["defective"] for r in new)
            verdict = {True: "identical", False: "DIFFER"}
            where = f" ({', '.join(f'{k} on {n} rows' for k, n in sorted(counts.items()))})" if counts else ""
            print(f"{weights}: {len(old)} / {len(new)} images ({defective} defective): "
                  f"results {verdict[rows]}{where}, largest score difference {largest:.1e}, "
                  f"pictures {verdict[pictures]}")  # fmt: skip
            differs |= not (rows and pictures)
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
