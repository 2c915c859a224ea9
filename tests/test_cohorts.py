"""services/cohorts.py: exact numbers on known data (both databases), bounded queries."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from django_engagement.models import EventDayTotal, get_event_model, get_feed_model
from django_engagement.models.base import event_type_label
from django_engagement.services import cohorts
from django_engagement.services.aggregation import aggregate_daily
from django_engagement.services.analytics import DateWindow
from django_engagement.services.cohorts import Scope
from tests.test_services_dashboard import NO_TRACKING
from tests.testapp.models import Campaign, Club

# Mondays of the known weeks.
W0, W1, W2 = date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19)
WINDOW = DateWindow(date(2026, 1, 7), date(2026, 1, 21))  # Wednesday to Wednesday


def noon(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), timezone.get_default_timezone())


@pytest.fixture
def known(engagement_settings, django_user_model):
    """Four users over three ISO weeks.

    u1  first seen W0, active W0 W1 W2; signup 01-08 -> purchase 01-09 -> review 01-10
    u2  first seen W0, active W0 W1; purchase 01-08 before signup 01-09 (and a purchase
        on 01-25, after the window)
    u3  first seen W1 (01-14), active W1 W2; signup -> purchase -> purchase, no review
    u4  first seen 2025-12-20 (before the window: no cohort), review 01-07
    anon-1 page views (no user: never in cohorts or funnels)
    Targets: "lent" and "advent" of club North, "solo" of no club.
    """
    engagement_settings.update(TRACK=NO_TRACKING)
    users = [django_user_model.objects.create_user(f"u{n}", password="pw") for n in range(1, 5)]
    u1, u2, u3, u4 = users
    north = Club.objects.create(name="North")
    lent = Campaign.objects.create(name="Lent", club=north)
    advent = Campaign.objects.create(name="Advent", club=north)
    solo = Campaign.objects.create(name="Solo")
    specs = [
        (u1, "login", W0, None),
        (u1, "signup", date(2026, 1, 8), lent),
        (u1, "purchase", date(2026, 1, 9), lent),
        (u1, "review", date(2026, 1, 10), lent),
        (u1, "login", W1, advent),
        (u1, "login", W2, solo),
        (u2, "login", W0 + timedelta(days=1), None),
        (u2, "purchase", date(2026, 1, 8), lent),
        (u2, "signup", date(2026, 1, 9), lent),
        (u2, "login", W1 + timedelta(days=1), lent),
        (u2, "purchase", date(2026, 1, 25), lent),
        (u3, "signup", date(2026, 1, 14), advent),
        (u3, "purchase", date(2026, 1, 15), advent),
        (u3, "purchase", date(2026, 1, 16), advent),
        (u3, "login", date(2026, 1, 20), solo),
        (u4, "login", date(2025, 12, 20), None),
        (u4, "review", date(2026, 1, 7), solo),
        (None, "page_view", date(2026, 1, 7), None),
        (None, "page_view", date(2026, 1, 14), lent),
    ]
    Event = get_event_model()
    Event._default_manager.bulk_create(
        Event(
            event_type=event_type,
            user=user,
            anonymous_id="" if user else "anon-1",
            created_at=noon(day),
            **({"target": target} if target else {}),
        )
        for user, event_type, day, target in specs
    )
    get_feed_model()._default_manager.bulk_create(
        get_feed_model()(
            user=u1, activity_type="event", title="x", created_at=noon(day), target=lent
        )
        for day in (date(2026, 1, 8), date(2026, 1, 8), date(2026, 1, 20))
    )
    return {"users": users, "lent": lent, "advent": advent, "solo": solo}


def test_previous_window_has_the_same_length():
    assert cohorts.previous_window(WINDOW) == DateWindow(date(2025, 12, 23), date(2026, 1, 6))
    single = DateWindow.single(date(2026, 3, 1))
    assert cohorts.previous_window(single) == DateWindow.single(date(2026, 2, 28))


def test_compare():
    assert cohorts.compare(15, 10) == {"value": 15, "previous": 10, "change": 5, "percent": 50.0}
    assert cohorts.compare(2, 3)["percent"] == -33.3
    assert cohorts.compare(4, 0) == {"value": 4, "previous": 0, "change": 4, "percent": None}


def test_retention_weeks(known, django_assert_num_queries):
    with django_assert_num_queries(2):
        result = cohorts.retention_weeks(WINDOW, Scope())
    assert result == {
        "weeks": ["2026-01-05", "2026-01-12", "2026-01-19"],
        "cohorts": [
            {"week": "2026-01-05", "users": 2, "active": [2, 2, 1]},
            {"week": "2026-01-12", "users": 1, "active": [1, 1]},
            {"week": "2026-01-19", "users": 0, "active": [0]},
        ],
    }


def test_retention_scoped_to_a_target(known):
    # Within "advent" only: u1 first seen there in W1, u3 in W1; neither comes back in W2.
    result = cohorts.retention_weeks(WINDOW, Scope(target=known["advent"].pk))
    assert [c["active"] for c in result["cohorts"]] == [[0, 0, 0], [2, 0], [0]]


def test_funnel_counts_steps_in_order(known, django_assert_num_queries):
    with django_assert_num_queries(1):
        steps = cohorts.funnel(WINDOW, ["signup", "purchase", "review"], Scope())
    assert steps == [
        {"event_type": "signup", "users": 3},
        {"event_type": "purchase", "users": 2},
        {"event_type": "review", "users": 1},
    ]
    # u2 purchased before signing up (and after the window): only u1 and u3 convert.
    assert cohorts.funnel(WINDOW, ["purchase", "signup"], Scope()) == [
        {"event_type": "purchase", "users": 3},
        {"event_type": "signup", "users": 1},
    ]
    # The same type twice: users with two purchases.
    assert cohorts.funnel(WINDOW, ["purchase", "purchase"], Scope())[1]["users"] == 1
    assert [s["users"] for s in cohorts.funnel(WINDOW, ["review", "signup"], Scope())] == [2, 0]


def test_funnel_scoped_and_bounded(known):
    group = Scope(group="North")
    assert [s["users"] for s in cohorts.funnel(WINDOW, ["signup", "purchase"], group)] == [3, 2]
    lent = Scope(target=known["lent"].pk)
    assert [s["users"] for s in cohorts.funnel(WINDOW, ["signup", "purchase"], lent)] == [2, 1]
    for steps in (["signup"], ["a", "b", "c", "d", "e", "f"]):
        with pytest.raises(ValueError, match="2 to 5 steps"):
            cohorts.funnel(WINDOW, steps, Scope())


def test_active_users(known, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert cohorts.active_users(date(2026, 1, 20), Scope()) == {"dau": 1, "wau": 2, "mau": 4}
    assert cohorts.active_users(date(2026, 1, 14), Scope()) == {"dau": 1, "wau": 3, "mau": 4}
    # Scoped to club North: u3's 01-20 login was on "solo".
    assert cohorts.active_users(date(2026, 1, 20), Scope(group="North")) == {
        "dau": 0,
        "wau": 1,
        "mau": 3,
    }


def test_daily_actives_and_visitors(known):
    actives = cohorts.daily_actives(WINDOW, Scope())
    assert actives[date(2026, 1, 7)] == (1, 1)
    assert actives[date(2026, 1, 8)] == (2, 0)
    assert actives[date(2026, 1, 14)] == (1, 1)
    assert sum(users for users, _ in actives.values()) == 13
    previous = cohorts.previous_window(WINDOW)
    assert cohorts.period_visitors([WINDOW, previous], Scope()) == [(4, 1), (2, 0)]
    assert cohorts.period_visitors([WINDOW], Scope(target=known["lent"].pk)) == [(2, 1)]


def test_daily_actives_read_whole_aggregated_days(known, django_assert_max_num_queries):
    """Aggregated days come from EventDayTotal, the rest from raw events, same numbers."""
    before = cohorts.daily_actives(WINDOW, Scope())
    for day in (date(2026, 1, 8), date(2026, 1, 9)):
        aggregate_daily(day)
    assert EventDayTotal.objects.filter(date=date(2026, 1, 8)).exists()
    # Make the stored row the only truth: if it were ignored, the count would be 2.
    EventDayTotal.objects.filter(date=date(2026, 1, 8)).update(unique_users=7)
    with django_assert_max_num_queries(2):
        after = cohorts.daily_actives(WINDOW, Scope())
    assert after == {**before, date(2026, 1, 8): (7, 0)}


def test_daily_counts_and_feed_items_scoped(known):
    lent = Scope(target=known["lent"].pk)
    counts = cohorts.daily_counts(WINDOW, lent)
    assert {day.isoformat(): dict(c) for day, c in sorted(counts.items())} == {
        "2026-01-08": {"signup": 1, "purchase": 1},
        "2026-01-09": {"purchase": 1, "signup": 1},
        "2026-01-10": {"review": 1},
        "2026-01-13": {"login": 1},
        "2026-01-14": {"page_view": 1},
    }
    everything = cohorts.daily_counts(WINDOW, Scope())
    assert sum(day.total() for day in everything.values()) == 15
    feed = cohorts.daily_feed_items(WINDOW, lent)
    assert dict(feed) == {date(2026, 1, 8): 2, date(2026, 1, 20): 1}
    assert dict(cohorts.daily_feed_items(WINDOW, Scope(target=known["solo"].pk))) == {}


def test_scoped_rankings(known, engagement_settings):
    engagement_settings.update(JOIN_EVENT="purchase")
    north = Scope(group="North")
    # u1: 4 events on lent and advent, u2 and u3: 3 each (the tie goes to the lower id).
    assert cohorts.scoped_top_users(WINDOW, 2, north) == [
        {"user_id": known["users"][0].pk, "username": "u1", "count": 4},
        {"user_id": known["users"][1].pk, "username": "u2", "count": 3},
    ]
    top = cohorts.scoped_top_targets(WINDOW, 10, north)
    # Both have 2 purchases: the tie is ordered by the (random UUID) id, so compare a set.
    assert {(row["name"], row["count"]) for row in top} == {("Advent", 2), ("Lent", 2)}
    assert {row["target_id"] for row in top} == {str(known["lent"].pk), str(known["advent"].pk)}
    solo = cohorts.scoped_top_targets(WINDOW, 10, Scope(target=known["solo"].pk))
    assert solo == []


def test_scope_rules(known, engagement_settings):
    with pytest.raises(ValueError, match="not both"):
        Scope(target=known["lent"].pk, group="North")
    assert cohorts.parse_target(str(known["lent"].pk)) == known["lent"].pk
    with pytest.raises(ValueError, match="is not a campaign id"):
        cohorts.parse_target("nope")
    engagement_settings.update(TARGET_GROUP_FIELD=None)
    with pytest.raises(ValueError, match="TARGET_GROUP_FIELD"):
        Scope(group="North")


def test_event_type_labels(engagement_settings):
    assert event_type_label("target_joined") == "Joined campaign"
    assert event_type_label("target_created") == "Campaign created"
    assert event_type_label("user_logged_in") == "Signed in"
    assert event_type_label("page_view") == "Page view"
    engagement_settings.update(EVENT_TYPE_LABELS={"page_view": "Viewed a page"})
    assert event_type_label("page_view") == "Viewed a page"
    assert event_type_label("user_logged_in") == "Signed in"  # merged over the defaults
