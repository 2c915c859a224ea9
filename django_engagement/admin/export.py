"""Streamed CSV of events for the changelist's "Export selected events as CSV" action.

The rows are ``services.reports.event_rows``, so the file has the columns and
formatting of ``reports/export/``
(``id,created_at,event_type,user_id,anonymous_id,source,ip_address,payload``) and
memory stays flat whatever the selection size: both are streamed by
``services.csv_writer.csv_chunks``. Text cells that a spreadsheet would
run as formulas are neutralised (``CSV_ESCAPE_FORMULAS``, see ``services.csv_writer``).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from ..services.csv_writer import csv_chunks
from ..services.reports import EXPORT_COLUMNS, event_rows


def export_events_csv(events: QuerySet) -> StreamingHttpResponse:
    """A ``text/csv`` attachment of ``events``, newest first, written while it is read."""
    response = StreamingHttpResponse(
        csv_chunks(EXPORT_COLUMNS, event_rows(events)), content_type="text/csv; charset=utf-8"
    )
    filename = f"events-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
