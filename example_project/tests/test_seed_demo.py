from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Count, Q

from django_engagement.conf import engagement_settings
from django_engagement.models import get_event_model, get_feed_model
from hub import demo
from hub.models import Church, Fast, Profile

EVENT_TYPES = {
    "page_view",
    "user_logged_in",
    "user_signed_up",
    "prayer_request_created",
    "devotional_viewed",
    "milestone_reached",
}
ACTIVITY_TYPES = {"fast_join", "fast_leave", "milestone", "fast_reminder", "devotional_available"}


def event_type_counts() -> Counter:
    return Counter(get_event_model().objects.values_list("event_type", flat=True))


def test_seed_creates_the_requested_counts(seeded):
    assert get_user_model().objects.count() == 21  # 20 demo users and admin
    assert Profile.objects.count() == 20
    assert Church.objects.count() == 4
    assert Fast.objects.count() == 12
    assert get_event_model().objects.count() == 800
    counts = event_type_counts()
    assert counts["user_signed_up"] == 20
    membership = {engagement_settings.JOIN_EVENT, engagement_settings.LEAVE_EVENT}
    assert set(counts) <= EVENT_TYPES | membership
    assert counts[engagement_settings.JOIN_EVENT] > 0


def test_memberships_match_join_and_leave_events(seeded):
    """Every fast's participants are its joins minus its leaves."""
    Event = get_event_model()
    per_fast = Event.objects.values("target_object_id").annotate(
        joins=Count("pk", filter=Q(event_type=engagement_settings.JOIN_EVENT)),
        leaves=Count("pk", filter=Q(event_type=engagement_settings.LEAVE_EVENT)),
    )
    expected = {
        row["target_object_id"]: row["joins"] - row["leaves"]
        for row in per_fast
        if row["joins"] or row["leaves"]
    }
    actual = {
        str(pk): n for pk, n in Fast.objects.annotate(n=Count("profiles")).values_list("pk", "n")
    }
    assert {pk: n for pk, n in actual.items() if pk in expected} == expected
    assert sum(actual.values()) == sum(expected.values()) > 0


def test_feed_items_link_join_events_to_their_actor(seeded):
    Feed = get_feed_model()
    kinds = set(Feed.objects.values_list("activity_type", flat=True).distinct())
    assert kinds <= ACTIVITY_TYPES
    assert {"fast_join", "devotional_available", "fast_reminder"} <= kinds
    joins = Feed.objects.filter(activity_type="fast_join").select_related("event")
    assert joins.count() == event_type_counts()[engagement_settings.JOIN_EVENT]
    assert all(item.event.user_id == item.user_id for item in joins)
    assert all(item.target_type == "hub.fast" for item in joins)


def test_same_seed_gives_same_data(db):
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def snapshot():
        Event = get_event_model()
        return (
            list(Event.objects.order_by("uuid").values_list("uuid", "event_type", "created_at")),
            list(
                get_feed_model()
                .objects.order_by("created_at", "user__username", "activity_type", "title")
                .values_list("user__username", "activity_type", "created_at", "title", "is_read")
            ),
            list(
                Fast.objects.annotate(n=Count("profiles")).order_by("name").values_list("name", "n")
            ),
        )

    demo.seed(users=15, events=400, days=20, seed=3, now=now)
    first = snapshot()
    demo.flush()
    demo.seed(users=15, events=400, days=20, seed=3, now=now)
    assert snapshot() == first
    demo.flush()
    demo.seed(users=15, events=400, days=20, seed=4, now=now)
    assert snapshot() != first


def test_second_run_without_flush_writes_nothing(seeded):
    out = StringIO()
    call_command("seed_demo", users=5, events=100, stdout=out)
    assert "already present" in out.getvalue()
    assert get_event_model().objects.count() == 800
    assert get_user_model().objects.count() == 21


def test_admin_login_is_printed_and_works(db, client):
    out = StringIO()
    call_command("seed_demo", users=3, events=50, days=5, stdout=out)
    assert "admin / admin" in out.getvalue()
    assert client.login(username="admin", password="admin")
    assert client.login(username="user001", password="demo")


@pytest.mark.parametrize(
    ("option", "message"),
    [({"users": 0}, "--users must be at least 1"), ({"days": 0}, "--days must be at least 1")],
)
def test_bad_numbers_are_a_command_error(db, option, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_demo", verbosity=0, **option)


COHORT_NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)  # a Monday: whole weeks before it


@pytest.fixture
def cohort_data(db):
    """Twelve weeks of demo history, enough users for cohorts to mean something."""
    demo.seed(users=150, events=4000, days=84, seed=11, now=COHORT_NOW)


def weekly_active_since_signup(weeks: int) -> list[int]:
    """Users active in their week 0, 1, 2, ... after signing up (signed up >= ``weeks`` ago)."""
    User = get_user_model()
    joined = dict(
        User.objects.filter(
            date_joined__lte=COHORT_NOW - timedelta(weeks=weeks), is_superuser=False
        ).values_list("pk", "date_joined")
    )
    active = [set() for _ in range(weeks)]
    rows = get_event_model().objects.filter(user__in=list(joined)).values_list("user", "created_at")
    for user_id, at in rows:
        week = (at - joined[user_id]).days // 7
        if week < weeks:
            active[week].add(user_id)
    return [len(users) for users in active]


def test_activity_decays_week_over_week_and_the_top_user_stays(cohort_data):
    """One data set (seeding is the slow part) for the three promises of the demo history."""
    from django_engagement import build_engagement_report

    counts = weekly_active_since_signup(6)
    assert counts == [88, 43, 28, 21, 15, 12]
    assert all(later < earlier for earlier, later in zip(counts, counts[1:], strict=False))

    report = build_engagement_report(date(2025, 12, 8), date(2026, 3, 1))
    rates = [row["retention_rate"] for row in report["retention_cohorts"]]
    assert len(rates) == 12
    assert max(rates) < 1
    assert 0.3 < sum(rates) / len(rates) < 0.8

    User, Event = get_user_model(), get_event_model()
    top_id = (
        Event.objects.filter(user__isnull=False)
        .values("user")
        .annotate(n=Count("pk"))
        .order_by("-n")[0]["user"]
    )
    first_signups = User.objects.filter(is_superuser=False).order_by("date_joined")[:3]
    assert top_id in {user.pk for user in first_signups}
    assert Event.objects.filter(
        user_id=top_id, created_at__gte=COHORT_NOW - timedelta(days=7)
    ).exists()


def test_backfill_on_demo_data_adds_nothing(seeded):
    """The demo's feed already holds what the rules give, dated and addressed as then."""
    from django_engagement.services.feed import populate_feed

    assert populate_feed(days_back=30).created_count == 0
