"""export_user_data, ON_USER_DELETE with fanned-out feed items, CAPTURE_IP=False."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from django_engagement import export_user_data, record_event
from django_engagement.models import get_event_model, get_feed_model
from tests.testapp.models import Course

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


def test_export_user_data(user, other_user, campaign, django_assert_max_num_queries):
    course = Course.objects.create(title="Intro")
    joined = record_event(
        "target_joined",
        user=user,
        target=campaign,
        timestamp=datetime(2026, 1, 4, 10, 30, tzinfo=UTC),
        source="web",
        anonymous_id="anon-1",
    )
    viewed = record_event(
        "course_viewed",
        user=user,
        target=course,
        data={"page": 2},
        timestamp=datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
    )
    record_event("page_view", user=other_user)
    with django_assert_max_num_queries(3):
        exported = export_user_data(user)
    assert json.loads(json.dumps(exported)) == exported
    assert exported["user_id"] == user.pk
    first, second = exported["events"]
    assert first == {
        "event_id": str(joined.uuid),
        "event_type": "target_joined",
        "source": "web",
        "anonymous_id": "anon-1",
        "title": "",
        "description": "",
        "payload": {},
        "ip_address": None,
        "user_agent": "",
        "created_at": "2026-01-04T10:30:00Z",
        "received_at": first["received_at"],
        "target_type": "testapp.campaign",
        "target_id": str(campaign.pk),
    }
    assert (second["event_id"], second["payload"], second["target_id"]) == (
        str(viewed.uuid),
        {"page": 2},
        course.pk,
    )
    [item] = exported["feed_items"]
    assert {key: item[key] for key in ("activity_type", "title", "is_read", "target_type")} == {
        "activity_type": "target_join",
        "title": "You joined Great Lent",
        "is_read": False,
        "target_type": "testapp.campaign",
    }


def test_export_of_unknown_activity_is_empty(user):
    assert export_user_data(user) == {"user_id": user.pk, "events": [], "feed_items": []}


@pytest.mark.parametrize("nobody", [None, AnonymousUser()], ids=["none", "anonymous"])
def test_export_without_a_user_is_a_value_error(nobody, django_assert_num_queries):
    record_event("page_view", anonymous_id="anon-1")
    with django_assert_num_queries(0), pytest.raises(ValueError, match="needs a saved user"):
        export_user_data(nobody)


@pytest.mark.parametrize(("policy", "events_left"), [("delete", 1), ("anonymize", 3)])
def test_user_delete_policy_with_feed(
    engagement_settings, user, other_user, campaign, policy, events_left
):
    engagement_settings.update(ON_USER_DELETE=policy)
    campaign.members.add(user, other_user)
    record_event("target_joined", user=user, target=campaign)
    record_event("milestone_reached", target=campaign, data={"threshold": 2})
    record_event("page_view", user=user)
    user.delete()
    Event, Feed = get_event_model(), get_feed_model()
    assert Event._default_manager.count() == events_left
    assert Event._default_manager.filter(user__isnull=False).count() == 0
    # Feed items always go with their user; the other participant keeps theirs.
    assert list(Feed._default_manager.values_list("user_id", "activity_type")) == [
        (other_user.pk, "milestone")
    ]


def test_capture_ip_off_stores_no_ip(engagement_settings):
    engagement_settings.update(CAPTURE_IP=False)
    request = RequestFactory().get("/", REMOTE_ADDR="203.0.113.5")
    record_event("page_view", request=request)
    assert get_event_model()._default_manager.get().ip_address is None
