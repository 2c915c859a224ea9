"""services.selectors: the read-only Python API for hosts, exact numbers on known data,
the same whether aggregates or raw events answer, bounded queries, clear ValueErrors."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

import django_engagement
from django_engagement.services import selectors
from django_engagement.services.aggregation import aggregate_period
from tests.helpers import events
from tests.testapp.models import Campaign

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

JAN_1, JAN_31 = date(2026, 1, 1), date(2026, 1, 31)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def signups(user_factory):
    """Five users by date_joined (UTC): Dec 20, Jan 2, Jan 5, Jan 31 23:30, Feb 1."""
    joined = [
        utc(2025, 12, 20, 9),
        utc(2026, 1, 2, 9),
        utc(2026, 1, 5, 9),
        utc(2026, 1, 31, 23, 30),  # Feb 1 00:30 in Europe/Amsterdam
        utc(2026, 2, 1, 9),
    ]
    return [user_factory(date_joined=when) for when in joined]


@pytest.fixture
def january(user, other_user):
    """Jan 3: alice 2 page_views + 2 joins (Spring, Autumn), bob a login and a join
    (Spring), anonymous a1 a page_view; Jan 20: bob and anonymous a2 a page_view each;
    Feb 5: alice a page_view."""
    spring, autumn = Campaign.objects.create(name="Spring"), Campaign.objects.create(name="Autumn")
    Event = events().model
    jan_3, jan_20 = utc(2026, 1, 3, 10), utc(2026, 1, 20, 10)
    Event.objects.bulk_create(
        [
            Event(event_type="page_view", user=user, created_at=jan_3),
            Event(event_type="page_view", user=user, created_at=jan_3),
            Event(event_type="target_joined", user=user, target=spring, created_at=jan_3),
            Event(event_type="target_joined", user=user, target=autumn, created_at=jan_3),
            Event(event_type="login", user=other_user, created_at=jan_3),
            Event(event_type="target_joined", user=other_user, target=spring, created_at=jan_3),
            Event(event_type="page_view", anonymous_id="a1", created_at=jan_3),
            Event(event_type="page_view", user=other_user, created_at=jan_20),
            Event(event_type="page_view", anonymous_id="a2", created_at=jan_20),
            Event(event_type="page_view", user=user, created_at=utc(2026, 2, 5, 10)),
        ]
    )
    return {"spring": spring, "autumn": autumn}


def test_the_package_exposes_the_selectors():
    assert django_engagement.selectors is selectors
    assert "selectors" in django_engagement.__all__


def test_active_users(january, django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        result = selectors.active_users(JAN_1, JAN_31)
    assert result == {
        "start": "2026-01-01",
        "end": "2026-01-31",
        "unique_users": 2,
        "unique_anonymous": 2,
        "total_active": 4,
    }
    assert selectors.active_users(date(2026, 1, 20), date(2026, 1, 20))["total_active"] == 2


def test_events_by_type_is_ranked(january, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):
        result = selectors.events_by_type(JAN_1, JAN_31)
    assert list(result.items()) == [("page_view", 5), ("target_joined", 3), ("login", 1)]
    assert selectors.events_by_type(date(2026, 2, 1), date(2026, 2, 28)) == {"page_view": 1}


def test_top_targets(january, django_assert_max_num_queries):
    spring, autumn = january["spring"], january["autumn"]
    with django_assert_max_num_queries(4):
        result = selectors.top_targets(JAN_1, JAN_31, limit=5)
    assert result == [
        {
            "target_type": "testapp.campaign",
            "target_id": str(spring.pk),
            "name": "Spring",
            "count": 2,
        },
        {
            "target_type": "testapp.campaign",
            "target_id": str(autumn.pk),
            "name": "Autumn",
            "count": 1,
        },
    ]
    assert selectors.top_targets(JAN_1, JAN_31, limit=1) == result[:1]
    assert selectors.top_targets(date(2026, 2, 1), date(2026, 2, 28)) == []


def test_aggregated_months_give_the_same_answers(january):
    before = selectors.active_users(JAN_1, JAN_31), selectors.events_by_type(JAN_1, JAN_31)
    aggregate_period("month", JAN_1)
    # The month's aggregates answer: its raw events can go, the numbers stay.
    events().filter(created_at__lt=utc(2026, 2, 1)).delete()

    after = selectors.active_users(JAN_1, JAN_31), selectors.events_by_type(JAN_1, JAN_31)
    assert after == before
    assert list(after[1].items()) == [("page_view", 5), ("target_joined", 3), ("login", 1)]


def test_user_growth_per_month(signups, django_assert_num_queries):
    with django_assert_num_queries(2):
        rows = selectors.user_growth(JAN_1, date(2026, 2, 10), period="month")
    assert rows == [
        {"period_start": "2026-01-01", "new_users": 3, "cumulative": 4},
        {"period_start": "2026-02-01", "new_users": 1, "cumulative": 5},
    ]


def test_user_growth_per_iso_week_cuts_the_first_week_to_the_window(signups):
    assert selectors.user_growth(JAN_1, date(2026, 2, 10), period="week") == [
        {"period_start": "2026-01-01", "new_users": 1, "cumulative": 2},
        {"period_start": "2026-01-05", "new_users": 1, "cumulative": 3},
        {"period_start": "2026-01-12", "new_users": 0, "cumulative": 3},
        {"period_start": "2026-01-19", "new_users": 0, "cumulative": 3},
        {"period_start": "2026-01-26", "new_users": 2, "cumulative": 5},
        {"period_start": "2026-02-02", "new_users": 0, "cumulative": 5},
        {"period_start": "2026-02-09", "new_users": 0, "cumulative": 5},
    ]


def test_user_growth_per_day(signups):
    rows = selectors.user_growth(date(2026, 1, 30), date(2026, 2, 2))
    assert rows == [
        {"period_start": "2026-01-30", "new_users": 0, "cumulative": 3},
        {"period_start": "2026-01-31", "new_users": 1, "cumulative": 4},
        {"period_start": "2026-02-01", "new_users": 1, "cumulative": 5},
        {"period_start": "2026-02-02", "new_users": 0, "cumulative": 5},
    ]


def test_user_growth_cuts_days_in_time_zone(signups, settings):
    settings.TIME_ZONE = "Europe/Amsterdam"
    assert selectors.user_growth(JAN_1, date(2026, 2, 10), period="month") == [
        {"period_start": "2026-01-01", "new_users": 2, "cumulative": 3},
        {"period_start": "2026-02-01", "new_users": 2, "cumulative": 5},
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: selectors.active_users(JAN_31, JAN_1), "start 2026-01-31 is after end"),
        (lambda: selectors.events_by_type(JAN_31, JAN_1), "is after end"),
        (lambda: selectors.user_growth(JAN_1, JAN_31, period="year"), "period must be one of"),
        (lambda: selectors.user_growth(JAN_1, JAN_31, period="hour"), "period must be one of"),
        (lambda: selectors.top_targets(JAN_1, JAN_31, limit=0), "limit must be an integer"),
        (lambda: selectors.top_targets(JAN_1, JAN_31, limit=True), "limit must be an integer"),
        (lambda: selectors.active_users(date(9999, 12, 31), date(9999, 12, 31)), "outside"),
    ],
)
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_stickiness(january, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        result = selectors.stickiness(date(2026, 1, 20))
    # Jan 20: bob; Jan 14-20: bob; Dec 22-Jan 20: alice and bob (anonymous ids not counted).
    assert result == {"date": "2026-01-20", "dau": 1, "wau": 1, "mau": 2, "dau_mau": 0.5}
    assert selectors.stickiness(date(2025, 12, 1))["dau_mau"] is None


def test_funnel_in_order_within_the_window(january):
    # bob joined on Jan 3 and viewed a page on Jan 20; alice's only later page view is
    # in February, outside the window.
    assert selectors.funnel(JAN_1, JAN_31, ["target_joined", "page_view"]) == [
        {"event_type": "target_joined", "users": 2},
        {"event_type": "page_view", "users": 1},
    ]
    with pytest.raises(ValueError):
        selectors.funnel(JAN_1, JAN_31, ["page_view"])


def test_retention_cohorts(january):
    result = selectors.retention_cohorts(JAN_1, JAN_31)
    assert result["weeks"] == ["2025-12-29", "2026-01-05", "2026-01-12", "2026-01-19", "2026-01-26"]
    # alice and bob were first seen in the week of Jan 3; bob came back in the week of Jan 20.
    assert result["cohorts"][0] == {"week": "2025-12-29", "users": 2, "active": [2, 0, 0, 1, 0]}
    assert [cohort["users"] for cohort in result["cohorts"][1:]] == [0, 0, 0, 0]
