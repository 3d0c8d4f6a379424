"""Whether two versions of lwcnn give the same `lwcnn inspect` answers and pictures.

    python benchmarks/inspect_parity.py --before OLD/src [--after NEW/src] --weights neu PATH... \
        [--weights kolektorsdd PATH...]

Each ``--weights W PATH...`` group is inspected by both versions (their ``src`` folders on
PYTHONPATH; ``--after`` defaults to the installed lwcnn), and the results are compared row by row
(every field but the timing and the picture paths) and picture by picture (overlay and mask files,
byte for byte, matched through the rows). Prints one line per group; exits 1 if anything differs.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

IGNORED = {"ms", "overlay", "mask"}


def inspect(src: str | None, weights: str, paths: list[str], out: Path) -> list[dict]:
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
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1, 3):
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)["results"]


def fields(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in IGNORED}


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
    args = parser.parse_args()
    differs = False
    with tempfile.TemporaryDirectory() as tmp:
        for number, (weights, *paths) in enumerate(args.weights):
            if not paths:
                raise SystemExit(f"--weights {weights}: give the images to inspect after it")
            old = inspect(args.before, weights, paths, Path(tmp) / f"before-{number}")
            new = inspect(args.after, weights, paths, Path(tmp) / f"after-{number}")
            rows = len(old) == len(new) and all(
                fields(a) == fields(b) for a, b in zip(old, new, strict=False)
            )
            pictures = len(old) == len(new) and all(
                same_pictures(a, b) for a, b in zip(old, new, strict=False)
            )
            defective = sum(r["defective"] for r in new)
            verdict = {True: "identical", False: "DIFFER"}
            print(f"{weights}: {len(old)} / {len(new)} images ({defective} defective): "
                  f"results {verdict[rows]}, pictures {verdict[pictures]}")  # fmt: skip
            differs |= not (rows and pictures)
    sys.exit(1 if differs else 0)


if __name__ == "__main__":
    main()
