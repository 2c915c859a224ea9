"""Streamed CSV of events for the changelist's "Export as CSV" action.

Same columns as ``reports/export/``:
``id,created_at,event_type,user_id,anonymous_id,source,ip_address,payload``,
and the same formatting: ``id`` is the event's public UUID (``event_id`` in
the API), ``created_at`` ISO 8601 with ``Z`` for UTC, ``payload`` compact JSON
with sorted keys. Rows stream from a server-side iterator, so memory stays
flat whatever the selection size.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

EXPORT_COLUMNS = (
    "id",
    "created_at",
    "event_type",
    "user_id",
    "anonymous_id",
    "source",
    "ip_address",
    "payload",
)
CHUNK_SIZE = 2000


class _Echo:
    """File-like object whose ``write`` returns the line, for ``csv.writer`` streaming."""

    def write(self, value: str) -> str:
        return value


def event_csv_rows(queryset: QuerySet) -> Iterator[list[Any]]:
    """The header, then one list per event, newest first, read in chunks."""
    yield list(EXPORT_COLUMNS)
    rows = (
        queryset.order_by("-created_at", "-pk")
        .values_list(
            "uuid", "created_at", "event_type", "user_id", "anonymous_id", "source",
            "ip_address", "data",
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )  # fmt: skip
    for uuid, created_at, event_type, user_id, anonymous_id, source, ip, data in rows:
        yield [
            str(uuid),
            created_at.isoformat().replace("+00:00", "Z"),
            event_type,
            "" if user_id is None else user_id,
            anonymous_id,
            source,
            ip or "",
            json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True),
        ]


def stream_csv(rows: Iterator[list[Any]], filename: str) -> StreamingHttpResponse:
    """A ``text/csv`` attachment that writes ``rows`` as they are produced."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def export_filename() -> str:
    return f"events-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
