"""Admin report numbers behind ``reports/*`` (seed 003's admin analytics, generalised).

Usage::

    from django_engagement.services import reports

    reports.daily_summary(date(2026, 1, 4))
    reports.top_values("service_id", date_from=..., date_to=..., limit=20)
    for row in reports.export_rows(day=date(2026, 1, 4), limit=10_000): ...

Daily numbers are read from ``EventAggregateDaily`` when that day has been
aggregated (including the all-types row), else computed from raw events with the
very query ``aggregate_daily`` stores, so both paths give the same numbers.
Days are calendar days of ``TIME_ZONE``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from django.db.models import Count, QuerySet, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from ..conf import engagement_settings
from ..models import get_event_model
from .aggregation import ALL, compute_day, day_bounds, stored_day
from .reading import read_manager

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


def day_rows(day: date) -> list[dict[str, Any]]:
    """Aggregate rows of ``day``: stored ones if the day was aggregated, else computed."""
    rows = stored_day(day, using=engagement_settings.READ_DATABASE)
    if any(row["event_type"] == ALL for row in rows):
        return rows
    return compute_day(day, using=engagement_settings.READ_DATABASE)


def _day_totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    whole_day = next((row for row in rows if row["event_type"] == ALL), None)
    if whole_day is None:
        return {"count": 0, "unique_users": 0, "unique_anonymous": 0}
    return whole_day


def daily_summary(day: date) -> dict[str, Any]:
    """Seed 003's daily summary: totals, distinct users / anonymous ids, events per type
    (largest first)."""
    rows = day_rows(day)
    totals = _day_totals(rows)
    by_type: Counter[str] = Counter()
    for row in rows:
        if row["event_type"] != ALL:
            by_type[row["event_type"]] += row["count"]
    return {
        "date": day.isoformat(),
        "total_events": totals["count"],
        "unique_users": totals["unique_users"],
        "unique_anonymous": totals["unique_anonymous"],
        "events_by_type": dict(sorted(by_type.items(), key=lambda item: (-item[1], item[0]))),
    }


def active_users(day: date) -> dict[str, Any]:
    """Seed 003's active users: distinct signed-in users and anonymous ids of ``day``."""
    totals = _day_totals(day_rows(day))
    return {
        "date": day.isoformat(),
        "daily_active_users": totals["unique_users"],
        "unique_anonymous": totals["unique_anonymous"],
        "total_active": totals["unique_users"] + totals["unique_anonymous"],
    }


def top_values(
    key: str, *, date_from: date, date_to: date, limit: int = 20
) -> list[dict[str, Any]]:
    """Most frequent values of payload key ``key`` over ``date_from..date_to`` (inclusive).

    One grouped query on the JSON key (``data__<key>`` as text); events without the
    key or with a JSON null there are left out. Values are reported as text, the way
    seed 003 shows them, so ``"456"`` and ``456`` count as one value (and both
    databases agree). Ties are ordered by value.
    """
    if not PAYLOAD_KEY_RE.match(key):
        raise ValueError("key must be 1 to 64 letters, digits or underscores.")
    start, end = day_bounds(date_from)[0], day_bounds(date_to)[1]
    path = f"data__{key}"
    return list(
        read_manager(get_event_model())
        .between(start, end)
        .filter(data__has_key=key)
        .exclude(**{path: None})
        .order_by()
        .values(value=Cast(KT(path), TextField()))
        .annotate(count=Count("pk"))
        .order_by("-count", "value")[:limit]
    )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def event_rows(events: QuerySet, *, limit: int | None = None) -> Iterator[tuple[Any, ...]]:
    """``events`` as rows of ``EXPORT_COLUMNS``, newest first (at most ``limit``),
    streamed from one query.

    Bounded memory: ``values_list`` tuples fetched ``EXPORT_CHUNK_SIZE`` at a time (a
    server-side cursor on PostgreSQL). ``id`` is the event's public UUID, ``created_at``
    ISO 8601 in UTC and ``payload`` compact JSON with sorted keys.
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
            _iso(created_at),
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
    events = read_manager(get_event_model()).all()
    if day is not None:
        events = events.between(*day_bounds(day))
    if event_type:
        events = events.filter(event_type=event_type)
    return event_rows(events, limit=limit)
