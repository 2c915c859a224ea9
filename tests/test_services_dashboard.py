"""build_dashboard(): exact numbers on known data, day boundaries, constant query count."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from django_engagement.models import get_event_model, get_feed_model
from django_engagement.services.dashboard import MAX_DAYS, build_dashboard
from tests.testapp.models import Campaign, Club, Course

NO_TRACKING = {
    "login": False,
    "logout": False,
    "signup": False,
    "membership": False,
    "target_lifecycle": False,
}


@pytest.fixture
def quiet(engagement_settings):
    """No package receivers: the tests create every event themselves."""
    engagement_settings.update(TRACK=NO_TRACKING)
    return engagement_settings


def local_noon(days_ago: int) -> datetime:
    """Noon, ``days_ago`` calendar days before today, in the project TIME_ZONE."""
    tz = timezone.get_default_timezone()
    return datetime.combine(
        timezone.localdate(timezone=tz) - timedelta(days=days_ago), time(12), tz
    )


def day(days_ago: int) -> str:
    return (timezone.localdate() - timedelta(days=days_ago)).isoformat()


def make_known_events(django_user_model) -> dict:
    """The data set the dashboard tests count on (see the expected values below).

    days ago  events
    0         alice page_view x3, alice + bob join lent, anon-1 page_view x2
    1         bob leave lent, bob page_view, anon-2 page_view
    3         carol join lent, alice + carol join course (int pk, not the target model)
    5         alice join advent
    6         carol login
    7         dave page_view             (only in 30+ day windows)
    40        alice page_view            (only in 90+ day windows)
    Feed items: two for alice today, one 10 days ago.
    """
    users = {
        name: django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
        for name in ("alice", "bob", "carol", "dave")
    }
    club = Club.objects.create(name="St. Mary")
    lent = Campaign.objects.create(name="Great Lent", club=club)
    advent = Campaign.objects.create(name="Advent", club=club)
    course = Course.objects.create(title="Bible Study 101")
    alice, bob, carol, dave = (users[name] for name in ("alice", "bob", "carol", "dave"))
    Event = get_event_model()
    specs = [
        *[(0, "page_view", alice, "", None)] * 3,
        (0, "target_joined", alice, "", lent),
        (0, "target_joined", bob, "", lent),
        *[(0, "page_view", None, "anon-1", None)] * 2,
        (1, "target_left", bob, "", lent),
        (1, "page_view", bob, "", None),
        (1, "page_view", None, "anon-2", None),
        (3, "target_joined", carol, "", lent),
        (3, "target_joined", alice, "", course),
        (3, "target_joined", carol, "", course),
        (5, "target_joined", alice, "", advent),
        (6, "login", carol, "", None),
        (7, "page_view", dave, "", None),
        (40, "page_view", alice, "", None),
    ]
    Event._default_manager.bulk_create(
        Event(
            event_type=event_type,
            user=user,
            anonymous_id=anonymous_id,
            created_at=local_noon(days_ago),
            source="web",
            **({"target": target} if target else {}),
        )
        for days_ago, event_type, user, anonymous_id, target in specs
    )
    Feed = get_feed_model()
    Feed._default_manager.bulk_create(
        Feed(user=alice, activity_type="event", title=f"item {n}", created_at=local_noon(ago))
        for n, ago in enumerate((0, 0, 10))
    )
    return {**users, "lent": lent, "advent": advent, "course": course}


@pytest.fixture
def known(quiet, django_user_model):
    return make_known_events(django_user_model)


KNOWN_WEEK_TOTALS = {
    "events": 15,
    "unique_users": 3,
    "unique_anonymous": 2,
    "feed_items": 2,
    "joins": 6,
    "leaves": 1,
}


def expected_week(known: dict) -> dict:
    """build_dashboard(7) on make_known_events()."""
    per_day = {0: 7, 1: 3, 3: 3, 5: 1, 6: 1}
    joins = {0: 2, 3: 3, 5: 1}
    leaves = {1: 1}
    return {
        "days": 7,
        "start": day(6),
        "end": day(0),
        "totals": KNOWN_WEEK_TOTALS,
        "events_per_day": [
            {"date": day(ago), "count": per_day.get(ago, 0)} for ago in range(6, -1, -1)
        ],
        "events_by_type": [
            {"event_type": "page_view", "count": 7},
            {"event_type": "target_joined", "count": 6},
            {"event_type": "login", "count": 1},
            {"event_type": "target_left", "count": 1},
        ],
        "joins_leaves_per_day": [
            {"date": day(ago), "joins": joins.get(ago, 0), "leaves": leaves.get(ago, 0)}
            for ago in range(6, -1, -1)
        ],
        "top_users": [
            {"user_id": known["alice"].pk, "username": "alice", "count": 6},
            {"user_id": known["bob"].pk, "username": "bob", "count": 3},
            {"user_id": known["carol"].pk, "username": "carol", "count": 3},
        ],
        "top_targets": [
            {
                "target_type": "testapp.campaign",
                "target_id": str(known["lent"].pk),
                "name": "Great Lent",
                "count": 3,
            },
            {
                "target_type": "testapp.course",
                "target_id": known["course"].pk,
                "name": "Bible Study 101",
                "count": 2,
            },
            {
                "target_type": "testapp.campaign",
                "target_id": str(known["advent"].pk),
                "name": "Advent",
                "count": 1,
            },
        ],
    }


def test_week_exact(known, django_assert_num_queries):
    # 7 grouped queries (the first: which days are aggregated), then usernames, content
    # types and one name query per content type among the top targets (campaign and course).
    with django_assert_num_queries(11):
        result = build_dashboard(7)
    assert result == expected_week(known)


def test_longer_windows_include_older_events(known):
    month = build_dashboard(30)
    assert len(month["events_per_day"]) == 30
    assert month["start"] == day(29)
    assert month["totals"] == {
        "events": 16,
        "unique_users": 4,
        "unique_anonymous": 2,
        "feed_items": 3,
        "joins": 6,
        "leaves": 1,
    }
    assert month["events_per_day"][-8] == {"date": day(7), "count": 1}
    assert month["top_users"][-1]["username"] == "dave"

    quarter = build_dashboard(90)
    assert quarter["totals"]["events"] == 17
    assert quarter["events_by_type"][0] == {"event_type": "page_view", "count": 9}
    assert quarter["top_users"][0] == {
        "user_id": known["alice"].pk,
        "username": "alice",
        "count": 7,
    }


def test_empty_window_has_every_day_at_zero(quiet, db, django_assert_num_queries):
    with django_assert_num_queries(7):
        result = build_dashboard(7)
    assert [row["count"] for row in result["events_per_day"]] == [0] * 7
    assert [row["date"] for row in result["events_per_day"]] == [
        day(ago) for ago in range(6, -1, -1)
    ]
    assert result["joins_leaves_per_day"][0] == {"date": day(6), "joins": 0, "leaves": 0}
    assert result["totals"] == dict.fromkeys(
        ("events", "unique_users", "unique_anonymous", "feed_items", "joins", "leaves"), 0
    )
    assert result["events_by_type"] == result["top_users"] == result["top_targets"] == []


def test_one_day_window_is_today(known):
    result = build_dashboard(1)
    assert result["start"] == result["end"] == day(0)
    assert result["events_per_day"] == [{"date": day(0), "count": 7}]


def test_query_count_does_not_grow_with_data(known, django_user_model, django_assert_num_queries):
    Event = get_event_model()
    extra_users = [
        django_user_model.objects.create_user(f"extra{n}", f"extra{n}@example.com", "pw")
        for n in range(12)
    ]
    campaigns = [Campaign.objects.create(name=f"Campaign {n}") for n in range(12)]
    Event._default_manager.bulk_create(
        Event(event_type=event_type, user=user, target=campaign, created_at=local_noon(n % 7))
        for n, (user, campaign) in enumerate(zip(extra_users, campaigns, strict=True))
        for event_type in ("target_joined", "target_left", "page_view")
    )
    with django_assert_num_queries(11):
        result = build_dashboard(365)
    assert len(result["top_users"]) == len(result["top_targets"]) == 10
    assert result["totals"]["events"] == 17 + 36


def test_join_and_leave_event_codes_follow_settings(known, quiet):
    quiet.update(TRACK=NO_TRACKING, JOIN_EVENT="page_view", LEAVE_EVENT="login")
    result = build_dashboard(7)
    assert (result["totals"]["joins"], result["totals"]["leaves"]) == (7, 1)
    assert result["joins_leaves_per_day"][0] == {"date": day(6), "joins": 0, "leaves": 1}
    # Top targets rank JOIN_EVENT events: page views have no target.
    assert result["top_targets"] == []


def test_target_names_use_target_name_field(known, quiet):
    quiet.update(TRACK=NO_TRACKING, TARGET_NAME_FIELD="club__name")
    names = [row["name"] for row in build_dashboard(7)["top_targets"]]
    assert names == ["St. Mary", "Bible Study 101", "St. Mary"]


def test_without_target_model_names_are_str(known, quiet, settings):
    quiet.update(TRACK=NO_TRACKING, TARGET_NAME_FIELD="club__name")
    settings.ENGAGEMENT_TARGET_MODEL = None
    names = [row["name"] for row in build_dashboard(7)["top_targets"]]
    assert names == ["Great Lent", "Bible Study 101", "Advent"]


def test_deleted_target_has_no_name(known):
    known["course"].delete()
    rows = build_dashboard(7)["top_targets"]
    assert [(row["target_type"], row["name"], row["count"]) for row in rows] == [
        ("testapp.campaign", "Great Lent", 3),
        ("testapp.course", None, 2),
        ("testapp.campaign", "Advent", 1),
    ]


def test_days_follow_the_project_time_zone(quiet, db, settings):
    settings.TIME_ZONE = "America/New_York"
    tz = timezone.get_default_timezone()
    today = timezone.localdate(timezone=tz)
    midnight = datetime.combine(today, time.min, tz)
    Event = get_event_model()
    Event._default_manager.bulk_create(
        [
            Event(event_type="page_view", created_at=midnight - timedelta(minutes=1)),
            Event(event_type="page_view", created_at=midnight + timedelta(minutes=1)),
            Event(event_type="page_view", created_at=midnight - timedelta(days=6, minutes=1)),
        ]
    )
    result = build_dashboard(7)
    assert result["end"] == today.isoformat()
    assert result["events_per_day"][-2:] == [
        {"date": (today - timedelta(days=1)).isoformat(), "count": 1},
        {"date": today.isoformat(), "count": 1},
    ]
    # The third event is one minute before the window opens.
    assert result["totals"]["events"] == 2


@pytest.mark.parametrize("days", [0, -1, MAX_DAYS + 1, "7", 7.0, True, None])
def test_invalid_days_raise_value_error(days):
    with pytest.raises(ValueError, match="days must be an integer between 1 and 365"):
        build_dashboard(days)


def test_window_dates_are_iso(known):
    result = build_dashboard(365)
    assert date.fromisoformat(result["start"]) == timezone.localdate() - timedelta(days=364)
    assert len(result["joins_leaves_per_day"]) == 365


def test_joins_without_target_are_not_a_top_target(known):
    Event = get_event_model()
    Event._default_manager.bulk_create(
        Event(event_type="target_joined", user=known["dave"], created_at=local_noon(0))
        for _ in range(5)
    )
    result = build_dashboard(7)
    assert result["totals"]["joins"] == 11
    assert [(row["name"], row["count"]) for row in result["top_targets"]] == [
        ("Great Lent", 3),
        ("Bible Study 101", 2),
        ("Advent", 1),
    ]
