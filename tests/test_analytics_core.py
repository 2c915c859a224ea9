"""services.analytics: aggregates and raw events give the same numbers, one ranking rule,
one JSON type for target ids, DST-safe day cuts, bounded query counts, READ_DATABASE."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils.connection import ConnectionDoesNotExist
from rest_framework.fields import DateTimeField

from django_engagement.models import EventAggregateDaily, EventDayTotal, get_event_model
from django_engagement.services import aggregation, analytics
from django_engagement.services.aggregation import aggregate_daily
from django_engagement.services.dashboard import build_dashboard
from django_engagement.services.engagement_report import build_engagement_report
from tests.testapp.models import Campaign, Club, Course

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

FIRST = date(2026, 1, 1)


def at(day: date, hour: int, tz: str = "UTC") -> datetime:
    return datetime.combine(day, time(hour), ZoneInfo(tz))


@pytest.fixture
def week(user, other_user):
    """Jan 1..7 2026: on day n (0-based), n + 1 page_view by alice, one login by bob on
    even days, one anonymous page_view (id a-<n % 2>); a join of campaign c1 on days 1-3,
    of course k1 on days 2-3."""
    club = Club.objects.create(name="North")
    c1 = Campaign.objects.create(name="Spring", club=club)
    k1 = Course.objects.create(title="Algebra")
    Event = get_event_model()
    rows = []
    for n in range(7):
        day = FIRST + timedelta(days=n)
        rows += [
            Event(event_type="page_view", user=user, created_at=at(day, 9)) for _ in range(n + 1)
        ]
        if n % 2 == 0:
            rows.append(Event(event_type="login", user=other_user, created_at=at(day, 10)))
        rows.append(
            Event(event_type="page_view", anonymous_id=f"a-{n % 2}", created_at=at(day, 11))
        )
        if 1 <= n <= 3:
            rows.append(
                Event(event_type="target_joined", user=user, target=c1, created_at=at(day, 12))
            )
        if 2 <= n <= 3:
            rows.append(
                Event(event_type="target_joined", user=user, target=k1, created_at=at(day, 13))
            )
    Event.objects.bulk_create(rows)
    return {"campaign": c1, "course": k1}


WINDOW = analytics.DateWindow(FIRST, FIRST + timedelta(days=6))
EXPECTED_BY_TYPE = {"page_view": 28 + 7, "login": 4, "target_joined": 5}


def test_raw_events_give_known_numbers(week):
    per_day = analytics.daily_type_counts(WINDOW)

    assert sum(per_day.values(), Counter()) == EXPECTED_BY_TYPE
    assert per_day[FIRST + timedelta(days=2)] == {"page_view": 4, "login": 1, "target_joined": 2}
    assert analytics.day_totals(FIRST) == {"count": 3, "unique_users": 2, "unique_anonymous": 1}
    assert analytics.unique_visitors(WINDOW) == (2, 2)


def test_aggregated_days_give_the_same_numbers_as_raw_events(week):
    raw = analytics.daily_type_counts(WINDOW)
    raw_totals = [analytics.day_totals(day) for day in WINDOW.days()]
    raw_summary = build_dashboard_like(WINDOW)
    # Days 0, 1, 4 aggregated (two runs of raw days remain), then their raw events dropped:
    # the numbers must now come from the aggregates.
    aggregated = [FIRST, FIRST + timedelta(days=1), FIRST + timedelta(days=4)]
    for day in aggregated:
        aggregate_daily(day)
    get_event_model().objects.filter(
        event_type__in=["page_view", "login"], created_at__date__in=aggregated
    ).delete()

    assert analytics.daily_type_counts(WINDOW) == raw
    assert [analytics.day_totals(day) for day in WINDOW.days()] == raw_totals
    assert build_dashboard_like(WINDOW) == raw_summary


def build_dashboard_like(window: analytics.DateWindow) -> list:
    per_day = analytics.daily_type_counts(window)
    return [(day, per_day[day].total(), per_day[day]["target_joined"]) for day in window.days()]


def test_summing_a_days_aggregate_rows_gives_its_events(week):
    day = FIRST + timedelta(days=2)
    aggregate_daily(day)
    aggregate_daily(day)

    rows = EventAggregateDaily.objects.filter(date=day)
    assert rows.aggregate(total=Sum("count"))["total"] == 7
    assert rows.count() == 3  # page_view, login, target_joined (all source "web")
    assert EventDayTotal.objects.get(date=day).count == 7


def test_a_day_aggregated_before_it_ended_is_read_raw(week, monkeypatch):
    day = FIRST + timedelta(days=6)
    aggregate_daily(day)
    # Pretend the day was aggregated at noon that day: its stored rows are partial.
    EventDayTotal.objects.filter(date=day).update(updated_at=at(day, 12))
    get_event_model().objects.create(event_type="login", created_at=at(day, 20))

    assert analytics.daily_type_counts(analytics.DateWindow.single(day))[day]["login"] == 2
    assert analytics.day_totals(day)["count"] == 10


def test_ranked_lists_are_count_descending_then_key():
    assert analytics.ranked({"b": 2, "a": 2, "c": 5, "d": 1}) == [
        ("c", 5),
        ("a", 2),
        ("b", 2),
        ("d", 1),
    ]


def test_events_by_type_has_one_order_everywhere(week):
    report = build_engagement_report(WINDOW.start, WINDOW.end)

    assert list(report["other_metrics"]["events_by_type"].items()) == [
        ("page_view", 35),
        ("target_joined", 5),
        ("login", 4),
    ]


def test_target_id_is_the_target_pk_json_type(week):
    top = analytics.top_targets(WINDOW, 10)

    assert top == [
        {
            "target_type": "testapp.campaign",
            "target_id": str(week["campaign"].pk),
            "name": "Spring",
            "count": 3,
        },
        {
            "target_type": "testapp.course",
            "target_id": week["course"].pk,
            "name": "Algebra",
            "count": 2,
        },
    ]
    assert isinstance(top[1]["target_id"], int)
    timeline = build_engagement_report(WINDOW.start, WINDOW.end)["user_activity_timeline"]
    target_ids = {row["target_type"]: row["target_id"] for row in timeline if row["target_id"]}
    assert target_ids == {
        "testapp.campaign": str(week["campaign"].pk),
        "testapp.course": week["course"].pk,
    }


def test_one_timestamp_format(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    moment = datetime(2026, 7, 1, 10, tzinfo=ZoneInfo("UTC"))

    assert analytics.iso_timestamp(moment) == "2026-07-01T12:00:00+02:00"
    assert analytics.iso_timestamp(None) is None
    settings.TIME_ZONE = "UTC"
    assert analytics.iso_timestamp(moment) == "2026-07-01T10:00:00Z"


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 7, 1, 10, tzinfo=UTC),
        datetime(2026, 1, 1, 23, 59, 59, 120000, tzinfo=UTC),
        datetime(2026, 3, 29, 0, 30, 0, 5, tzinfo=UTC),
    ],
)
def test_the_timestamp_format_is_drfs(settings, time_zone, moment):
    """Reports, the dashboard and engagement_report write timestamps as DRF renders them:
    ``Z`` for UTC, the zone's offset otherwise, microseconds only when there are any."""
    settings.TIME_ZONE = time_zone
    assert analytics.iso_timestamp(moment) == DateTimeField().to_representation(moment)


def test_the_timestamp_format_without_time_zones(settings):
    settings.USE_TZ = False
    naive = datetime(2026, 7, 1, 10, 0, 0, 250)
    assert analytics.iso_timestamp(naive) == "2026-07-01T10:00:00.000250"
    assert analytics.iso_timestamp(naive) == DateTimeField().to_representation(naive)


def test_a_stored_target_id_as_json(week):
    """One formatter of stored target ids: the pk's JSON type, whatever names the target."""
    course = week["course"]
    content_type = ContentType.objects.get_for_model(course)

    assert analytics.target_json_id(content_type, str(course.pk)) == course.pk
    assert analytics.target_json_id(type(course), str(course.pk)) == course.pk
    assert analytics.target_json_id(type(week["campaign"]), str(week["campaign"].pk)) == str(
        week["campaign"].pk
    )
    assert analytics.target_json_id(content_type, "not-a-number") == "not-a-number"
    assert analytics.target_json_id(None, "17") == "17"
    assert analytics.target_json_id(content_type, "") is None
    assert analytics.target_json_id(None, None) is None
    assert analytics.pk_json(5) == 5


def test_dst_days_are_cut_at_local_midnight(settings, user):
    settings.TIME_ZONE = "Europe/Berlin"
    spring = date(2026, 3, 29)  # 23 hours long in Berlin
    Event = get_event_model()
    for moment in (at(spring, 0, "Europe/Berlin"), at(spring, 23, "Europe/Berlin")):
        Event.objects.create(event_type="login", user=user, created_at=moment)
    Event.objects.create(
        event_type="login", user=user, created_at=at(spring + timedelta(days=1), 0, "Europe/Berlin")
    )
    window = analytics.DateWindow.single(spring)

    utc = ZoneInfo("UTC")
    assert window.end_before.astimezone(utc) - window.start_at.astimezone(utc) == timedelta(
        hours=23
    )
    raw = analytics.day_totals(spring)["count"]
    aggregate_daily(spring)
    assert raw == analytics.day_totals(spring)["count"] == 2


def test_out_of_calendar_days_are_a_value_error():
    with pytest.raises(ValueError, match="9999-12-31 is outside the supported calendar"):
        analytics.check_day(date(9999, 12, 31))
    with pytest.raises(ValueError, match="after end"):
        analytics.DateWindow(date(2026, 1, 2), date(2026, 1, 1))


def queries_of(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured)


def test_query_count_does_not_grow_with_the_period(week, monkeypatch):
    # Today is the window's last day, so 7 and 365 days both hold all the data.
    monkeypatch.setattr(aggregation.timezone, "now", lambda: at(WINDOW.end, 18))
    for day in (FIRST, FIRST + timedelta(days=2), FIRST + timedelta(days=4)):
        aggregate_daily(day)
    long_window = analytics.DateWindow(FIRST - timedelta(days=358), WINDOW.end)

    assert queries_of(lambda: analytics.daily_type_counts(WINDOW)) == 3
    assert queries_of(lambda: analytics.daily_type_counts(long_window)) == 3
    assert queries_of(lambda: build_dashboard(7)) == queries_of(lambda: build_dashboard(365))


def test_reads_go_to_read_database(week, engagement_settings):
    engagement_settings.update(READ_DATABASE="no-such-replica")

    with pytest.raises(ConnectionDoesNotExist):
        analytics.daily_type_counts(WINDOW)
    with pytest.raises(ConnectionDoesNotExist):
        build_dashboard(7)
