"""Notification preferences: resolution, fan-out honouring them in SQL, the API, admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from django_engagement import notify, record_event
from django_engagement.models import NotificationPreference, TargetMute
from django_engagement.services.preferences import defaults_for, mute_target, set_preferences
from tests.helpers import feed, make_users
from tests.testapp.models import Course

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

URL = "django_engagement:engagement-activity-feed-preferences"


def members():
    return get_user_model().objects.filter(username__startswith="member")


def test_defaults_merge_type_over_star(engagement_settings):
    engagement_settings.update(
        NOTIFICATION_DEFAULTS={"*": {"email": "daily"}, "milestone": {"in_feed": False}}
    )
    assert defaults_for("milestone") == {"in_feed": False, "email": "daily"}
    assert defaults_for("other") == {"in_feed": True, "email": "daily"}


def test_fan_out_skips_opted_out_and_muted_in_one_statement(django_assert_max_num_queries):
    users = make_users(10)
    course = Course.objects.create(title="Intro to Django")
    # Type row off; global row off but type row on; global off only; a mute; an expired mute.
    NotificationPreference.objects.create(user=users[0], activity_type="news", in_feed=False)
    NotificationPreference.objects.create(user=users[1], activity_type="", in_feed=False)
    NotificationPreference.objects.create(user=users[1], activity_type="news", in_feed=True)
    NotificationPreference.objects.create(user=users[2], activity_type="", in_feed=False)
    mute_target(users[3], course)
    mute_target(users[4], course, until=timezone.now() - timedelta(minutes=1))
    with django_assert_max_num_queries(3):
        assert notify(members(), "news", title="Hello", target=course) == 7
    got = set(feed().values_list("user__username", flat=True))
    assert got == {f"member{n}" for n in (1, 4, 5, 6, 7, 8, 9)}


def test_rows_that_opt_out_of_other_types_keep_nobody_out(django_assert_max_num_queries):
    """Opt-outs of another type and opt-ins do not count: everybody gets the item, and
    the statement tests once for opt-outs before any per-recipient lookup."""
    users = make_users(4)
    NotificationPreference.objects.create(user=users[0], activity_type="other", in_feed=False)
    NotificationPreference.objects.create(user=users[1], activity_type="news", in_feed=True)
    with django_assert_max_num_queries(3) as queries:
        assert notify(members(), "news", title="Hello") == 4
    insert = next(q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"])
    # The uncorrelated opt-out test comes first in the OR, the correlated lookups second.
    assert insert.index("NOT EXISTS") < insert.index("COALESCE")


@pytest.mark.parametrize("activity_type", ["news", ""])
def test_one_opt_out_row_turns_the_lookups_on(activity_type):
    users = make_users(3)
    NotificationPreference.objects.create(user=users[0], activity_type=activity_type, in_feed=False)
    assert notify(members(), "news", title="Hello") == 2
    assert set(feed().values_list("user_id", flat=True)) == {users[1].pk, users[2].pk}


def test_setting_default_off_needs_an_opt_in(engagement_settings):
    engagement_settings.update(NOTIFICATION_DEFAULTS={"*": {}, "digest_only": {"in_feed": False}})
    users = make_users(3)
    NotificationPreference.objects.create(user=users[2], activity_type="digest_only", in_feed=True)
    assert notify([u.pk for u in users], "digest_only", title="Hi") == 1
    assert list(feed().values_list("user_id", flat=True)) == [users[2].pk]


def test_preference_change_is_seen_by_the_next_fan_out(campaign, engagement_settings):
    users = make_users(4)
    campaign.members.add(*users)
    record_event("target_started", target=campaign)
    assert feed().filter(activity_type="target_start").count() == 4
    set_preferences(users[0], {"activity_types": {"target_start": {"in_feed": False}}})
    mute_target(users[1], campaign)
    record_event("target_started", target=campaign)
    assert feed().filter(activity_type="target_start").count() == 4 + 2


def test_get_defaults(auth_client):
    response = auth_client.get(reverse(URL))
    assert response.status_code == 200
    assert response.json() == {
        "default": {"in_feed": True, "email": "never"},
        "activity_types": {},
        "muted_targets": [],
    }


def test_patch_merges_and_put_replaces(auth_client, user):
    course = Course.objects.create(title="Intro")
    response = auth_client.patch(
        reverse(URL),
        {
            "default": {"email": "weekly"},
            "activity_types": {"milestone": {"in_feed": False}},
            "muted_targets": [{"target_type": "testapp.course", "target_id": course.pk}],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "default": {"in_feed": True, "email": "weekly"},
        # The new override starts from the user's default, then takes the change.
        "activity_types": {"milestone": {"in_feed": False, "email": "weekly"}},
        "muted_targets": [{"target_type": "testapp.course", "target_id": course.pk, "until": None}],
    }
    response = auth_client.patch(
        reverse(URL), {"activity_types": {"milestone": None}}, format="json"
    )
    assert response.json()["activity_types"] == {}
    assert response.json()["muted_targets"][0]["target_id"] == course.pk
    response = auth_client.put(
        reverse(URL), {"activity_types": {"news": {"email": "daily"}}}, format="json"
    )
    assert response.json() == {
        "default": {"in_feed": True, "email": "never"},
        "activity_types": {"news": {"in_feed": True, "email": "daily"}},
        "muted_targets": [],
    }
    assert NotificationPreference.objects.filter(user=user).count() == 1
    assert TargetMute.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"default": {"email": "hourly"}}, "default"),
        ({"default": {"colour": "red"}}, "default"),
        ({"activity_types": {"x": {"in_feed": "maybe"}}}, "activity_types"),
        ({"muted_targets": [{"target_type": "nope.model", "target_id": 1}]}, "muted_targets"),
        ({"muted_targets": [{"target_type": "testapp.course", "target_id": "x"}]}, "muted_targets"),
        ({"muted_targets": [{"target_type": "testapp.course", "target_id": [1]}]}, "muted_targets"),
        ({"muted_targets": "all"}, "muted_targets"),
        ({"whatever": 1}, "whatever"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(auth_client, body, field):
    response = auth_client.patch(reverse(URL), body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_anonymous_is_refused(api_client, db):
    assert api_client.get(reverse(URL)).status_code in (401, 403)


def test_users_see_only_their_own(auth_client, other_user, django_assert_max_num_queries):
    NotificationPreference.objects.create(user=other_user, activity_type="news", in_feed=False)
    with django_assert_max_num_queries(3):
        response = auth_client.get(reverse(URL))
    assert response.json()["activity_types"] == {}


def test_admin_lists_preferences(admin_client, user):
    NotificationPreference.objects.create(user=user, activity_type="news", in_feed=False)
    response = admin_client.get(
        reverse("admin:django_engagement_notificationpreference_changelist")
    )
    assert response.status_code == 200
    assert b"news" in response.content
    assert (
        admin_client.get(reverse("admin:django_engagement_targetmute_changelist")).status_code
        == 200
    )
    assert (
        admin_client.get(reverse("admin:django_engagement_feedemail_changelist")).status_code == 200
    )


def test_rate_limit_drops_past_n_per_minute(engagement_settings):
    engagement_settings.update(FEED_RATE_LIMIT={"alert": 2})
    users = make_users(3)
    notify([users[0].pk], "alert", title="Early")
    created = [notify(members(), "alert", title=f"Alert {n}") for n in range(3)]
    assert created == [3, 2, 0]
    assert {u.pk: feed().filter(user=u).count() for u in users} == {
        users[0].pk: 2,
        users[1].pk: 2,
        users[2].pk: 2,
    }
    # Other types are not limited; an item older than a minute no longer counts.
    assert notify(members(), "news", title="Other") == 3
    feed().filter(activity_type="alert").update(created_at=timezone.now() - timedelta(minutes=2))
    assert notify(members(), "alert", title="Later") == 3
