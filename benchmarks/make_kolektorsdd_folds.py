"""Write the committed KolektorSDD cross-validation folds (configs/splits/kolektorsdd-3fold.json).

    python benchmarks/make_kolektorsdd_folds.py [--data ../shared/datasets/kolektorsdd]

Items (kosNN) are never split across folds; byte-identical duplicate images are dropped first.
The file is committed so every run and every reader uses the same folds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lwcnn.data.masked_images import scan_kolektorsdd
from lwcnn.data.splits import grouped_folds
from lwcnn.fileio import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
FOLDS_FILE = ROOT / "configs" / "splits" / "kolektorsdd-3fold.json"


def kolektorsdd_folds(data: str | Path, k: int = 3, seed: int = 0) -> dict:
    images = scan_kolektorsdd(data)
    folds = grouped_folds([s.group for s in images.samples], [s.defective for s in images.samples], k, seed)
    return {
        "dataset": "kolektorsdd",
        "k": k,
        "seed": seed,
        "folds": folds,
        "dropped_duplicates": [p.as_posix() for p in images.dropped_duplicates],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "kolektorsdd"))
    args = parser.parse_args()
    folds = kolektorsdd_folds(args.data)
    atomic_write_json(FOLDS_FILE, folds)
    print(json.dumps({"file": str(FOLDS_FILE), "items_per_fold": [len(f) for f in folds["folds"]]}))


if __name__ == "__main__":
    main()
