"""What the results database costs on disk: bytes per row of SQLite for a bundled model's results
(the same results recorded ``--rows`` times under new watched paths, as ``lwcnn watch`` records them).

    python -m benchmarks.ledger_size --rows 5000 --weights kolektorsdd
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lwcnn.runtime import Inspector
from lwcnn.station.ledger import open_ledger
from lwcnn.station.records import Recorder

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--weights", default="kolektorsdd", choices=("kolektorsdd", "neu"))
    args = parser.parse_args()
    inspector = Inspector(args.weights, threads=1)
    results = [inspector.inspect(p) for p in sorted((REPO / "samples" / args.weights).glob("*.jpg"))]
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "results.db"
        ledger = open_ledger(db)
        recorder = Recorder(ledger, inspector, "press-3", "watch")
        for i in range(args.rows):
            name = f"/data/camera1/{i:08d}.jpg"
            recorder.record(
                results[i % len(results)], name, "0" * 64, f"press-3\n{name}\n{'0' * 64}", 1.0, 20.0
            )
        recorder.close()
        ledger.close()
        size = db.stat().st_size
    print("| weights | rows | SQLite bytes | bytes per row | GB a day at 20 images/s |")
    print("|---|---|---|---|---|")
    per_row = size / args.rows
    print(f"| {args.weights} | {args.rows} | {size} | {per_row:.0f} | {per_row * 20 * 86400 / 1e9:.2f} |")


if __name__ == "__main__":
    main()
