"""The ``lwcnn`` command line: thin subcommands over the Python API.

Each subcommand module defines ``add_parser(subparsers)``; heavy imports (torch) happen inside the
command's function so that ``lwcnn --help`` and the runtime-only commands start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
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
    pretrain,
    profile,
    results,
    serve,
    train,
    watch,
)
from lwcnn.errors import LwcnnError
from lwcnn.fileio import printable_path

SUBCOMMANDS = (
    models,
    profile,
    bench,
    pretrain,
    train,
    evaluate,
    calibrate,
    predict,
    inspect,
    serve,
    watch,
    results,
    export,
    data,
)


#: Set to 1 to see the traceback of every error, the user's included.
DEBUG_ENV = "LWCNN_DEBUG"


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
    """Entry point of the ``lwcnn`` console script; returns the exit status.

    An :class:`~lwcnn.errors.LwcnnError` (the user's to fix), or an operating-system error about a
    named file, is one line and exit status 2; any other exception is a bug and goes through with
    its traceback. ``LWCNN_DEBUG=1`` shows the traceback of every error."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # ``lwcnn train DATA --budget 15m key=value``: positionals after an option
        if getattr(args, "overrides", None) is None or any(item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    configure_logging()
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except (LwcnnError, OSError) as error:
        ours = isinstance(error, LwcnnError)  # some are OSErrors too (MissingError, RunExistsError)
        if not ours and (not error.filename or isinstance(error, BrokenPipeError)):
            if isinstance(error, BrokenPipeError):  # piped into head & co: stop quietly, as Unix tools do
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                return 141
            raise  # an OS error about no file of the user's: a bug, with its traceback
        if debug:
            traceback.print_exc()
        print(f"lwcnn {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except ImportError as error:  # a training command on a runtime-only install
        if debug:
            traceback.print_exc()
        print(
            f"lwcnn {args.command}: error: this command needs the training install "
            f"(pip install 'lwcnn[train]'): {error}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"lwcnn {args.command}: interrupted", file=sys.stderr)
        return 130


class _ProgressSafeHandler(logging.Handler):
    """Log records as plain lines on stderr, written through tqdm so that they do not tear a
    progress bar (stdout stays free for --json results)."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # never let a status line end a run
            self.handleError(record)


def configure_logging() -> None:
    """lwcnn's status lines (logger ``lwcnn``, INFO and up) on stderr, once per process."""
    logger = logging.getLogger("lwcnn")
    if not any(isinstance(h, _ProgressSafeHandler) for h in logger.handlers):
        logger.addHandler(_ProgressSafeHandler())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _one_line(error: BaseException) -> str:
    """The error's message on one line (an OS error: ``FILE: reason``)."""
    if isinstance(error, OSError) and not isinstance(error, LwcnnError) and error.filename:
        return f"{printable_path(error.filename)}: {error.strerror or error}"
    text = " ".join(str(error).split("\n"))
    return text or type(error).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
