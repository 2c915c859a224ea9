"""Daily aggregation of events into ``EventAggregateDaily``.

Usage::

    from django_engagement import aggregate_daily

    aggregate_daily()                      # yesterday, in settings.TIME_ZONE
    aggregate_daily(date(2026, 1, 4))

A day is the local calendar day of ``TIME_ZONE``: events with
``start <= created_at < end`` where ``start``/``end`` are local midnights (so DST
days last 23 or 25 hours). One grouped query per day computes, per event type x
source, the count, distinct users and distinct non-empty anonymous ids, plus one
all-types row (``event_type = source = "*"``) holding the day-wide distinct
counts, which per-type rows cannot be summed into. Rows are upserted and the
day's rows whose key vanished are deleted, in one transaction, so re-running a
day always leaves exactly what the events say.
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

from ..models import EventAggregateDaily, get_event_model

# event_type and source of the day-wide row. Event type codes and sources never
# contain "*", so it cannot collide with a real key.
ALL = "*"

METRICS = ("count", "unique_users", "unique_anonymous")


@dataclass
class AggregationResult:
    """One aggregated day: rows written (including the all-types row), stale rows
    removed and the number of events counted."""

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


def compute_day(day: date_type, *, using: str | None = None) -> list[dict[str, Any]]:
    """The aggregate rows of ``day`` from raw events, in ONE query (a UNION ALL of the
    per-key groups and the day-wide row). Empty when the day has no events.
    ``using``: the database to read (reports pass ``READ_DATABASE``)."""
    start, end = day_bounds(day)
    events = get_event_model()._default_manager.db_manager(using).between(start, end).order_by()
    metrics = {
        "count": models.Count("pk"),
        "unique_users": models.Count("user", distinct=True),
        "unique_anonymous": models.Count(NullIf("anonymous_id", models.Value("")), distinct=True),
    }
    per_key = events.values("event_type", "source").annotate(**metrics)
    # Aggregates over a constant "group" give one row for the whole day.
    whole_day = (
        events.annotate(
            all_types=models.Value(ALL, output_field=models.CharField()),
            all_sources=models.Value(ALL, output_field=models.CharField()),
        )
        .values("all_types", "all_sources")
        .annotate(**metrics)
    )
    # A union takes its column names from the first query: event_type, source, ...
    # order_by(): Django 6.1 applies the model's Meta.ordering to a union.
    return [row for row in per_key.union(whole_day, all=True).order_by() if row["count"]]


def aggregate_daily(date: date_type | None = None) -> AggregationResult:
    """Compute and store the aggregates of ``date`` (default: yesterday, local time).

    Idempotent: rows are upserted on ``(date, event_type, source)`` and rows of
    that day whose key no longer occurs are deleted in the same transaction.
    """
    day = date if date is not None else yesterday()
    rows = compute_day(day)
    stored = EventAggregateDaily._default_manager
    with transaction.atomic(using=stored.db):
        stale = stored.filter(date=day)
        if rows:
            keys = (models.Q(event_type=r["event_type"], source=r["source"]) for r in rows)
            stale = stale.exclude(reduce(or_, keys))
        removed = stale.delete()[0]
        stored.bulk_create(
            [EventAggregateDaily(date=day, **row) for row in rows],
            update_conflicts=True,
            unique_fields=["date", "event_type", "source"],
            update_fields=[*METRICS, "updated_at"],
        )
    events = next((row["count"] for row in rows if row["event_type"] == ALL), 0)
    return AggregationResult(date=day, rows=len(rows), removed=removed, events=events)


def stored_day(day: date_type, *, using: str | None = None) -> list[dict[str, Any]]:
    """The stored aggregate rows of ``day`` in ``compute_day``'s shape (one query)."""
    return list(
        EventAggregateDaily._default_manager.db_manager(using)
        .filter(date=day)
        .order_by()
        .values("event_type", "source", *METRICS)
    )
