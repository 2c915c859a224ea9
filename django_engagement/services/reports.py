"""Admin report numbers behind ``reports/*``, thin callers of ``services.analytics``.

Usage::

    from django_engagement.services import reports

    reports.daily_summary(date(2026, 1, 4))
    reports.top_values("service_id", date_from=..., date_to=..., limit=20)
    for row in reports.export_rows(day=date(2026, 1, 4), limit=10_000): ...

Numbers come from ``services.analytics``: the daily aggregates for a whole
aggregated day, raw events otherwise, with the same numbers either way. Days are
calendar days of ``TIME_ZONE``; reads go to ``READ_DATABASE``. The summaries are
cached (``services.cache``, ``CACHE_TIMEOUT``) until aggregation rewrites their days.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.db.models import Count, QuerySet, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from . import analytics, cache

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
EXPORT_CHUNK_SIZE = 2000
PAYLOAD_KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def _one_day(day: date, *args: Any, **kwargs: Any) -> analytics.DateWindow:
    return analytics.DateWindow.single(day)


def _date_range(key: str, *, date_from: date, date_to: date, **kwargs: Any) -> analytics.DateWindow:
    return analytics.DateWindow(date_from, date_to)


@cache.cached("daily_summary", days=_one_day)
def daily_summary(day: date) -> dict[str, Any]:
    """Totals, distinct users / anonymous ids and events per type (ranked) of ``day``."""
    totals = analytics.day_totals(day)
    by_type = analytics.daily_type_counts(analytics.DateWindow.single(day))[day]
    return {
        "date": day.isoformat(),
        "total_events": totals["count"],
        "unique_users": totals["unique_users"],
        "unique_anonymous": totals["unique_anonymous"],
        "events_by_type": dict(analytics.ranked(by_type)),
    }


@cache.cached("active_users", days=_one_day)
def active_users(day: date) -> dict[str, Any]:
    """Distinct signed-in users and anonymous ids of ``day``."""
    totals = analytics.day_totals(day)
    return {
        "date": day.isoformat(),
        "daily_active_users": totals["unique_users"],
        "unique_anonymous": totals["unique_anonymous"],
        "total_active": totals["unique_users"] + totals["unique_anonymous"],
    }


@cache.cached("top_values", days=_date_range)
def top_values(
    key: str, *, date_from: date, date_to: date, limit: int = 20
) -> list[dict[str, Any]]:
    """Most frequent values of payload key ``key`` over ``date_from..date_to`` (inclusive).

    One grouped query on the JSON key (``data__<key>`` as text); events without the
    key or with a JSON null there are left out. Values are reported as text, the way
    the report has always shown them, so ``"456"`` and ``456`` count as one value (and both
    databases agree). Ties are ordered by value.
    """
    if not PAYLOAD_KEY_RE.match(key):
        raise ValueError("key must be 1 to 64 letters, digits or underscores.")
    window = analytics.DateWindow(date_from, date_to)
    path = f"data__{key}"
    return list(
        analytics.events()
        .filter(window.q())
        .filter(data__has_key=key)
        .exclude(**{path: None})
        .order_by()
        .values(value=Cast(KT(path), TextField()))
        .annotate(count=Count("pk"))
        .order_by("-count", "value")[:limit]
    )


def event_rows(events: QuerySet, *, limit: int | None = None) -> Iterator[tuple[Any, ...]]:
    """``events`` as rows of ``EXPORT_COLUMNS``, newest first (at most ``limit``),
    streamed from one query.

    Bounded memory: ``values_list`` tuples fetched ``EXPORT_CHUNK_SIZE`` at a time (a
    server-side cursor on PostgreSQL). ``id`` is the event's public UUID, ``created_at``
    ``analytics.iso_timestamp`` (ISO 8601 in TIME_ZONE) and ``payload`` compact JSON
    with sorted keys.
    """
    rows = events.order_by("-created_at", "-pk").values_list(
        "uuid",
        "created_at",
        "event_type",
        "user_id",
        "anonymous_id",
        "source",
        "ip_address",
        "data",
    )[:limit]
    for uuid, created_at, kind, user_id, anonymous_id, source, ip, data in rows.iterator(
        chunk_size=EXPORT_CHUNK_SIZE
    ):
        yield (
            str(uuid),
            analytics.iso_timestamp(created_at),
            kind,
            "" if user_id is None else user_id,
            anonymous_id,
            source,
            ip or "",
            # Sorted keys: PostgreSQL's jsonb reorders keys, SQLite keeps them as
            # written; sorting makes both databases export the same bytes.
            json.dumps(data, separators=(",", ":"), ensure_ascii=False, sort_keys=True),
        )


def export_rows(
    *, day: date | None = None, event_type: str | None = None, limit: int = 10_000
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``reports/export/``: events of ``day`` and ``event_type`` (both
    optional), the newest ``limit`` of them, as ``event_rows`` formats them."""
    events = analytics.events()
    if day is not None:
        events = events.filter(analytics.DateWindow.single(day).q())
    if event_type:
        events = events.filter(event_type=event_type)
    return event_rows(events, limit=limit)
