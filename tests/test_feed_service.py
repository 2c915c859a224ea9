"""notify, FEED_RULES fan-out, serialize_feed_item, feed_summary, mark_read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework.fields import DateTimeField

from django_engagement import feed_summary, notify, record_event, record_events
from django_engagement.api.serializers import serialize_feed_item
from django_engagement.models import get_feed_model
from django_engagement.services.analytics import iso_timestamp
from django_engagement.services.feed import FeedRule, fan_out, mark_read, participants_queryset
from django_engagement.signals import feed_items_created, feed_items_read
from tests.helpers import counter_statements, feed, make_users
from tests.testapp.models import Course

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


class Listener:
    def __init__(self, signal):
        self.calls = []
        self.signal = signal

    def __call__(self, sender, **kwargs):
        self.calls.append({"sender": sender, **kwargs})

    def __enter__(self):
        self.signal.connect(self)
        return self

    def __exit__(self, *exc):
        self.signal.disconnect(self)


# -- notify ----------------------------------------------------------------------------


def test_notify_queryset_is_one_insert(campaign, django_assert_max_num_queries):
    make_users(200)
    User = get_user_model()
    with django_assert_max_num_queries(3 + counter_statements()):
        count = notify(
            User.objects.filter(username__startswith="member"),
            "reminder",
            title="Fast starts tomorrow",
            description="Prepare",
            target=campaign,
            data={"days": 1},
        )
    assert count == 200
    assert feed().count() == 200
    item = feed().get(user__username="member7")
    assert (item.activity_type, item.title, item.description) == (
        "reminder",
        "Fast starts tomorrow",
        "Prepare",
    )
    assert item.data == {"days": 1}
    assert item.target == campaign
    assert (item.is_read, item.read_at, item.event_id) == (False, None, None)


@pytest.mark.parametrize(
    "recipients",
    [
        lambda User: User.objects.none(),
        lambda User: User.objects.filter(pk__in=[]),
        lambda User: User.objects.filter(pk__in=[]).filter(is_active=True),
        lambda User: [],
    ],
    ids=["none", "pk-in-empty", "pk-in-empty-chained", "empty-list"],
)
def test_notify_nobody_is_zero(user, recipients, django_assert_max_num_queries):
    with Listener(feed_items_created) as listener, django_assert_max_num_queries(0):
        assert notify(recipients(get_user_model()), "event", title="Hello") == 0
    assert feed().count() == 0
    assert listener.calls == []


def test_only_an_insert_that_can_conflict_says_on_conflict(user, other_user):
    """Without an event no unique constraint can match a copy, so the fan-out skips
    ON CONFLICT's speculative insertion; with one, a replay still inserts nothing twice."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    event = record_event("page_view", user=user)
    users = get_user_model().objects.filter(pk__in=[user.pk, other_user.pk])
    with CaptureQueriesContext(connection) as plain:
        assert notify(users, "event", title="Hello") == 2
    with CaptureQueriesContext(connection) as keyed:
        assert notify(users, "event", title="Hello", event=event) == 2
        assert notify(users, "event", title="Hello", event=event) == 0
    table = f'INTO "{get_feed_model()._meta.db_table}"'
    plain_inserts = [q["sql"] for q in plain if table in q["sql"]]
    keyed_inserts = [q["sql"] for q in keyed if table in q["sql"]]

    def ignores(sql: str) -> bool:  # PostgreSQL's suffix, SQLite's prefix
        return "ON CONFLICT DO NOTHING" in sql or sql.startswith("INSERT OR IGNORE")

    assert len(plain_inserts) == 1 and not ignores(plain_inserts[0])
    assert len(keyed_inserts) == 2 and all(ignores(sql) for sql in keyed_inserts)
    assert feed().count() == 4


def test_notify_iterables_of_users_and_ids(user, other_user):
    assert notify([user, other_user.pk, 987654], "event", title="Hello") == 2
    assert sorted(feed().values_list("user_id", flat=True)) == sorted([user.pk, other_user.pk])
    # Without an event there is no uniqueness: a second call adds again.
    assert notify([user], "event", title="Hello") == 1
    assert notify([], "event", title="Nobody") == 0


def test_notify_with_event_skips_existing(user, other_user, django_capture_on_commit_callbacks):
    event = record_event("announcement")
    with Listener(feed_items_created) as listener, django_capture_on_commit_callbacks(execute=True):
        assert notify([user], "event", title="News", event=event) == 1
        assert notify([user, other_user], "event", title="News", event=event) == 1
        assert notify(get_user_model().objects.all(), "event", title="News", event=event) == 0
        # Another activity type for the same event is a different item.
        assert notify([user], "milestone", title="News", event=event) == 1
    assert feed().count() == 3
    assert [
        (c["activity_type"], c["count"], c["user_ids"], c["event"]) for c in listener.calls
    ] == [
        ("event", 1, [user.pk], event),
        ("event", 1, [user.pk, other_user.pk], event),
        ("milestone", 1, [user.pk], event),
    ]
    assert listener.calls[0]["sender"] is get_feed_model()


def test_notify_many_ids_in_chunks(django_assert_max_num_queries):
    users = make_users(4500)
    with django_assert_max_num_queries(5 + counter_statements(3)):  # 3 chunks of 2,000
        assert notify([u.pk for u in users], "event", title="All") == 4500


# -- fan-out (FEED_RULES) --------------------------------------------------------------


def test_default_rules_join_and_leave(user, campaign):
    joined = record_event("target_joined", user=user, target=campaign)
    left = record_event("target_left", user=user, target=campaign)
    record_event("page_view", user=user, target=campaign)
    record_event("target_joined", target=campaign)  # no actor: nobody to tell
    items = list(
        feed().order_by("pk").values("user_id", "activity_type", "title", "event_id", "data")
    )
    assert items == [
        {
            "user_id": user.pk,
            "activity_type": "target_join",
            "title": "You joined Great Lent",
            "event_id": joined.pk,
            "data": {"campaign_id": str(campaign.pk), "campaign_name": "Great Lent"},
        },
        {
            "user_id": user.pk,
            "activity_type": "target_leave",
            "title": "You left Great Lent",
            "event_id": left.pk,
            "data": {"campaign_id": str(campaign.pk), "campaign_name": "Great Lent"},
        },
    ]


def test_participant_rules_reach_every_member(user, other_user, campaign):
    outsider = make_users(1, prefix="outsider")[0]
    campaign.members.add(user, other_user)
    record_event("milestone_reached", target=campaign, data={"threshold": 10, "count": 10})
    record_event("target_started", target=campaign)
    rows = (
        feed().order_by("activity_type", "user_id").values_list("user_id", "activity_type", "title")
    )
    assert list(rows) == [
        (user.pk, "milestone", "Great Lent reached 10 participants"),
        (other_user.pk, "milestone", "Great Lent reached 10 participants"),
        (user.pk, "target_start", "Great Lent has started"),
        (other_user.pk, "target_start", "Great Lent has started"),
    ]
    assert not feed().filter(user=outsider).exists()


def test_batch_fan_out_is_set_based(campaign, django_assert_max_num_queries):
    users = make_users(60)
    specs = [{"event_type": "target_joined", "user": u, "target": campaign} for u in users]
    # event insert + feed insert (+ savepoints)
    with django_assert_max_num_queries(6):
        record_events(specs)
    assert feed().filter(activity_type="target_join").count() == 60


def test_join_and_leave_codes_follow_settings(engagement_settings, user, campaign):
    engagement_settings.update(JOIN_EVENT="fast_joined")
    record_event("fast_joined", user=user, target=campaign)
    record_event("target_joined", user=user, target=campaign)
    assert list(feed().values_list("activity_type", flat=True)) == ["target_join"]


def test_dict_rules_merge_over_defaults(engagement_settings, user, campaign):
    engagement_settings.update(
        FEED_RULES={
            "comment_posted": {
                "activity_type": "event",
                "title": "You commented on {target}",
                "description": "{data[text]}{data[missing]}",
            },
            "target_left": None,
        }
    )
    record_event("comment_posted", user=user, target=campaign, data={"text": "Amen"})
    record_event("target_left", user=user, target=campaign)
    record_event("target_joined", user=user, target=campaign)
    rows = feed().order_by("pk").values_list("activity_type", "title", "description")
    assert list(rows) == [
        ("event", "You commented on Great Lent", "Amen"),
        ("target_join", "You joined Great Lent", ""),
    ]


def custom_rules(event):
    """Dotted-path FEED_RULES used by the tests: every event with a user, to the actor."""
    if event.user_id is None:
        return []
    return [{"activity_type": "event", "title": "Did {event_type}"}, FeedRule("milestone")]


def test_callable_rules_by_dotted_path(engagement_settings, user):
    engagement_settings.update(FEED_RULES="tests.test_feed_service.custom_rules")
    record_event("page_view", user=user)
    record_event("page_view")
    assert sorted(feed().values_list("activity_type", "title")) == [
        ("event", "Did page_view"),
        ("milestone", ""),
    ]


@pytest.mark.parametrize(
    "rule",
    [
        {"title": "no type"},
        {"activity_type": "event", "recipients": "everyone"},
        {"activity_type": "event", "colour": "red"},
        "event",
    ],
)
def test_bad_rules_are_reported(engagement_settings, user, rule):
    engagement_settings.update(FEED_RULES={"page_view": rule})
    with pytest.raises(ImproperlyConfigured, match=r"FEED_RULES\['page_view'\]"):
        record_event("page_view", user=user)


def test_fan_out_is_idempotent_and_can_target_one_user(user, other_user, campaign):
    campaign.members.add(user, other_user)
    event = record_event("milestone_reached", target=campaign, data={"threshold": 50})
    assert fan_out([event]) == 0
    feed().all().delete()
    assert fan_out([event], user=other_user) == 1
    assert list(feed().values_list("user_id", flat=True)) == [other_user.pk]


def test_participants_queryset(engagement_settings, user, other_user, campaign):
    campaign.members.add(user)
    assert list(participants_queryset(campaign)) == [user]
    assert participants_queryset(Course.objects.create(title="x")) is None
    assert participants_queryset(None) is None
    engagement_settings.update(TARGET_PARTICIPANTS=None)
    assert participants_queryset(campaign) is None


# -- serialize_feed_item ---------------------------------------------------------------


def test_serialize_feed_item_shape(user, campaign, django_assert_num_queries):
    course = Course.objects.create(title="Intro")
    created = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    Feed = get_feed_model()
    Feed.objects.bulk_create(
        [
            Feed(
                user=user,
                activity_type="target_join",
                title="Joined",
                target=campaign,
                created_at=created,
            ),
            Feed(
                user=user,
                activity_type="custom_thing",
                title="Course",
                target=course,
                data={"a": 1},
            ),
            Feed(user=user, activity_type="event", title="Plain", is_read=True, read_at=created),
        ]
    )
    items = list(feed().for_user(user).order_by("pk").with_targets())
    with django_assert_num_queries(0):
        data = [serialize_feed_item(item) for item in items]
    assert data[0] == {
        "id": items[0].pk,
        "activity_type": "target_join",
        "activity_type_display": "Joined campaign",
        "title": "Joined",
        "description": "",
        "is_read": False,
        "read_at": None,
        "created_at": "2024-01-15T10:30:00Z",
        "age_display": items[0].age_display,
        "data": {},
        "target_type": "testapp.campaign",
        "target_id": str(campaign.pk),
    }
    assert data[0]["age_display"].endswith(" ago")
    assert (data[1]["activity_type_display"], data[1]["target_type"]) == (
        "Custom thing",
        "testapp.course",
    )
    assert data[1]["target_id"] == course.pk
    assert isinstance(data[1]["target_id"], int)
    assert (data[2]["target_type"], data[2]["target_id"]) == (None, None)
    assert (data[2]["is_read"], data[2]["read_at"]) == (True, "2024-01-15T10:30:00Z")


def test_iso_timestamp_is_the_api_form(settings):
    """privacy exports use it; the API's DRF field and it agree on every time zone."""
    moment = datetime(2024, 1, 15, 10, 30, 5, tzinfo=UTC)
    assert iso_timestamp(None) is None
    assert iso_timestamp(moment) == "2024-01-15T10:30:05Z"
    settings.TIME_ZONE = "Europe/Athens"
    assert iso_timestamp(moment) == "2024-01-15T12:30:05+02:00"
    assert iso_timestamp(moment) == DateTimeField().to_representation(moment)


# -- feed_summary ----------------------------------------------------------------------


def test_feed_summary(user, other_user, campaign, django_assert_max_num_queries):
    Feed = get_feed_model()
    now = timezone.now()
    types = ["target_join"] * 5 + ["reminder"] * 3 + ["content_available"] * 2 + ["milestone"]
    Feed.objects.bulk_create(
        [
            Feed(
                user=user,
                activity_type=activity_type,
                title=f"item {n}",
                is_read=n >= 8,
                created_at=now - timedelta(hours=n),
                target=campaign,
            )
            for n, activity_type in enumerate(types)
        ]
        + [Feed(user=other_user, activity_type="target_join", title="not yours")]
    )
    with django_assert_max_num_queries(2):
        summary = feed_summary(user)
    assert {key: summary[key] for key in ("total_items", "unread_count", "read_count")} == {
        "total_items": 11,
        "unread_count": 8,
        "read_count": 3,
    }
    assert summary["activity_types"] == {
        "target_join": 5,
        "reminder": 3,
        "content_available": 2,
        "milestone": 1,
    }
    assert list(summary["activity_types"]) == [
        "target_join",
        "reminder",
        "content_available",
        "milestone",
    ]
    assert [item.title for item in summary["recent_activity"]] == [f"item {n}" for n in range(5)]
    with django_assert_max_num_queries(0):  # content types came with the items
        assert serialize_feed_item(summary["recent_activity"][0])["target_type"] == (
            "testapp.campaign"
        )


EMPTY_SUMMARY = {
    "total_items": 0,
    "unread_count": 0,
    "read_count": 0,
    "activity_types": {},
    "recent_activity": [],
}


@pytest.mark.parametrize("visitor", [AnonymousUser(), None], ids=["anonymous", "none"])
def test_feed_summary_of_a_visitor_is_empty(user, visitor, django_assert_num_queries):
    notify([user], "event", title="Not for visitors")
    with django_assert_num_queries(0):
        assert feed_summary(visitor) == EMPTY_SUMMARY


def test_feed_summary_of_empty_feed(user):
    assert feed_summary(user) == {
        "total_items": 0,
        "unread_count": 0,
        "read_count": 0,
        "activity_types": {},
        "recent_activity": [],
    }


# -- mark_read -------------------------------------------------------------------------


def test_mark_read_own_items_only(
    user, other_user, django_assert_num_queries, django_capture_on_commit_callbacks
):
    Feed = get_feed_model()
    mine = Feed.objects.bulk_create(
        [Feed(user=user, activity_type="event", title=str(n)) for n in range(4)]
    )
    theirs = Feed.objects.create(user=other_user, activity_type="event", title="theirs")
    mine = list(feed().for_user(user).order_by("pk"))
    with Listener(feed_items_read) as listener, django_capture_on_commit_callbacks(execute=True):
        with django_assert_num_queries(1 + counter_statements()):
            updated = mark_read(user, ids=[mine[0].pk, mine[1].pk, theirs.pk])
        assert updated == 2
        assert mark_read(user, ids=[mine[0].pk]) == 0
        assert mark_read(user) == 2
    theirs.refresh_from_db()
    assert (theirs.is_read, theirs.read_at) == (False, None)
    assert feed().for_user(user).unread().count() == 0
    assert feed().for_user(user).filter(read_at__isnull=True).count() == 0
    assert [(c["user"], c["count"], c["ids"]) for c in listener.calls] == [
        (user, 2, [mine[0].pk, mine[1].pk, theirs.pk]),
        (user, 2, None),
    ]
