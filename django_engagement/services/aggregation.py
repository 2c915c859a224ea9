"""Aggregation of events per day (``EventAggregateDaily``) and per hour, ISO week or
month (``EventPeriodAggregate``).

Usage::

    from django_engagement import aggregate_daily, aggregate_period

    aggregate_daily()                      # yesterday, in settings.TIME_ZONE
    aggregate_daily(date(2026, 1, 4))
    aggregate_period("week", date(2026, 1, 4))   # the ISO week Dec 29 .. Jan 4
    aggregate_period("hour", date(2026, 3, 29))  # the 23 hours of a spring DST day

A day is the local calendar day of ``TIME_ZONE``: events with
``start <= created_at < end`` where ``start``/``end`` are local midnights (so DST
days last 23 or 25 hours). One grouped query per day computes, per event type x
source, the count, distinct users and distinct non-empty anonymous ids, plus the
day-wide totals, stored in ``EventDayTotal`` (distinct counts of a day cannot be
summed from per-type rows, so they do not sit among them: summing ``count`` over
``EventAggregateDaily.objects.filter(date=day)`` gives the day's events). Rows are
upserted and the day's rows whose key vanished are deleted, in one transaction, so
re-running a day always leaves exactly what the events say.

Hours, ISO weeks (Monday to Sunday) and months work alike through
``aggregate_period``: bounds are local times of ``TIME_ZONE`` (an hour is one real
hour, so a DST day has 23 or 25 of them), one grouped query per call buckets the events
into its periods, and totals per period (distinct users and anonymous ids of a week
are not the sum of its days) go to ``EventPeriodTotal``. After commit, every write
bumps the cache version of the days it covers (``services.cache``), so cached reports
over those days are recomputed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from datetime import date as date_type
from functools import reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import NullIf
from django.utils import timezone

from ..models import (
    EventAggregateDaily,
    EventDayTotal,
    EventPeriodAggregate,
    EventPeriodTotal,
    Period,
    get_event_model,
)
from . import cache

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
        transaction.on_commit(lambda: cache.bump_days([day]), using=stored.db)
    return AggregationResult(
        date=day, rows=len(found.rows), removed=removed, events=found.totals["count"]
    )


# -- hours, ISO weeks, months -------------------------------------------------------------

PERIODS = tuple(Period.values)


def period_days(period: str, day: date_type) -> tuple[date_type, date_type]:
    """First and last calendar day of the ``period`` that contains ``day`` (an hour
    gives its day; a week is the ISO week, Monday to Sunday)."""
    if period in (Period.HOUR, Period.DAY):
        return day, day
    if period == Period.WEEK:
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    if period == Period.MONTH:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following - timedelta(days=1)
    raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}.")


def hour_bounds(day: date_type) -> list[tuple[datetime, datetime]]:
    """The hours of ``day`` in ``TIME_ZONE`` as ``[start, end)`` pairs: real hours,
    so 23 on a spring DST day and 25 on an autumn one (the repeated local hour twice,
    with its two offsets)."""
    start, end = day_bounds(day)
    tz = start.tzinfo
    if tz is None:
        return [(start + timedelta(hours=n), start + timedelta(hours=n + 1)) for n in range(24)]
    # Step in UTC: arithmetic on aware datetimes of one zone is wall-clock arithmetic.
    first, last = start.astimezone(UTC), end.astimezone(UTC)
    steps = [first + timedelta(hours=n) for n in range(26) if first + timedelta(hours=n) < last]
    return [(at.astimezone(tz), min(at + timedelta(hours=1), last).astimezone(tz)) for at in steps]


def period_bounds(period: str, day: date_type) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` of each ``period`` that ``aggregate_period(period, day)`` writes:
    the hours of ``day``, or the one day, ISO week or month that contains it."""
    first, last = period_days(period, day)
    if period == Period.HOUR:
        return hour_bounds(day)
    return [(day_bounds(first)[0], day_bounds(last)[1])]


@dataclass
class PeriodAggregationResult:
    """One ``aggregate_period`` call: the period, its first and last day, the number of
    periods written (24 hours, one week...), per-type rows written, stale rows removed
    and the number of events counted."""

    period: str
    first_day: date_type
    last_day: date_type
    periods: int
    rows: int
    removed: int
    events: int


def _bucket(bounds: list[tuple[datetime, datetime]]) -> models.Expression:
    """The index of the period each event falls in, as one SQL ``CASE`` over the bounds
    (portable, and right for any UTC offset, where truncating to hours in UTC is not)."""
    if len(bounds) == 1:
        return models.Value(0)
    return models.Case(
        *(
            models.When(created_at__lt=end, then=models.Value(index))
            for index, (_, end) in enumerate(bounds)
        ),
        output_field=models.IntegerField(),
    )


def compute_periods(bounds: list[tuple[datetime, datetime]]) -> list[DayAggregates]:
    """The aggregates of each consecutive ``[start, end)`` of ``bounds`` from raw events:
    two grouped queries whatever their number (per-key rows, totals per period)."""
    events = (
        get_event_model()
        ._default_manager.between(bounds[0][0], bounds[-1][1])
        .order_by()
        .annotate(bucket=_bucket(bounds))
    )
    found = [DayAggregates(rows=[], totals=dict.fromkeys(METRICS, 0)) for _ in bounds]
    for row in events.values("bucket", "event_type", "source").annotate(**_METRIC_EXPRESSIONS):
        found[row.pop("bucket")].rows.append(row)
    for row in events.values("bucket").annotate(**_METRIC_EXPRESSIONS):
        found[row.pop("bucket")].totals.update(row)
    return found


def aggregate_period(period: str, date: date_type | None = None) -> PeriodAggregationResult:
    """Compute and store the aggregates of the ``period`` (``"hour"``, ``"day"``,
    ``"week"`` or ``"month"``) containing ``date`` (default: yesterday, local time).

    ``"hour"`` writes every hour of that day, ``"week"`` its ISO week, ``"month"`` its
    month, ``"day"`` is ``aggregate_daily``. Idempotent: rows are upserted on
    ``(period, start, event_type, source)``, rows of those periods whose key no longer
    occurs are deleted and each period's ``EventPeriodTotal`` is replaced, in one
    transaction. Raises ``ValueError`` for an unknown period.
    """
    day = date if date is not None else yesterday()
    first, last = period_days(period, day)
    if period == Period.DAY:
        daily = aggregate_daily(day)
        return PeriodAggregationResult(
            period, first, last, 1, rows=daily.rows, removed=daily.removed, events=daily.events
        )
    bounds = period_bounds(period, day)
    found = compute_periods(bounds)
    starts = [start for start, _ in bounds]
    new_rows = [
        EventPeriodAggregate(period=period, start=start, end=end, **row)
        for (start, end), aggregates in zip(bounds, found, strict=True)
        for row in aggregates.rows
    ]
    fresh = {(row.start, row.event_type, row.source) for row in new_rows}
    stored = EventPeriodAggregate._default_manager
    with transaction.atomic(using=stored.db):
        existing = stored.filter(period=period, start__in=starts).values_list(
            "pk", "start", "event_type", "source"
        )
        stale = [pk for pk, *key in existing if tuple(key) not in fresh]
        removed = stored.filter(pk__in=stale).delete()[0] if stale else 0
        stored.bulk_create(
            new_rows,
            update_conflicts=True,
            unique_fields=["period", "start", "event_type", "source"],
            update_fields=["end", *METRICS, "updated_at"],
        )
        EventPeriodTotal._default_manager.bulk_create(
            [
                EventPeriodTotal(period=period, start=start, end=end, **aggregates.totals)
                for (start, end), aggregates in zip(bounds, found, strict=True)
            ],
            update_conflicts=True,
            unique_fields=["period", "start"],
            update_fields=["end", *METRICS, "updated_at"],
        )
        covered = _days(first, last)
        transaction.on_commit(lambda: cache.bump_days(covered), using=stored.db)
    return PeriodAggregationResult(
        period,
        first,
        last,
        len(bounds),
        rows=len(new_rows),
        removed=removed,
        events=sum(aggregates.totals["count"] for aggregates in found),
    )


def _days(first: date_type, last: date_type) -> list[date_type]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def periods_touching(period: str, days: Iterable[date_type]) -> list[date_type]:
    """One representative day per distinct ``period`` that ``days`` touch, in order:
    what a command walks so that a week or month is aggregated once, not once per day."""
    seen: dict[date_type, date_type] = {}
    for day in days:
        first = period_days(period, day)[0]
        seen.setdefault(first, day)
    return sorted(seen.values())
