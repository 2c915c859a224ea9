"""Aggregation by hour, ISO week and month: TIME_ZONE bounds (23- and 25-hour DST days
in Europe/Amsterdam), idempotent re-runs, the command's and the task's ``--period``,
and reads of the coarsest period that answers (same numbers as raw events)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_engagement import aggregate_period, tasks
from django_engagement.models import (
    EventAggregateDaily,
    EventDayTotal,
    EventPeriodAggregate,
    EventPeriodTotal,
    get_event_model,
)
from django_engagement.services import aggregation, analytics
from tests.helpers import command_output

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "amsterdam")]

AMS = ZoneInfo("Europe/Amsterdam")
SPRING = date(2026, 3, 29)  # 02:00 CET -> 03:00 CEST: 23 hours
AUTUMN = date(2026, 10, 25)  # 03:00 CEST -> 02:00 CET: 25 hours


@pytest.fixture
def amsterdam(settings):
    settings.TIME_ZONE = "Europe/Amsterdam"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def march(user, other_user):
    """Seven events around the spring DST change, times in UTC (local in comments)."""
    Event = get_event_model()
    rows = [
        (utc(2026, 3, 1, 0, 30), "login", user, ""),  # Mar 1 01:30 CET, first of March
        (utc(2026, 3, 28, 22, 30), "page_view", user, ""),  # Sat 23:30 CET
        (utc(2026, 3, 29, 0, 30), "page_view", other_user, ""),  # Sun 01:30 CET
        (utc(2026, 3, 29, 1, 30), "page_view", None, "anon-1"),  # Sun 03:30 CEST
        (utc(2026, 3, 29, 21, 30), "login", user, ""),  # Sun 23:30 CEST
        (utc(2026, 3, 29, 22, 15), "page_view", user, "anon-2"),  # Mon Mar 30 00:15 CEST
        (utc(2026, 4, 1, 12, 0), "page_view", user, ""),  # April
    ]
    Event.objects.bulk_create(
        Event(created_at=at, event_type=kind, user=who, anonymous_id=anon)
        for at, kind, who, anon in rows
    )


def totals(period: str) -> list[tuple[str, int, int, int]]:
    return [
        (row.start.astimezone(AMS).isoformat(), row.count, row.unique_users, row.unique_anonymous)
        for row in EventPeriodTotal.objects.filter(period=period).order_by("start")
    ]


def test_hours_of_a_day_follow_dst():
    spring, autumn = aggregation.hour_bounds(SPRING), aggregation.hour_bounds(AUTUMN)
    assert (len(spring), len(autumn), len(aggregation.hour_bounds(date(2026, 3, 30)))) == (
        23,
        25,
        24,
    )
    assert [start.isoformat() for start, _ in spring[1:3]] == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
    ]
    assert [start.isoformat() for start, _ in autumn[2:4]] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]
    assert all(
        end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=1)
        for start, end in spring + autumn
    )
    assert spring[-1][1] == datetime(2026, 3, 30, tzinfo=AMS)


def test_iso_week_and_month_bounds():
    assert aggregation.period_days("week", SPRING) == (date(2026, 3, 23), SPRING)
    assert aggregation.period_days("week", date(2026, 1, 1)) == (
        date(2025, 12, 29),
        date(2026, 1, 4),
    )
    assert aggregation.period_days("month", date(2026, 2, 10)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    [(start, end)] = aggregation.period_bounds("month", SPRING)
    assert (start.isoformat(), end.isoformat()) == (
        "2026-03-01T00:00:00+01:00",
        "2026-04-01T00:00:00+02:00",
    )
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(days=31, hours=-1)
    with pytest.raises(ValueError, match="period must be one of hour, day, week, month"):
        aggregation.period_days("year", SPRING)


def test_spring_day_has_23_hour_rows(march):
    result = aggregate_period("hour", SPRING)

    assert (result.periods, result.rows, result.removed, result.events) == (23, 3, 0, 3)
    stored = totals("hour")
    assert len(stored) == 23
    assert [row for row in stored if row[1]] == [
        ("2026-03-29T01:00:00+01:00", 1, 1, 0),
        ("2026-03-29T03:00:00+02:00", 1, 0, 1),
        ("2026-03-29T23:00:00+02:00", 1, 1, 0),
    ]
    assert sorted(
        EventPeriodAggregate.objects.filter(period="hour").values_list("event_type", "count")
    ) == [("login", 1), ("page_view", 1), ("page_view", 1)]


def test_autumn_day_has_25_hour_rows_and_the_repeated_hour_twice(user):
    Event = get_event_model()
    Event.objects.bulk_create(
        [
            Event(event_type="page_view", user=user, created_at=utc(2026, 10, 25, 0, 30)),
            Event(event_type="page_view", user=user, created_at=utc(2026, 10, 25, 1, 30)),
            Event(event_type="page_view", user=user, created_at=utc(2026, 10, 25, 1, 45)),
        ]
    )
    result = aggregate_period("hour", AUTUMN)

    assert (result.periods, result.events) == (25, 3)
    stored = totals("hour")
    assert len(stored) == 25
    assert [row for row in stored if row[1]] == [
        ("2026-10-25T02:00:00+02:00", 1, 1, 0),
        ("2026-10-25T02:00:00+01:00", 2, 1, 0),
    ]


def test_week_and_month_totals_count_distinct_visitors_once(march):
    week = aggregate_period("week", SPRING)
    month = aggregate_period("month", SPRING)

    assert (week.first_day, week.last_day, week.periods, week.events) == (
        date(2026, 3, 23),
        SPRING,
        1,
        4,
    )
    assert totals("week") == [("2026-03-23T00:00:00+01:00", 4, 2, 1)]
    assert totals("month") == [("2026-03-01T00:00:00+01:00", 6, 2, 2)]
    month_rows = EventPeriodAggregate.objects.filter(period="month")
    assert sorted(month_rows.values_list("event_type", "source", "count", "unique_users")) == [
        ("login", "server", 2, 1),
        ("page_view", "server", 4, 2),
    ]
    assert month.rows == 2


def test_rerun_is_idempotent_and_drops_vanished_keys(march):
    aggregate_period("month", SPRING)
    first = list(EventPeriodAggregate.objects.values_list("pk", "event_type", "count"))
    again = aggregate_period("month", SPRING)
    assert (again.rows, again.removed) == (2, 0)
    assert list(EventPeriodAggregate.objects.values_list("pk", "event_type", "count")) == first

    get_event_model().objects.filter(event_type="login").delete()
    after = aggregate_period("month", SPRING)

    assert (after.rows, after.removed, after.events) == (1, 1, 4)
    assert list(EventPeriodAggregate.objects.values_list("event_type", "count")) == [
        ("page_view", 4)
    ]
    assert totals("month") == [("2026-03-01T00:00:00+01:00", 4, 2, 2)]
    assert EventPeriodTotal.objects.count() == 1


def test_day_period_is_the_daily_aggregate(march):
    result = aggregate_period("day", SPRING)

    assert (result.periods, result.rows, result.events) == (1, 2, 3)
    assert EventDayTotal.objects.get(date=SPRING).count == 3
    assert EventPeriodTotal.objects.count() == 0


def test_an_empty_period_is_stored_as_aggregated_zeros():
    result = aggregate_period("week", date(2026, 1, 7))

    assert (result.rows, result.events) == (0, 0)
    assert totals("week") == [("2026-01-05T00:00:00+01:00", 0, 0, 0)]


def test_aggregation_costs_constant_queries(march):
    with CaptureQueriesContext(connection) as hours:
        aggregate_period("hour", SPRING)
    with CaptureQueriesContext(connection) as month:
        aggregate_period("month", SPRING)
    # Two grouped reads, the existing keys, the upserts (rows, totals), the transaction.
    assert len(hours) == len(month) <= 8


# -- command and task ----------------------------------------------------------------------


def test_command_period_week_aggregates_each_touched_week_once(march):
    out = command_output(
        "aggregate_events_daily", "--period", "week", "--date", "2026-03-30", "--days-back", "8"
    )

    assert out.splitlines() == [
        "2026-03-23..2026-03-29: 4 events in 2 rows (0 stale rows removed)",
        "2026-03-30..2026-04-05: 2 events in 1 rows (0 stale rows removed)",
        "Aggregated 2 week(s).",
    ]
    assert [row[:2] for row in totals("week")] == [
        ("2026-03-23T00:00:00+01:00", 4),
        ("2026-03-30T00:00:00+02:00", 2),
    ]


def test_command_period_hour_and_month(march):
    hours = command_output("aggregate_events_daily", "--period", "hour", "--date", "2026-03-29")
    assert hours.splitlines() == [
        "2026-03-29 (23 hours): 3 events in 3 rows (0 stale rows removed)",
        "Aggregated 1 day(s) of hours.",
    ]
    month = command_output("aggregate_events_daily", "--period", "month", "--date", "2026-03-31")
    assert (
        month.splitlines()[0] == "2026-03-01..2026-03-31: 6 events in 2 rows (0 stale rows removed)"
    )


def test_command_default_period_is_day(march):
    out = command_output("aggregate_events_daily", "--date", "2026-03-29")

    assert out.splitlines() == [
        "2026-03-29: 3 events in 2 rows (0 stale rows removed)",
        "Aggregated 1 day(s).",
    ]
    assert EventAggregateDaily.objects.filter(date=SPRING).count() == 2
    assert EventPeriodTotal.objects.count() == 0


def test_command_rejects_an_unknown_period():
    with pytest.raises(CommandError, match="invalid choice: 'year'"):
        call_command("aggregate_events_daily", "--period", "year")


def test_task_accepts_the_period(march):
    tasks.aggregate_daily_task("2026-03-29", period="month")
    tasks.aggregate_daily_task("2026-03-29", "hour")

    assert totals("month")[0][1] == 6
    assert EventPeriodTotal.objects.filter(period="hour").count() == 23
    with pytest.raises(ValueError, match="period must be one of"):
        tasks.aggregate_daily_task("2026-03-29", period="fortnight")


# -- reads: the coarsest period that answers -----------------------------------------------

MARCH = analytics.DateWindow(date(2026, 3, 1), date(2026, 3, 31))
SPRING_WEEK = analytics.DateWindow(date(2026, 3, 23), SPRING)
MARCH_AND_APRIL_FIRST = analytics.DateWindow(date(2026, 3, 1), date(2026, 4, 1))


def read_all() -> dict[str, object]:
    return {
        "march": analytics.type_counts(MARCH),
        "week": analytics.type_counts(SPRING_WEEK),
        "longer": analytics.type_counts(MARCH_AND_APRIL_FIRST),
        "march_visitors": analytics.unique_visitors(MARCH),
        "week_visitors": analytics.unique_visitors(SPRING_WEEK),
    }


EXPECTED = {
    "march": Counter({"page_view": 4, "login": 2}),
    "week": Counter({"page_view": 3, "login": 1}),
    "longer": Counter({"page_view": 5, "login": 2}),
    "march_visitors": (2, 2),
    "week_visitors": (2, 1),
}


def test_periods_answer_with_the_numbers_of_raw_events(march):
    assert read_all() == EXPECTED

    aggregate_period("month", SPRING)
    aggregate_period("week", SPRING)
    assert read_all() == EXPECTED
    # The aggregates answer: the raw events of March can go, the numbers stay.
    get_event_model().objects.filter(created_at__lt=utc(2026, 3, 31, 22)).delete()
    assert read_all() == EXPECTED


def test_weeks_answer_inside_a_window_without_a_whole_month(march):
    aggregate_period("week", SPRING)
    window = analytics.DateWindow(date(2026, 3, 20), SPRING)
    expected = analytics.type_counts(window)
    get_event_model().objects.filter(
        created_at__gte=utc(2026, 3, 22, 23), created_at__lt=utc(2026, 3, 29, 22)
    ).delete()

    assert expected == {"page_view": 3, "login": 1}
    assert analytics.type_counts(window) == expected


def test_months_weeks_days_and_raw_mix_in_one_window(march):
    aggregate_period("month", SPRING)
    aggregate_period("week", date(2026, 4, 1))  # Mar 30 .. Apr 5 ends past the window: unused
    aggregation.aggregate_daily(date(2026, 4, 1))
    window = analytics.DateWindow(date(2026, 3, 1), date(2026, 4, 2))

    with CaptureQueriesContext(connection) as queries:
        counts = analytics.type_counts(window)

    assert counts == {"page_view": 5, "login": 2}
    assert len(queries) == 5  # periods, their rows, days, their rows, the raw rest


def test_an_unfinished_period_is_read_raw(march, user):
    today = aggregation.today()
    aggregate_period("month", today)
    get_event_model().objects.create(event_type="page_view", user=user)
    first, last = aggregation.period_days("month", today)
    window = analytics.DateWindow(first, last)

    assert analytics.type_counts(window) == {"page_view": 1}
    assert analytics.period_totals(window) is None


def test_admin_lists_the_period_rows_read_only(march, admin_client):
    aggregate_period("month", SPRING)
    for model in ("eventperiodaggregate", "eventperiodtotal"):
        response = admin_client.get(f"/admin/django_engagement/{model}/?period=month")
        assert response.status_code == 200
        assert response.context["cl"].result_count == (2 if model == "eventperiodaggregate" else 1)
        assert admin_client.get(f"/admin/django_engagement/{model}/add/").status_code == 403
