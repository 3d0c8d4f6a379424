"""``lwcnn models``: list the model families and the configurations the paper reports."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the available models",
        description="List the model families of the factory and the configurations the paper reports.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lwcnn.models import model_families
    from lwcnn.tables import format_table

    rows = [
        {
            "family": family.name,
            "width": "-" if family.default_width is None else f"@W (default {family.default_width:g})",
            "paper": ", ".join(family.paper_names),
            "description": family.description,
        }
        for family in model_families()
    ]
    if args.json:
        print(json.dumps({"families": rows}, indent=2))
        return 0
    print(
        format_table(
            rows,
            [
                ("family", "family"),
                ("width", "width"),
                ("paper", "paper configurations"),
                ("description", "description"),
            ],
        )
    )
    print("\nName a model as FAMILY or FAMILY@WIDTH, e.g. lw@0.35, mobilenetv2@1.4, resnetv2-50.")
    print("Every model has a classifier (--task cls) and a segmenter (--task seg) head.")
    return 0
