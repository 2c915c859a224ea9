"""The one CSV writer of the package: it neutralises spreadsheet formulas in text cells.

Usage::

    from django_engagement.services.csv_writer import csv_writer

    writer = csv_writer(out)  # follows ENGAGEMENT["CSV_ESCAPE_FORMULAS"] (default True)
    writer.writerow(["id", "anonymous_id"])
    writer.writerows(rows)

Excel, LibreOffice Calc and Google Sheets run a cell that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula ("CSV injection"), and values
such as ``anonymous_id``, usernames and target names come from users. With escaping on,
such a text cell gets a leading single quote (OWASP's advice): a spreadsheet shows it as
text. Only ``str`` cells are touched; numbers the package writes itself (a count, a
negative id, a rate) are data and go out unchanged, whatever their sign. Every CSV of
the package (``reports/export/``, the admin CSV action, ``engagement_report --format
csv``) is written through this module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, Protocol

from ..conf import engagement_settings

__all__ = ["FORMULA_PREFIXES", "CSVWriter", "csv_chunks", "csv_writer", "escape_formula"]

# Rows per chunk handed to a streaming response: one write per chunk, not per row.
CSV_CHUNK_ROWS = 500

# The first characters that make a spreadsheet evaluate a cell (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def escape_formula(value: Any) -> Any:
    """``value`` with a ``'`` prefix when it is text a spreadsheet would run as a formula.

    Anything that is not a ``str`` (int, float, Decimal, None) is returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _escaped(row: Iterable[Any]) -> list[Any]:
    # escape_formula inlined: this runs once per exported row (one call per row, not cell).
    prefixes = FORMULA_PREFIXES
    return [
        "'" + value if isinstance(value, str) and value.startswith(prefixes) else value
        for value in row
    ]


class CSVWriter:
    """``csv.writer`` with formula escaping; ``writerow`` returns what the target's
    ``write`` returned, so an echo object streams lines as ``csv.writer`` allows."""

    def __init__(self, out: _Writable, *, escape_formulas: bool, **fmtparams: Any) -> None:
        self._writer = csv.writer(out, **fmtparams)
        self.escape_formulas = escape_formulas

    def writerow(self, row: Iterable[Any]) -> Any:
        if self.escape_formulas:
            row = _escaped(row)
        return self._writer.writerow(row)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        if self.escape_formulas:
            rows = map(_escaped, rows)
        self._writer.writerows(rows)


def csv_writer(
    out: _Writable, *, escape_formulas: bool | None = None, **fmtparams: Any
) -> CSVWriter:
    """A ``CSVWriter`` on ``out``; ``escape_formulas`` defaults to the
    ``CSV_ESCAPE_FORMULAS`` setting, read now (one file never mixes two rules)."""
    if escape_formulas is None:
        escape_formulas = bool(engagement_settings.CSV_ESCAPE_FORMULAS)
    return CSVWriter(out, escape_formulas=escape_formulas, **fmtparams)


def csv_chunks(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text in chunks of ``CSV_CHUNK_ROWS`` rows, for a ``StreamingHttpResponse``.

    The one CSV streamer of ``reports/export/`` and the admin export action: one
    write per chunk keeps the per-chunk overhead of the response off the hot path,
    and memory stays flat whatever the number of rows.
    """
    buffer = io.StringIO()
    writer = csv_writer(buffer)
    writer.writerow(header)
    rows = iter(rows)
    while batch := list(islice(rows, CSV_CHUNK_ROWS)):
        writer.writerows(batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():  # the header alone, when there are no rows
        yield buffer.getvalue()
