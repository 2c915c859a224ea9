"""Grouping (FEED_GROUPING) and flood folding (FEED_RATE_LIMIT "fold") at fan-out."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from django_engagement import notify, record_event
from django_engagement.checks import check_engagement_settings
from django_engagement.models import FeedEmail, NotificationPreference
from django_engagement.services.feed import fan_out_event_ids, mark_read, populate_feed
from django_engagement.services.grouping import grouping_table
from django_engagement.services.preferences import mute_target, rate_limit_table
from django_engagement.services.unread import unread_counts
from tests.helpers import feed, make_users

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

JOINED = {
    "target_joined": {
        "activity_type": "member_joined",
        "recipients": "participants",
        "title": "{actor} joined {target}",
    }
}
GROUPING = {
    "member_joined": {
        "window": 3600,
        "title": "{actor} and {others} joined {target}",
        "actors": 2,
    }
}
LIST_URL = "django_engagement:engagement-activity-feed-list"


@pytest.fixture
def grouped(engagement_settings):
    engagement_settings.update(FEED_RULES=JOINED, FEED_GROUPING=GROUPING)
    return engagement_settings


@pytest.fixture
def course_members(campaign):
    """Three members of ``campaign`` (the recipients) and four joiners (the actors)."""
    members = make_users(3, "member")
    campaign.members.add(*members)
    joiners = make_users(4, "joiner")
    return members, joiners


def items(activity_type="member_joined"):
    return feed().filter(activity_type=activity_type).order_by("user__username", "pk")


def join(joiner, campaign):
    return record_event("target_joined", user=joiner, target=campaign)


def test_joins_fold_into_one_unread_item_per_recipient(grouped, campaign, course_members):
    members, joiners = course_members
    first = join(joiners[0], campaign)
    assert [(i.user.username, i.title, i.data["count"]) for i in items()] == [
        ("member0", "joiner0 joined Great Lent", 1),
        ("member1", "joiner0 joined Great Lent", 1),
        ("member2", "joiner0 joined Great Lent", 1),
    ]
    for joiner in joiners[1:]:
        join(joiner, campaign)
    rows = list(items())
    assert len(rows) == 3
    for row in rows:
        assert row.title == "joiner3 and 3 others joined Great Lent"
        assert row.data["count"] == 4
        # The latest two actors, newest last; the event's data is kept.
        assert row.data["actors"] == [
            {"id": joiners[2].pk, "name": "joiner2"},
            {"id": joiners[3].pk, "name": "joiner3"},
        ]
        assert row.data["campaign_name"] == "Great Lent"
        assert row.event_id == first.pk
        assert not row.is_read


def test_two_items_say_one_other(grouped, campaign, course_members):
    members, joiners = course_members
    join(joiners[0], campaign)
    join(joiners[1], campaign)
    assert set(items().values_list("title", flat=True)) == {"joiner1 and 1 other joined Great Lent"}


def test_reading_ends_the_group(grouped, campaign, course_members):
    members, joiners = course_members
    join(joiners[0], campaign)
    join(joiners[1], campaign)
    assert mark_read(members[0]) == 1
    join(joiners[2], campaign)
    by_user = [(i.user.username, i.is_read, i.data["count"], i.title) for i in items()]
    assert by_user == [
        ("member0", True, 2, "joiner1 and 1 other joined Great Lent"),
        ("member0", False, 1, "joiner2 joined Great Lent"),
        ("member1", False, 3, "joiner2 and 2 others joined Great Lent"),
        ("member2", False, 3, "joiner2 and 2 others joined Great Lent"),
    ]


def badges(users) -> list[tuple[int, int]]:
    """Each user's counter beside a COUNT(*) of their unread items."""
    counters = unread_counts([user.pk for user in users])
    return [(counters[user.pk], feed().filter(user=user, is_read=False).count()) for user in users]


def test_folds_leave_the_unread_badge_alone_new_items_raise_it(grouped, campaign, course_members):
    members, joiners = course_members
    join(joiners[0], campaign)
    assert badges(members) == [(1, 1), (1, 1), (1, 1)]
    join(joiners[1], campaign)
    join(joiners[2], campaign)
    assert badges(members) == [(1, 1), (1, 1), (1, 1)]
    mark_read(members[0])
    assert badges(members) == [(0, 0), (1, 1), (1, 1)]
    join(joiners[3], campaign)  # a new group for member0, a fold for the others
    assert badges(members) == [(1, 1), (1, 1), (1, 1)]


def test_window_closes_the_group(grouped, campaign, course_members):
    members, joiners = course_members
    join(joiners[0], campaign)
    join(joiners[1], campaign)
    feed().update(created_at=timezone.now() - timedelta(seconds=3601))
    join(joiners[2], campaign)
    key = f"member_joined|{items()[0].target_content_type_id}|{campaign.pk}"
    assert list(items().values_list("user__username", "data__count", "group_key")) == [
        # The closed group lost its key, the new one holds it.
        ("member0", 2, ""),
        ("member0", 1, key),
        ("member1", 2, ""),
        ("member1", 1, key),
        ("member2", 2, ""),
        ("member2", 1, key),
    ]


def test_other_targets_and_types_do_not_fold(grouped, campaign, course_members):
    members, joiners = course_members
    other = type(campaign).objects.create(name="Advent")
    other.members.add(*members)
    join(joiners[0], campaign)
    join(joiners[1], other)
    notify(members, "news", title="Hello", target=campaign)
    notify(members, "news", title="Hello again", target=campaign)
    assert items().count() == 6
    assert items("news").count() == 6
    assert all(not item.group_key for item in items("news"))


def test_notify_returns_new_items_only_and_emails_them_once(grouped, campaign, course_members):
    members, joiners = course_members
    NotificationPreference.objects.create(
        user=members[0], activity_type="member_joined", email="daily"
    )
    assert notify(members, "member_joined", title="A", target=campaign, actor=joiners[0]) == 3
    assert notify(members, "member_joined", title="B", target=campaign, actor=joiners[1]) == 0
    assert FeedEmail.objects.count() == 1
    assert set(items().values_list("data__count", flat=True)) == {2}


def test_created_signal_names_only_new_recipients(
    grouped, campaign, course_members, django_capture_on_commit_callbacks
):
    from django_engagement.signals import feed_items_created

    members, joiners = course_members
    seen = []

    def receiver(**kwargs):
        seen.append((kwargs["count"], kwargs["user_ids"]))

    feed_items_created.connect(receiver, dispatch_uid="grouping-test")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            notify(members[:2], "member_joined", title="A", target=campaign, actor=joiners[0])
            notify(members, "member_joined", title="B", target=campaign, actor=joiners[1])
            notify(members, "member_joined", title="C", target=campaign, actor=joiners[2])
    finally:
        feed_items_created.disconnect(dispatch_uid="grouping-test")
    # The third notify folds for everyone: no new item, no signal.
    assert seen == [(2, sorted(m.pk for m in members[:2])), (1, [members[2].pk])]


def test_mutes_and_opt_outs_are_honoured_by_the_fold(grouped, campaign, course_members):
    members, joiners = course_members
    join(joiners[0], campaign)
    mute_target(members[0], campaign)
    NotificationPreference.objects.create(
        user=members[1], activity_type="member_joined", in_feed=False
    )
    join(joiners[1], campaign)
    assert dict(items().values_list("user__username", "data__count")) == {
        "member0": 1,
        "member1": 1,
        "member2": 2,
    }


def test_fan_out_is_two_statements(grouped, campaign, course_members, django_assert_num_queries):
    from django_engagement.services.feed import fan_out

    members, joiners = course_members
    join(joiners[0], campaign)
    event = join(joiners[1], campaign)
    event = type(event).objects.select_related("user").prefetch_related("target").get(pk=event.pk)
    # Close the expired groups (one UPDATE) and the upsert; nothing per recipient.
    with django_assert_num_queries(2):
        assert fan_out([event], done=()) == 0
    assert set(items().values_list("data__count", flat=True)) == {3}


@pytest.mark.django_db(transaction=True)
def test_concurrent_joins_count_exactly(grouped, campaign, course_members):
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers: PostgreSQL (SQLite in memory is one connection)")
    members, _ = course_members
    joiners = make_users(8, "racer")
    barrier = threading.Barrier(len(joiners))
    errors = []

    def run(joiner):
        try:
            barrier.wait(timeout=10)
            join(joiner, campaign)
        except Exception as exc:  # reported below, with the thread's own traceback lost
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(joiner,)) for joiner in joiners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    rows = list(items())
    assert [(row.user_id, row.data["count"]) for row in rows] == [(m.pk, 8) for m in members]
    assert all(len(row.data["actors"]) == 2 for row in rows)
    assert {row.title.split(" and ")[1] for row in rows} == {"7 others joined Great Lent"}
    assert badges(members) == [(1, 1)] * len(members)


def test_redelivery_and_backfill_do_not_count_twice(grouped, campaign, course_members):
    members, joiners = course_members
    first = join(joiners[0], campaign)
    second = join(joiners[1], campaign)
    # A task redelivered after the fan-out committed: the outbox row is gone.
    assert fan_out_event_ids([first.pk, second.pk]) == 0
    assert populate_feed(days_back=1).created_count == 0
    assert set(items().values_list("data__count", flat=True)) == {2}


def test_notify_again_with_the_same_event_skips_its_recipients(grouped, campaign, course_members):
    members, joiners = course_members
    event = join(joiners[0], campaign)
    again = {"title": "Again", "target": campaign, "event": event}
    assert notify(members, "member_joined", **again) == 0
    mark_read(members[0])
    # Read, the group item still holds the event: no second item (nor an IntegrityError).
    assert notify(members, "member_joined", **again) == 0
    assert list(items().values_list("data__count", flat=True)) == [1, 1, 1]


def test_async_fan_out_folds_once(grouped, campaign, course_members, eager_app):
    from django_engagement import tasks

    members, joiners = course_members
    grouped.update(ASYNC_FEED=True)
    events = [join(joiner, campaign) for joiner in joiners[:2]]
    # No worker ran: the outbox holds both; the task folds them, a redelivery does nothing.
    assert tasks.fan_out_feed_task([e.pk for e in events]) == 3
    assert tasks.fan_out_feed_task([e.pk for e in events]) == 0
    assert set(items().values_list("data__count", flat=True)) == {2}


def test_actor_rules_fold_too(engagement_settings, campaign):
    engagement_settings.update(FEED_GROUPING={"target_join": {"title": "{title} x{count}"}})
    (user,) = make_users(1)
    for _ in range(3):
        record_event("target_joined", user=user, target=campaign)
    (item,) = feed().filter(activity_type="target_join")
    assert (item.title, item.data["count"]) == ("You joined Great Lent x3", 3)
    assert item.data["actors"] == [{"id": user.pk, "name": "member0"}] * 3


def test_list_api_shows_the_folded_item(grouped, campaign, course_members, api_client):
    members, joiners = course_members
    for joiner in joiners:
        join(joiner, campaign)
    api_client.force_authenticate(members[1])
    body = api_client.get(reverse(LIST_URL)).json()
    assert body["count"] == 1
    (item,) = body["results"]
    assert item["title"] == "joiner3 and 3 others joined Great Lent"
    assert item["data"]["count"] == 4
    assert [actor["name"] for actor in item["data"]["actors"]] == ["joiner2", "joiner3"]
    assert "group_key" not in item


def test_swapped_or_default_model_has_the_open_group_constraint():
    Feed = feed().model
    names = {constraint.name for constraint in Feed._meta.constraints}
    assert f"{Feed._meta.app_label}_{Feed._meta.model_name}_open_group" in names


# -- flood protection -------------------------------------------------------------------


def test_rate_limit_fold_counts_in_the_latest_unread_item(engagement_settings):
    engagement_settings.update(FEED_RATE_LIMIT={"alert": {"per_minute": 2, "mode": "fold"}})
    users = make_users(3)
    notify([users[0].pk], "alert", title="Early")
    created = [notify(users, "alert", title=f"Alert {n}") for n in range(3)]
    assert created == [3, 2, 0]
    assert badges(users) == [(2, 2), (2, 2), (2, 2)]
    rows = {
        (item.user.username, item.title): item.data.get("folded")
        for item in feed().filter(activity_type="alert")
    }
    # member0 was at the limit for Alert 1 and 2, the others for Alert 2: each
    # folded into the newest unread alert.
    assert rows == {
        ("member0", "Early"): None,
        ("member0", "Alert 0"): 2,
        ("member1", "Alert 0"): None,
        ("member1", "Alert 1"): 1,
        ("member2", "Alert 0"): None,
        ("member2", "Alert 1"): 1,
    }


def test_rate_limit_fold_skips_users_with_nothing_unread(engagement_settings):
    engagement_settings.update(FEED_RATE_LIMIT={"alert": {"per_minute": 1, "mode": "fold"}})
    (user,) = make_users(1)
    notify([user], "alert", title="One")
    mark_read(user)
    assert notify([user], "alert", title="Two") == 0
    assert [item.data for item in feed().all()] == [{}]


def test_grouped_folds_are_not_limited(grouped, campaign, course_members):
    members, joiners = course_members
    grouped.update(FEED_RATE_LIMIT={"member_joined": 1})
    for joiner in joiners:
        join(joiner, campaign)
    assert set(items().values_list("data__count", flat=True)) == {4}
    # A new group (another target) is a new item: over the limit, dropped.
    other = type(campaign).objects.create(name="Advent")
    other.members.add(*members)
    join(joiners[0], other)
    assert items().count() == 3


# -- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"FEED_GROUPING": {"t": {"window": 0}}}, "FEED_GROUPING['t']['window'] must be"),
        ({"FEED_GROUPING": {"t": {"span": 5}}}, "unknown keys ['span']"),
        ({"FEED_GROUPING": {"t": {"title": "{who} joined"}}}, "names {who}"),
        ({"FEED_GROUPING": {"t": {"title": "{count:>3}"}}}, "formats {count}"),
        ({"FEED_GROUPING": {"t": 3600}}, "must be a dict"),
        ({"FEED_RATE_LIMIT": {"t": {"per_minute": 5, "mode": "queue"}}}, "'mode'] must be"),
        ({"FEED_RATE_LIMIT": {"t": -1}}, "positive whole number"),
    ],
)
def test_bad_settings_are_e016(engagement_settings, setting, message):
    engagement_settings.update(**setting)
    errors = [m for m in check_engagement_settings() if m.id == "django_engagement.E016"]
    assert len(errors) == 1
    assert message in errors[0].msg


def test_good_settings_parse(engagement_settings):
    engagement_settings.update(
        FEED_GROUPING=GROUPING, FEED_RATE_LIMIT={"*": 30, "x": {"per_minute": 5, "mode": "fold"}}
    )
    assert grouping_table()["member_joined"].window == 3600
    table = rate_limit_table()
    assert (table["*"].per_minute, table["*"].mode, table["x"].mode) == (30, "drop", "fold")
    assert not [m for m in check_engagement_settings() if m.id == "django_engagement.E016"]
