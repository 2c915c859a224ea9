"""The package's receivers: login, logout, signup, membership, target lifecycle, milestones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import connection
from django.db.models.signals import m2m_changed, post_save, pre_save
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext, override_settings

from django_engagement.conf import DEFAULTS
from django_engagement.models import get_event_model, get_feed_model
from django_engagement.receivers import connect_receivers, disconnect_receivers
from django_engagement.signals import milestone_reached
from tests.testapp.models import Campaign

pytestmark = pytest.mark.django_db

ALL_ON = dict.fromkeys(DEFAULTS["TRACK"], True)
ALL_OFF = dict.fromkeys(DEFAULTS["TRACK"], False)
EXAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "example_project"


@pytest.fixture
def tracking(engagement_settings, settings):
    """Every receiver on and connected, whatever the test settings connect at startup."""
    startup_track = engagement_settings.TRACK
    engagement_settings.update(TRACK=ALL_ON)
    connect_receivers()
    yield engagement_settings
    disconnect_receivers()
    with override_settings(ENGAGEMENT={**settings.ENGAGEMENT, "TRACK": startup_track}):
        connect_receivers()


def events(**filters):
    return get_event_model()._default_manager.filter(**filters)


def joined_users(campaign, event_type="target_joined"):
    rows = events(event_type=event_type, target_object_id=str(campaign.pk))
    return sorted(rows.values_list("user__username", flat=True))


def make_users(*names):
    User = get_user_model()
    return [User.objects.create_user(name, password="pw") for name in names]


def connected(signal, uid: str) -> bool:
    return any(key[0] == uid for key, *_ in signal.receivers)


# -- wiring ----------------------------------------------------------------------------


RECEIVERS = [
    (user_logged_in, "django_engagement.track_login", "login"),
    (user_logged_out, "django_engagement.track_logout", "logout"),
    (post_save, "django_engagement.track_signup", "signup"),
    (m2m_changed, "django_engagement.track_membership", "membership"),
    (pre_save, "django_engagement.snapshot_target", "target_lifecycle"),
    (post_save, "django_engagement.track_target_saved", "target_lifecycle"),
]


def test_receivers_are_connected_by_dispatch_uid(tracking):
    for signal, uid, _ in RECEIVERS:
        assert connected(signal, uid), uid


@pytest.mark.parametrize("key", sorted(ALL_ON))
def test_track_keys_choose_what_connects(tracking, settings, key):
    disconnect_receivers()
    with override_settings(ENGAGEMENT={**settings.ENGAGEMENT, "TRACK": {key: False}}):
        connect_receivers()
    for signal, uid, track_key in RECEIVERS:
        assert connected(signal, uid) is (track_key != key), uid


def test_nothing_to_connect_without_target(tracking, settings):
    disconnect_receivers()
    with override_settings(ENGAGEMENT_TARGET_MODEL=None):
        connect_receivers()
        for signal, uid, key in RECEIVERS:
            assert connected(signal, uid) is (key in ("login", "logout", "signup")), uid


# -- auth ------------------------------------------------------------------------------


def test_login_logout_and_signup(tracking):
    [alice] = make_users("alice")
    client = Client()
    assert client.login(username="alice", password="pw")
    client.logout()
    client.logout()  # already anonymous: nothing to record
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.20", HTTP_USER_AGENT="browser")
    user_logged_in.send(sender=type(alice), request=request, user=alice)
    user_logged_out.send(sender=type(alice), request=request, user=None)
    rows = events(user=alice).order_by("pk").values_list("event_type", "ip_address", "user_agent")
    assert list(rows) == [
        ("user_signed_up", None, ""),
        ("user_logged_in", None, ""),
        ("user_logged_out", None, ""),
        ("user_logged_in", "198.51.100.0", "browser"),
    ]


def test_switched_off_at_runtime(tracking):
    tracking.update(TRACK=ALL_OFF)
    make_users("alice")
    campaign = Campaign.objects.create(name="Quiet")
    campaign.members.add(*get_user_model().objects.all())
    assert events().count() == 0


def test_disabled_records_nothing(tracking):
    tracking.update(ENABLED=False)
    [alice] = make_users("alice")
    Campaign.objects.create(name="Quiet").members.add(alice)
    assert events().count() == 0


# -- membership ------------------------------------------------------------------------


def test_membership_from_both_sides(tracking):
    alice, bob, carol, dave = make_users("alice", "bob", "carol", "dave")
    campaign = Campaign.objects.create(name="Lent")
    campaign.members.add(alice, bob)
    carol.campaigns.add(campaign)
    campaign.members.add(alice)  # already a member: no second join
    assert joined_users(campaign) == ["alice", "bob", "carol"]

    campaign.members.remove(alice, dave)  # dave never joined
    bob.campaigns.remove(campaign)
    assert joined_users(campaign, "target_left") == ["alice", "bob"]

    campaign.members.clear()
    assert joined_users(campaign, "target_left") == ["alice", "bob", "carol"]

    campaign.members.set([alice, dave])
    dave.campaigns.clear()
    assert joined_users(campaign) == ["alice", "alice", "bob", "carol", "dave"]
    assert joined_users(campaign, "target_left") == ["alice", "bob", "carol", "dave"]
    join = events(event_type="target_joined", user=alice).first()
    assert join.target == campaign


def test_joins_fan_out_to_the_feed(tracking):
    alice, bob = make_users("alice", "bob")
    campaign = Campaign.objects.create(name="Lent")
    campaign.members.add(alice, bob)
    campaign.members.remove(bob)
    rows = (
        get_feed_model()
        ._default_manager.order_by("user__username", "activity_type")
        .values_list("user__username", "activity_type", "title")
    )
    # Ordered by user: the m2m signal's pk_set is a set, so insert order is arbitrary.
    assert list(rows) == [
        ("alice", "target_join", "You joined Lent"),
        ("bob", "target_join", "You joined Lent"),
        ("bob", "target_leave", "You left Lent"),
    ]


def query_count(action) -> int:
    with CaptureQueriesContext(connection) as queries:
        action()
    return len(queries)


def test_bulk_joins_are_set_based(tracking):
    tracking.update(MILESTONES=[])
    User = get_user_model()
    User.objects.bulk_create([User(username=f"m{n}") for n in range(60)])
    small, large = Campaign.objects.create(name="S"), Campaign.objects.create(name="L")
    users = list(User.objects.order_by("pk"))
    small_queries = query_count(lambda: small.members.add(*users[:3]))
    large_queries = query_count(lambda: large.members.add(*users[3:60]))
    assert small_queries == large_queries
    assert events(event_type="target_joined").count() == 60
    reverse_queries = query_count(lambda: users[0].campaigns.add(large))
    assert reverse_queries <= large_queries + 1  # targets come from one in_bulk query
    assert query_count(lambda: large.members.clear()) == query_count(lambda: small.members.clear())


# -- milestones ------------------------------------------------------------------------


def test_milestones_once_per_threshold(tracking, django_capture_on_commit_callbacks):
    tracking.update(MILESTONES=[2, 3, 5])
    alice, bob, carol, dave, erin = make_users("alice", "bob", "carol", "dave", "erin")
    campaign = Campaign.objects.create(name="Lent")
    received = []

    def listener(sender, target, threshold, count, event, **kwargs):
        received.append((sender, target, threshold, count, event.event_type))

    milestone_reached.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            campaign.members.add(alice)
            campaign.members.add(bob, carol)  # crosses 2 and 3 at once
            campaign.members.remove(carol)
            carol.campaigns.add(campaign)  # crosses 3 again: already recorded
            dave.campaigns.add(campaign)
            erin.campaigns.add(campaign)  # 5
    finally:
        milestone_reached.disconnect(listener)
    milestones = events(event_type="milestone_reached").order_by("pk")
    assert [event.data for event in milestones] == [
        {"threshold": 2, "count": 3},
        {"threshold": 3, "count": 3},
        {"threshold": 5, "count": 5},
    ]
    assert [event.idempotency_key for event in milestones] == [
        f"milestone:{milestones[0].target_content_type_id}:{campaign.pk}:{n}" for n in (2, 3, 5)
    ]
    assert [(r[0], r[1], r[2], r[3]) for r in received] == [
        (Campaign, campaign, 2, 3),
        (Campaign, campaign, 3, 3),
        (Campaign, campaign, 5, 5),
    ]
    feed = get_feed_model()._default_manager.filter(activity_type="milestone")
    # 3 members at thresholds 2 and 3, then 5 members at threshold 5.
    assert feed.count() == 3 + 3 + 5
    assert feed.filter(user=erin).get().title == "Lent reached 5 participants"


# -- target lifecycle ------------------------------------------------------------------


def test_target_created_and_updated(tracking, django_assert_max_num_queries):
    campaign = Campaign.objects.create(name="Lent")
    campaign.name = "Great Lent"
    campaign.starts_on = "2026-02-16"
    campaign.save()
    campaign.refresh_from_db()
    campaign.save()  # no change: nothing recorded
    campaign.save(update_fields=["club"])
    rows = events(target_object_id=str(campaign.pk)).order_by("pk")
    assert [(event.event_type, event.data) for event in rows] == [
        ("target_created", {}),
        ("target_updated", {"changed": ["name", "starts_on"]}),
        ("target_updated", {"changed": ["club"]}),
    ]


# -- the example project: participants through a profile model ------------------------

PROFILE_SCRIPT = """
import datetime, json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from hub.models import Church, Fast, Profile
from django_engagement.models import get_event_model
User = get_user_model()
profiles = [Profile.objects.create(user=User.objects.create_user(f"u{n}")) for n in range(4)]
fast = Fast.objects.create(name="Lent", church=Church.objects.create(name="St. Mary"),
                           starts_on=datetime.date(2026, 2, 16), ends_on=datetime.date(2026, 4, 4))
profiles[0].fasts.add(fast)
fast.profiles.add(profiles[1], profiles[2])
fast.profiles.remove(profiles[0], profiles[3])
profiles[1].fasts.clear()
rows = get_event_model().objects.filter(event_type__in=["fast_joined", "fast_left"])
print(json.dumps([[e.event_type, e.user.username] for e in rows.order_by("pk")]))
"""


def test_profile_path_in_the_example_project(tmp_path):
    if not EXAMPLE_PROJECT.is_dir():
        pytest.skip("example_project is not in this checkout")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'example.sqlite3'}",
        "PYTHONPATH": os.pathsep.join([str(EXAMPLE_PROJECT), str(EXAMPLE_PROJECT.parent)]),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROFILE_SCRIPT],
        cwd=EXAMPLE_PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        ["fast_joined", "u0"],
        ["fast_joined", "u1"],
        ["fast_joined", "u2"],
        ["fast_left", "u0"],
        ["fast_left", "u1"],
    ]
