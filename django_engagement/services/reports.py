"""Admin report numbers behind ``reports/*``, thin callers of ``services.analytics``.

Usage::

    from django_engagement.services import reports

    reports.daily_summary(date(2026, 1, 4))
    reports.top_values("service_id", date_from=..., date_to=..., limit=20)
    reports.period_summary(date(2026, 1, 1), date(2026, 1, 31))
    reports.user_activity(7, date_from=date(2026, 1, 1), date_to=date(2026, 1, 31))
    for row in reports.export_rows(day=date(2026, 1, 4), limit=10_000): ...
    for record in reports.export_records(day=date(2026, 1, 4), limit=10_000): ...

Numbers come from ``services.analytics``: the daily aggregates for a whole
aggregated day, raw events otherwise, with the same numbers either way. Days are
calendar days of ``TIME_ZONE``; reads go to ``READ_DATABASE``. The summaries are
cached (``services.cache``, ``CACHE_TIMEOUT``) until aggregation rewrites their days.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Max, Min, QuerySet, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDate
from django.utils import timezone

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


#: Rows of the ranked lists of ``period_summary``.
SUMMARY_TOP = 10


def period_summary(date_from: date, date_to: date, *, top: int = SUMMARY_TOP) -> dict[str, Any]:
    """Totals over ``date_from..date_to`` (inclusive): events, distinct users and anonymous
    ids over the whole period, events per type (ranked) and per day (every day, zeros
    included), the ``top`` users and targets. The weekly and monthly stored reports.

    A fixed number of queries whatever the period's length (``analytics.daily_type_counts``,
    ``unique_visitors``, ``top_users``, ``top_targets``).
    """
    window = analytics.DateWindow(date_from, date_to)
    per_day = analytics.daily_type_counts(window)
    by_type: Counter[str] = sum(per_day.values(), Counter())
    users, anonymous = analytics.unique_visitors(window)
    return {
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "total_events": sum(by_type.values()),
        "unique_users": users,
        "unique_anonymous": anonymous,
        "events_by_type": dict(analytics.ranked(by_type)),
        "events_per_day": [
            {"date": day.isoformat(), "count": sum(per_day.get(day, Counter()).values())}
            for day in window.days()
        ],
        "top_users": analytics.top_users(window, top),
        "top_targets": analytics.top_targets(window, top),
    }


def user_activity(user_id: Any, *, date_from: date, date_to: date) -> dict[str, Any]:
    """One user's events over ``date_from..date_to`` (inclusive): total, active days,
    events per type (ranked) and per day (days with events), first and last event.

    Three queries: the user's name, one grouped query, the first and last event.
    Raises ``LookupError`` when no user has ``user_id``.
    """
    User = get_user_model()
    name = (
        User._default_manager.db_manager(analytics.read_database())
        .filter(pk=user_id)
        .values_list(User.USERNAME_FIELD, flat=True)
        .first()
    )
    if name is None:
        raise LookupError(f"No user with id {user_id}.")
    window = analytics.DateWindow(date_from, date_to)
    tz = timezone.get_default_timezone() if settings.USE_TZ else None
    mine = analytics.events().filter(window.q(), user_id=user_id)
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for row in (
        mine.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "event_type")
        .annotate(count=Count("pk"))
    ):
        per_day[row["day"]][row["event_type"]] += row["count"]
    by_type: Counter[str] = sum(per_day.values(), Counter())
    bounds = mine.aggregate(first=Min("created_at"), last=Max("created_at"))
    return {
        "user_id": analytics.pk_json(User._meta.pk.to_python(user_id)),
        "username": str(name),
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "total_events": sum(by_type.values()),
        "active_days": len(per_day),
        "events_by_type": dict(analytics.ranked(by_type)),
        "events_per_day": [
            {"date": day.isoformat(), "count": sum(per_day[day].values())}
            for day in sorted(per_day)
        ],
        "first_event_at": analytics.iso_timestamp(bounds["first"]),
        "last_event_at": analytics.iso_timestamp(bounds["last"]),
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


def _event_values(events: QuerySet, limit: int | None) -> Iterator[tuple[Any, ...]]:
    """``events`` newest first (at most ``limit``) as raw value tuples, streamed.

    Bounded memory: ``values_list`` tuples fetched ``EXPORT_CHUNK_SIZE`` at a time (a
    server-side cursor on PostgreSQL).
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
    return rows.iterator(chunk_size=EXPORT_CHUNK_SIZE)


def event_rows(events: QuerySet, *, limit: int | None = None) -> Iterator[tuple[Any, ...]]:
    """``events`` as CSV rows of ``EXPORT_COLUMNS``, newest first (at most ``limit``),
    streamed from one query.

    ``id`` is the event's public UUID, ``created_at`` ``analytics.iso_timestamp`` (ISO
    8601 as DRF renders it) and ``payload`` compact JSON with sorted keys.
    """
    for uuid, created_at, kind, user_id, anonymous_id, source, ip, data in _event_values(
        events, limit
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


def event_records(events: QuerySet, *, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """``events`` as JSON objects keyed by ``EXPORT_COLUMNS``, newest first (at most
    ``limit``), streamed from one query: the lines of the JSON Lines export.

    As ``event_rows``, but typed for JSON: ``user_id`` and ``ip_address`` are null when
    absent and ``payload`` is the event's object itself.
    """
    for uuid, created_at, kind, user_id, anonymous_id, source, ip, data in _event_values(
        events, limit
    ):
        yield {
            "id": str(uuid),
            "created_at": analytics.iso_timestamp(created_at),
            "event_type": kind,
            "user_id": None if user_id is None else analytics.pk_json(user_id),
            "anonymous_id": anonymous_id,
            "source": source,
            "ip_address": ip or None,
            "payload": data,
        }


def _export_events(day: date | None, event_type: str | None) -> QuerySet:
    events = analytics.events()
    if day is not None:
        events = events.filter(analytics.DateWindow.single(day).q())
    if event_type:
        events = events.filter(event_type=event_type)
    return events


def export_rows(
    *, day: date | None = None, event_type: str | None = None, limit: int = 10_000
) -> Iterator[tuple[Any, ...]]:
    """The CSV rows of ``reports/export/``: events of ``day`` and ``event_type`` (both
    optional), the newest ``limit`` of them, as ``event_rows`` formats them."""
    return event_rows(_export_events(day, event_type), limit=limit)


def export_records(
    *, day: date | None = None, event_type: str | None = None, limit: int = 10_000
) -> Iterator[dict[str, Any]]:
    """The JSON Lines records of ``reports/export/?format=jsonl``: the same events as
    ``export_rows``, as ``event_records`` shapes them."""
    return event_records(_export_events(day, event_type), limit=limit)
