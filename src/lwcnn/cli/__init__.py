"""The ``lwcnn`` command line: thin subcommands over the Python API.

Each subcommand module defines ``add_parser(subparsers)``; heavy imports (torch) happen inside the
command's function so that ``lwcnn --help`` and the runtime-only commands start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lwcnn import __version__
from lwcnn.cli import (
    bench,
    calibrate,
    data,
    evaluate,
    export,
    inspect,
    models,
    predict,
    profile,
    serve,
    train,
)
from lwcnn.data.classification import DataError
from lwcnn.data.images import ImageReadError

SUBCOMMANDS = (models, profile, bench, train, evaluate, calibrate, predict, inspect, serve, export, data)


class CLIError(Exception):
    """An error to report to the user as one line, with exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lwcnn",
        description="Compact CNNs for surface defect inspection on ordinary CPUs.",
    )
    parser.add_argument("--version", action="version", version=f"lwcnn {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lwcnn`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, DataError, ImageReadError, FileNotFoundError, FileExistsError) as error:
        print(
            f"lwcnn {args.command}: error: {error}", file=sys.stderr
        )  # one line: errors say file and problem
        return 2
    except ImportError as error:  # a training command on a runtime-only install
        print(
            f"lwcnn {args.command}: error: this command needs the training install "
            f"(pip install 'lwcnn[train]'): {error}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"lwcnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head & co: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
