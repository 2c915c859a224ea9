"""A host whose target is a course reads only its own words: feed API, admin, reports.

The test settings' target is a campaign; here ``testapp.Course`` takes its place with
renamed join/leave codes, as a new project would configure it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from django_engagement import build_engagement_report, record_event
from django_engagement.conf import DEFAULT_ACTIVITY_TYPES
from django_engagement.models import get_feed_model
from django_engagement.models.base import activity_type_label
from django_engagement.receivers import connect_receivers, disconnect_receivers
from tests.testapp.models import Course

COURSE_HOST = {
    "ENGAGEMENT_TARGET_MODEL": "testapp.Course",
    "ENGAGEMENT": {
        "TARGET_LABEL": "course",
        "TARGET_NAME_FIELD": "title",
        "TARGET_PARTICIPANTS": "students",
        "JOIN_EVENT": "course_joined",
        "LEAVE_EVENT": "course_left",
        "WRITE_KEYS": {"wk_test": {"source": "web"}},
    },
}
# Words of the package's defaults or of other hosts that must not reach this host's users.
FOREIGN_WORDS = ("target", "fast", "campaign")


@pytest.fixture
def course_host(db):
    """The course settings, with the receivers connected to ``Course.students``."""
    disconnect_receivers()
    with override_settings(**COURSE_HOST):
        connect_receivers()
        yield
        disconnect_receivers()
    connect_receivers()


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


def assert_own_words(*texts: str) -> None:
    for text in texts:
        assert not any(word in text.lower() for word in FOREIGN_WORDS), text


def feed_rows(user) -> list[tuple[str, str, str]]:
    items = get_feed_model().objects.filter(user=user).order_by("created_at", "pk")
    return [(item.activity_type, item.activity_type_display, item.title) for item in items]


def test_joining_and_leaving_a_course_reads_in_the_hosts_words(course_host, alice, client):
    course = Course.objects.create(title="Django basics")
    course.students.add(alice)
    record_event("target_started", target=course)
    course.students.remove(alice)

    assert feed_rows(alice) == [
        ("target_join", "Joined course", "You joined Django basics"),
        ("target_start", "Course started", "Django basics has started"),
        ("target_leave", "Left course", "You left Django basics"),
    ]
    client.login(username="alice", password="pw")
    results = client.get(reverse("django_engagement:engagement-activity-feed-list")).json()[
        "results"
    ]
    assert [item["activity_type_display"] for item in results] == [
        "Left course",
        "Course started",
        "Joined course",
    ]
    assert {item["target_type"] for item in results} == {"testapp.course"}
    assert_own_words(*(f"{item['activity_type_display']} {item['title']}" for item in results))


def test_renamed_join_code_keeps_its_rule_and_the_old_code_has_none(course_host, alice):
    course = Course.objects.create(title="Django basics")
    record_event("target_joined", user=alice, target=course)
    assert feed_rows(alice) == []
    record_event("course_joined", user=alice, target=course)
    assert feed_rows(alice) == [("target_join", "Joined course", "You joined Django basics")]


def test_admin_shows_labels_and_the_target_column_in_the_hosts_words(
    course_host, alice, admin_client
):
    Course.objects.create(title="Django basics").students.add(alice)
    opts = get_feed_model()._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")

    html = admin_client.get(url).content.decode()
    assert '<td class="field-activity_type_display">Joined course</td>' in html
    assert '<td class="field-target_display">Django basics</td>' in html
    assert ">Course</a>" in html  # the target column's header
    choices = admin_client.get(url).context["cl"].filter_specs[1].lookup_choices
    assert ("target_join", "Joined course") in choices
    assert_own_words(*(label for _, label in choices))


def test_report_keys_name_courses(course_host, alice):
    Course.objects.create(title="Django basics").students.add(alice)
    today = timezone.localdate()

    report = build_engagement_report(today - timedelta(days=1), today)
    assert list(report) == [
        "period",
        "new_users_over_time",
        "courses",
        "user_activity",
        "other_metrics",
        "user_activity_timeline",
        "user_course_participation",
        "retention_cohorts",
    ]
    [course_row] = report["courses"]
    assert (course_row["course_name"], course_row["joins_in_period"]) == ("Django basics", 1)
    [top] = report["other_metrics"]["top_courses_by_joins"]
    assert (top["course"], top["joins"]) == ("Django basics", 1)
    [activity] = report["user_activity"]
    assert activity["by_type"] == {"target_join": 1}
    keys = [*report, *course_row, *report["other_metrics"], *top]
    keys += list(report["user_course_participation"][0])
    assert_own_words(*keys)


@pytest.mark.parametrize(
    ("labels", "activity_type", "label"),
    [
        ({}, "target_join", "Joined course"),
        ({}, "target_start", "Course started"),
        ({}, "milestone", "Milestone reached"),
        ({"lesson_due": "{target_label} lesson due"}, "lesson_due", "Course lesson due"),
        ({"lesson_due": "New {target_label} lesson"}, "lesson_due", "New course lesson"),
        ({"club_news": "News of {club}"}, "club_news", "News of {club}"),  # other braces kept
        ({}, "custom_thing", "Custom thing"),  # no label: the code in words
    ],
)
def test_activity_type_labels_follow_the_target_label(labels, activity_type, label):
    engagement = {
        **COURSE_HOST["ENGAGEMENT"],
        "ACTIVITY_TYPES": {**DEFAULT_ACTIVITY_TYPES, **labels},
    }
    with override_settings(ENGAGEMENT=engagement):
        assert activity_type_label(activity_type) == label
