"""Plain-text tables for the terminal (no dependency, no colour: output is also read by scripts)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: A column: (key in the row, header) or (key, header, format spec such as ".1f" or "+.1f").
Column = tuple[str, str] | tuple[str, str, str]


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """Render ``rows`` as an aligned table. Numbers are right-aligned and formatted with the
    column's format spec (``.4g`` if none); ``None`` prints as ``-``."""
    keys = [column[0] for column in columns]
    headers = [column[1] for column in columns]
    formats = [column[2] if len(column) == 3 else ".4g" for column in columns]
    cells = [[_cell(row.get(key), fmt) for key, fmt in zip(keys, formats, strict=True)] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(_is_number(row.get(key)) for row in rows) for key in keys]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, fmt)
    return str(value)
