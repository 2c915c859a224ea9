"""Daily aggregation of events into ``EventAggregateDaily``.

Usage::

    from django_engagement import aggregate_daily

    aggregate_daily()                      # yesterday, in settings.TIME_ZONE
    aggregate_daily(date(2026, 1, 4))

A day is the local calendar day of ``TIME_ZONE``: events with
``start <= created_at < end`` where ``start``/``end`` are local midnights (so DST
days last 23 or 25 hours). One grouped query per day computes, per event type x
source, the count, distinct users and distinct non-empty anonymous ids, plus the
day-wide totals, stored in ``EventDayTotal`` (distinct counts of a day cannot be
summed from per-type rows, so they do not sit among them: summing ``count`` over
``EventAggregateDaily.objects.filter(date=day)`` gives the day's events). Rows are
upserted and the day's rows whose key vanished are deleted, in one transaction, so
re-running a day always leaves exactly what the events say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date as date_type
from datetime import datetime, time, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import NullIf
from django.utils import timezone

from ..models import EventAggregateDaily, EventDayTotal, get_event_model

METRICS = ("count", "unique_users", "unique_anonymous")


@dataclass
class AggregationResult:
    """One aggregated day: per-type rows written, stale rows removed and the number
    of events counted."""

    date: date_type
    rows: int
    removed: int
    events: int


def day_bounds(day: date_type) -> tuple[datetime, datetime]:
    """``[start, end)`` of ``day`` in ``TIME_ZONE`` (aware; naive when ``USE_TZ`` is off).

    The default time zone, not the one a request may have activated: aggregates
    written by a cron job and reports served to a user must cut days alike.
    """
    tz = timezone.get_default_timezone() if settings.USE_TZ else None
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def today() -> date_type:
    """Today in ``TIME_ZONE``."""
    return timezone.localdate(timezone=timezone.get_default_timezone())


def yesterday() -> date_type:
    return today() - timedelta(days=1)


@dataclass(frozen=True)
class DayAggregates:
    """What ``compute_day`` finds for one day: per event type x source rows and the
    day-wide totals (``count``, ``unique_users``, ``unique_anonymous``)."""

    rows: list[dict[str, Any]]
    totals: dict[str, int]


_METRIC_EXPRESSIONS = {
    "count": models.Count("pk"),
    "unique_users": models.Count("user", distinct=True),
    "unique_anonymous": models.Count(NullIf("anonymous_id", models.Value("")), distinct=True),
}


def compute_day(day: date_type) -> DayAggregates:
    """The aggregates of ``day`` from raw events: one grouped query for the per-key
    rows and one aggregate for the day-wide totals. No rows when the day has no events."""
    start, end = day_bounds(day)
    events = get_event_model()._default_manager.between(start, end).order_by()
    rows = list(events.values("event_type", "source").annotate(**_METRIC_EXPRESSIONS))
    totals = events.aggregate(**_METRIC_EXPRESSIONS)
    return DayAggregates(rows=rows, totals=totals)


def aggregate_daily(date: date_type | None = None) -> AggregationResult:
    """Compute and store the aggregates of ``date`` (default: yesterday, local time).

    Idempotent: rows are upserted on ``(date, event_type, source)``, rows of that
    day whose key no longer occurs are deleted and the day's ``EventDayTotal`` is
    replaced, all in one transaction.
    """
    day = date if date is not None else yesterday()
    found = compute_day(day)
    stored = EventAggregateDaily._default_manager
    with transaction.atomic(using=stored.db):
        stale = stored.filter(date=day)
        if found.rows:
            keys = (models.Q(event_type=r["event_type"], source=r["source"]) for r in found.rows)
            stale = stale.exclude(reduce(or_, keys))
        removed = stale.delete()[0]
        stored.bulk_create(
            [EventAggregateDaily(date=day, **row) for row in found.rows],
            update_conflicts=True,
            unique_fields=["date", "event_type", "source"],
            update_fields=[*METRICS, "updated_at"],
        )
        EventDayTotal._default_manager.update_or_create(date=day, defaults=found.totals)
    return AggregationResult(
        date=day, rows=len(found.rows), removed=removed, events=found.totals["count"]
    )
