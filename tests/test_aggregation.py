"""aggregate_daily and the aggregate_events_daily command."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError
from django.db.models import Sum

from django_engagement.models import EventAggregateDaily, EventDayTotal, get_event_model
from django_engagement.services import aggregation
from django_engagement.services.aggregation import (
    aggregate_daily,
    compute_day,
    day_bounds,
)
from tests.helpers import command_output

DAY = date(2026, 1, 4)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


def at(day: date, hour: int, minute: int = 0, tz: str = "UTC") -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz))


@pytest.fixture
def make_event():
    Event = get_event_model()

    def make(event_type="page_view", source="web", *, created_at, user=None, anonymous_id=""):
        return Event.objects.create(
            event_type=event_type,
            source=source,
            user=user,
            anonymous_id=anonymous_id,
            created_at=created_at,
        )

    return make


@pytest.fixture
def day_events(make_event, user, other_user):
    """Jan 4: page_view/web x5 (alice twice, bob once with anon id, 2 anonymous),
    page_view/ios x1 (alice), booking/web x2 (bob, no user and no anon id).
    One event on Jan 3 and one on Jan 5 bracket the day."""
    make_event(created_at=at(DAY, 0, 0), user=user)
    make_event(created_at=at(DAY, 9), user=user)
    make_event(created_at=at(DAY, 10), user=other_user, anonymous_id="a-1")
    make_event(created_at=at(DAY, 11), anonymous_id="a-1")
    make_event(created_at=at(DAY, 12), anonymous_id="a-2")
    make_event("page_view", "ios", created_at=at(DAY, 13), user=user)
    make_event("booking", "web", created_at=at(DAY, 14), user=other_user)
    make_event("booking", "web", created_at=at(DAY, 23, 59))
    make_event(created_at=at(DAY, 0) - timedelta(microseconds=1), user=user)
    make_event(created_at=at(DAY + timedelta(days=1), 0), user=user)


def stored() -> dict[tuple[str, str], tuple[int, int, int]]:
    return {
        (row.event_type, row.source): (row.count, row.unique_users, row.unique_anonymous)
        for row in EventAggregateDaily.objects.filter(date=DAY)
    }


def stored_totals(day: date = DAY) -> tuple[int, int, int]:
    row = EventDayTotal.objects.get(date=day)
    return row.count, row.unique_users, row.unique_anonymous


EXPECTED = {
    ("page_view", "web"): (5, 2, 2),
    ("page_view", "ios"): (1, 1, 0),
    ("booking", "web"): (2, 1, 0),
}


def test_counts_per_type_and_source_with_day_totals_apart(day_events):
    result = aggregate_daily(DAY)

    assert stored() == EXPECTED
    assert stored_totals() == (8, 2, 2)
    assert (result.date, result.rows, result.removed, result.events) == (DAY, 3, 0, 8)


def test_summing_a_days_rows_gives_its_events(day_events):
    aggregate_daily(DAY)
    aggregate_daily(DAY)

    day_rows = EventAggregateDaily.objects.filter(date=DAY)
    assert day_rows.aggregate(total=Sum("count"))["total"] == 8
    assert day_rows.count() == 3
    assert EventDayTotal.objects.filter(date=DAY).count() == 1


def test_two_queries_per_day(day_events, django_assert_num_queries):
    with django_assert_num_queries(2):
        found = compute_day(DAY)
    assert len(found.rows) == 3
    assert found.totals == {"count": 8, "unique_users": 2, "unique_anonymous": 2}


def test_rerun_replaces_and_never_duplicates(day_events, make_event, user):
    aggregate_daily(DAY)
    aggregate_daily(DAY)
    assert EventAggregateDaily.objects.count() == 3

    make_event("page_view", "ios", created_at=at(DAY, 15), anonymous_id="a-9")
    result = aggregate_daily(DAY)

    assert stored()[("page_view", "ios")] == (2, 1, 1)
    assert stored_totals() == (9, 2, 3)
    assert result.removed == 0
    assert EventAggregateDaily.objects.count() == 3
    assert EventDayTotal.objects.count() == 1


def test_keys_that_vanished_are_removed(day_events):
    aggregate_daily(DAY)
    get_event_model().objects.filter(event_type="booking").delete()

    result = aggregate_daily(DAY)

    assert result.removed == 1
    assert set(stored()) == {("page_view", "web"), ("page_view", "ios")}
    assert stored_totals() == (6, 2, 2)


def test_a_day_without_events_loses_all_its_rows(day_events):
    aggregate_daily(DAY)
    get_event_model().objects.all().delete()

    result = aggregate_daily(DAY)

    assert (result.rows, result.removed, result.events) == (0, 3, 0)
    assert not EventAggregateDaily.objects.exists()
    assert stored_totals() == (0, 0, 0)


def test_other_days_are_untouched(day_events):
    aggregate_daily(DAY)
    aggregate_daily(DAY - timedelta(days=1))

    assert EventAggregateDaily.objects.filter(date=DAY - timedelta(days=1)).count() == 1
    assert stored() == EXPECTED


def test_default_is_yesterday_in_time_zone(settings, make_event, monkeypatch):
    settings.TIME_ZONE = "Asia/Tokyo"
    # 2026-01-04 20:00 UTC is already Jan 5 in Tokyo, so "yesterday" there is Jan 4.
    monkeypatch.setattr(aggregation.timezone, "now", lambda: datetime(2026, 1, 4, 20, tzinfo=UTC))
    make_event(created_at=at(DAY, 12, tz="Asia/Tokyo"))

    result = aggregate_daily()

    assert result.date == DAY and result.events == 1


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo"])
def test_day_boundaries_follow_time_zone(settings, make_event, tz):
    settings.TIME_ZONE = tz
    make_event(created_at=at(DAY, 23, 59, tz=tz))  # Jan 4, late
    make_event(created_at=at(DAY + timedelta(days=1), 0, 1, tz=tz))  # Jan 5, early
    make_event(created_at=at(DAY, 0, 1, tz=tz))  # Jan 4, early

    assert aggregate_daily(DAY).events == 2
    assert aggregate_daily(DAY + timedelta(days=1)).events == 1
    assert aggregate_daily(DAY - timedelta(days=1)).events == 0
    assert day_bounds(DAY)[0] == at(DAY, 0, tz=tz)


def test_dst_day_is_23_hours_long(settings):
    settings.TIME_ZONE = "America/New_York"
    start, end = day_bounds(date(2026, 3, 8))

    # Same-zone subtraction is wall-clock time in Python; compare real instants.
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def run(*args):
    return command_output("aggregate_events_daily", *args)


def test_command_aggregates_the_given_date(day_events):
    output = run("--date", "2026-01-04")

    assert output == (
        "2026-01-04: 8 events in 3 rows (0 stale rows removed)\nAggregated 1 day(s).\n"
    )
    assert stored() == EXPECTED


def test_command_days_back_counts_back_inclusively(day_events):
    output = run("--date", "2026-01-05", "--days-back", "3")

    assert output.splitlines() == [
        "2026-01-03: 1 events in 1 rows (0 stale rows removed)",
        "2026-01-04: 8 events in 3 rows (0 stale rows removed)",
        "2026-01-05: 1 events in 1 rows (0 stale rows removed)",
        "Aggregated 3 day(s).",
    ]
    assert sorted(set(EventAggregateDaily.objects.values_list("date", flat=True))) == [
        date(2026, 1, 3),
        DAY,
        date(2026, 1, 5),
    ]


def test_command_defaults_to_yesterday(make_event, monkeypatch):
    monkeypatch.setattr(aggregation.timezone, "now", lambda: datetime(2026, 1, 5, 8, tzinfo=UTC))
    make_event(created_at=at(DAY, 8))

    assert run("--verbosity", "0") == ""
    assert EventAggregateDaily.objects.get(event_type="page_view").date == DAY


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01"], "--date '2026-13-01' is not a date in YYYY-MM-DD format."),
        (["--date", "yesterday"], "--date 'yesterday' is not a date in YYYY-MM-DD format."),
        (["--days-back", "0"], "--days-back must be 1 or more."),
        (["--days-back", "x"], "argument --days-back: invalid int value: 'x'"),
        (
            ["--days-back", "100000"],
            "--days-back must be at most 3,660 (ten years); for older days run again with an "
            "earlier --date.",
        ),
        (["--days-back", "3661"], "--days-back must be at most 3,660 (ten years);"),
    ],
)
def test_command_errors_are_one_line(args, message):
    with pytest.raises(CommandError) as excinfo:
        run(*args)

    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert not EventAggregateDaily.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--date", "9999-12-31"],
        ["--date", "0001-01-01", "--days-back", "5"],
        ["--date", "0005-01-01", "--days-back", "3660"],
    ],
)
def test_command_days_past_the_calendar_are_a_command_error(args):
    with pytest.raises(CommandError, match=r"^--date and --days-back reach past the supported"):
        command_output("aggregate_events_daily", *args)
