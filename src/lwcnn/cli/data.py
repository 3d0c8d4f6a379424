"""``lwcnn data``: dataset utilities. ``lwcnn data synth`` writes synthetic DAGM-layout data."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="dataset utilities", description="Dataset utilities.")
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    synth = commands.add_parser(
        "synth",
        help="write synthetic defect images in the DAGM 2007 layout",
        description=(
            "Write textured images with defects (scratches, spots, blobs, cracks) and coarse elliptical "
            "labels in the DAGM 2007 layout (ClassN/Train|Test/NNNN.PNG, Label/Labels.txt, "
            "Label/NNNN_label.PNG): data for tests, demos and first tries."
        ),
    )
    synth.add_argument("--out", required=True, help="folder to write")
    synth.add_argument("--classes", type=int, default=2, help="texture classes (default 2)")
    synth.add_argument("--train", type=int, default=40, help="training images per class (default 40)")
    synth.add_argument("--test", type=int, default=40, help="test images per class (default 40)")
    synth.add_argument("--defective", type=float, default=0.25, help="fraction with a defect (default 0.25)")
    synth.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--json", action="store_true", help="print a JSON summary")
    synth.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from lwcnn.data.masked_images import scan_dagm
    from lwcnn.data.synth import synthesize_dagm

    out = synthesize_dagm(args.out, args.classes, args.train, args.test, args.defective, args.size, args.seed)
    images = scan_dagm(out)
    summary = {
        "out": str(out),
        "images": len(images),
        "defective": images.defective_count(),
        "classes": args.classes,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['images']} images ({summary['defective']} defective) in DAGM layout to {out}")
    return 0
