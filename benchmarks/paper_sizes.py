"""Print the paper's size columns (Tables 3-5) side by side with ours.

    python benchmarks/paper_sizes.py [--json]

Sizes only (no timing), so the output is the same on every machine. ``lwcnn profile`` prints the
same table with PyTorch latency added.
"""

from __future__ import annotations

import argparse
import json

from lwcnn.profiling.paper import PAPER_COLUMNS, compare_with_paper
from lwcnn.tables import format_table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = compare_with_paper(latency=False)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    columns = [c for c in PAPER_COLUMNS if c[0] not in ("latency_ms", "paper_time_ms")]
    print(format_table(rows, columns))
    print("\nF: FLOPs = 2 x multiply-accumulates of convolutions and matrix products; W: trainable weights.")


if __name__ == "__main__":
    main()
