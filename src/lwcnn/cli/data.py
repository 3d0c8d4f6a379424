"""``lwcnn data``: dataset utilities. ``check`` reports what a dataset holds and what is wrong with
it, ``convert`` writes any segmentation layout in lwcnn's own (with preview sheets), ``synth``
writes synthetic DAGM-layout data."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from lwcnn.data.layouts import LAYOUTS

_ALL_LAYOUTS = ("auto", *LAYOUTS["cls"], *LAYOUTS["seg"])


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
    _add_check(commands)
    _add_convert(commands)


def _add_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check",
        help="what a dataset holds and what is wrong with it, before training",
        description=(
            "Recognise DATA's layout and read every image and label: images, defective images and "
            "images per defect type (or per class); errors (unreadable files, labels whose size differs "
            "from their image's, mask values that are no type, labels without images, shapes that cannot "
            "be read, one image under two classes) and warnings (byte-identical images, also across "
            "the dataset's own split; masks without a defect pixel; types or classes with too few "
            "images for a split; images no annotation file lists). Exit status 1 when there are errors. "
            "lwcnn train runs the same checks first."
        ),
    )
    check.add_argument("data", help="the dataset folder")
    check.add_argument(
        "--task", choices=("cls", "seg"), help="classifier or segmenter, for a folder that fits both"
    )
    check.add_argument(
        "--layout", default="auto", choices=_ALL_LAYOUTS, help="the layout (default: recognised)"
    )
    check.add_argument("--json", action="store_true", help="print the whole report as one JSON object")
    check.set_defaults(func=run_check)


def _add_convert(commands: argparse._SubParsersAction) -> None:
    convert = commands.add_parser(
        "convert",
        help="write a segmentation dataset in lwcnn's own layout (images/ + class-index masks/)",
        description=(
            "Read DATA in any segmentation layout lwcnn reads (COCO, LabelMe, YOLO, Pascal VOC, DeepPCB, "
            "KolektorSDD, DAGM, images/ + masks/) and write it to OUT as images/ (copied), masks/ "
            "(one class-index PNG per defective image: 0 good, k the k-th type, in colour in any "
            "viewer) and masks/types.txt: what lwcnn made of the labels, readable by lwcnn train "
            "as it is; or with --to coco as COCO JSON with RLE masks. --preview N adds contact "
            "sheets of N images with their masks over them."
        ),
    )
    convert.add_argument("data", help="the dataset folder")
    convert.add_argument("--out", required=True, help="a new (or empty) folder to write")
    convert.add_argument(
        "--layout", default="auto", choices=("auto", *LAYOUTS["seg"]), help="the layout (default: recognised)"
    )
    convert.add_argument(
        "--to",
        default="masks",
        choices=("masks", "coco"),
        help="masks: lwcnn's images/ + class-index masks/ (default); coco: images/ + annotations/"
        "instances.json with one RLE mask per type and image (for CVAT, Label Studio, pycocotools)",
    )
    convert.add_argument(
        "--preview", type=int, default=0, metavar="N", help="contact sheets of N images, defective first"
    )
    convert.add_argument("--json", action="store_true", help="print a JSON summary")
    convert.set_defaults(func=run_convert)


def _progress(description: str, quiet: bool) -> Any:
    from tqdm import tqdm

    def wrap(items: Iterable[Any], total: int) -> Iterable[Any]:
        return tqdm(
            items, total=total, desc=description, unit="image", file=sys.stderr, disable=quiet or None
        )

    return wrap


def run_check(args: argparse.Namespace) -> int:
    from lwcnn.data.checks import check_dataset

    report = check_dataset(args.data, args.task, args.layout, progress=_progress("check", args.json))
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(f"lwcnn data check: {report.root} ({report.layout} layout, task {report.task})")
        for line in report.lines():
            print(f"  {line}")
    return 1 if report.errors else 0


def run_convert(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from lwcnn.data.convert import convert_dataset
    from lwcnn.data.masked_images import scan_segmentation

    images = scan_segmentation(args.data, args.layout, strict=False)
    result = convert_dataset(
        images, args.out, args.to, args.preview, progress=_progress("convert", args.json)
    )
    problems = [f"{images.root / p.path}: {p.problem}" for p in images.label_problems]
    summary = {**asdict(result), "layout": images.layout, "unusable_labels": problems}
    if args.json:
        print(json.dumps(summary))
        return 0
    written = "masks" if args.to == "masks" else "COCO annotations"
    print(
        f"wrote {result.images} images, {result.masks} {written} of {len(result.types)} type(s) "
        f"({', '.join(result.types)}) from {images.layout} layout to {result.out}"
    )
    for line in (result.skipped + problems)[:10]:
        print(f"  not converted: {line}", file=sys.stderr)
    if len(result.skipped) + len(problems) > 10:
        print(
            f"  ... and {len(result.skipped) + len(problems) - 10} more (lwcnn data check lists them)",
            file=sys.stderr,
        )
    if result.sheets:
        print(f"preview: {len(result.sheets)} sheet(s) in {result.out}/preview")
    return 0


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
