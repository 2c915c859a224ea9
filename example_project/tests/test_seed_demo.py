from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
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
