"""Atomic file writes: a temporary file in the same folder, then a rename, so that a crash or a
kill never leaves a half-written checkpoint, split or report behind."""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the parent folder is created if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _default_file_mode())  # mkstemp makes 0600 files; outputs are for others too
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _default_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


#: The names :func:`atomic_write_bytes` gives its temporary files: ``.NAME.XXXXXXXX.tmp``.
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def remove_stale_temporaries(folder: str | Path, older_than_s: float = 0.0) -> list[Path]:
    """Remove the temporary files that killed atomic writes left in ``folder`` (not below it), those
    last modified more than ``older_than_s`` seconds ago; returns what was removed. Call it where
    this process owns the folder (a run folder, a locked output folder)."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for entry in folder.iterdir():
        try:
            if (
                _TEMPORARY.match(entry.name)
                and entry.is_file()
                and now - entry.stat().st_mtime >= older_than_s
            ):
                entry.unlink()
                removed.append(entry)
        except OSError:  # gone meanwhile, or not ours to remove: leave it
            continue
    return removed


def printable_path(path: str | Path) -> str:
    """``path`` as text that can be written anywhere (UTF-8 files, JSON, a terminal) and read back
    exactly. File names on Linux are bytes; Python keeps bytes that are not UTF-8 as surrogates,
    which no UTF-8 output accepts. A path that is valid UTF-8 is returned unchanged; in any other,
    each byte that is not UTF-8 is written ``\\xNN`` and each backslash ``\\\\`` (Python's
    escapes: ``codecs.escape_decode(text.encode())[0]`` gives the original bytes back)."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = os.fsencode(text)
        return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
