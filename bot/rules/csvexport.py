"""The one CSV writer every export uses (reports, conversations), for the CLI and the dashboard.

Lazy, a line at a time, so an export of any size streams in constant memory. Cells a
spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage
return) are prefixed with a quote: the text comes from citizens. Masking NIKs is the
caller's job (bot/rules/nik.py), since only the caller knows which cells are free text.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A cell a spreadsheet shows as typed instead of running it."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """CSV text a line at a time: the header, then one line per row, every cell made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: Iterable[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue()

    yield line(header)
    for row in rows:
        yield line(safe_cell(value) for value in row)
