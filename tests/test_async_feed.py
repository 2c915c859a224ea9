"""ASYNC_FEED: fan-out enqueued after commit, run eagerly and by a real Celery worker on Redis."""

from __future__ import annotations

import pytest
from django.db import connections

from django_engagement import record_event, record_events
from tests.conftest import require_service
from tests.helpers import celery_worker_thread, feed, redis_available, wait_for

REDIS_URL = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.usefixtures("no_tracking")


@pytest.fixture(autouse=True)
def async_feed(engagement_settings):
    engagement_settings.update(ASYNC_FEED=True)


@pytest.mark.django_db
def test_fan_out_waits_for_commit(eager_app, user, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        record_events(
            [
                {"event_type": "target_joined", "user": user, "target": campaign},
                {"event_type": "page_view", "user": user},
            ]
        )
        assert feed().count() == 0
    # event_recorded plus one fan-out task for the one event a rule matches.
    assert len(callbacks) == 2
    for callback in callbacks:
        callback()
    assert list(feed().values_list("user_id", "activity_type")) == [(user.pk, "target_join")]


@pytest.mark.django_db
def test_no_task_when_no_rule_matches(eager_app, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        record_event("page_view", user=user)
    assert len(callbacks) == 1  # event_recorded only


@pytest.fixture
def redis_worker():
    """A real worker thread consuming a private queue on the local Redis."""
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    with celery_worker_thread(REDIS_URL) as worker:
        yield worker


@pytest.mark.django_db(transaction=True)
def test_real_worker_builds_the_feed(redis_worker, user, other_user, campaign):
    if connections["default"].vendor == "sqlite" and connections["default"].is_in_memory_db():
        # The worker thread and the test share one in-memory connection: SQLite's table
        # locks then fail at random. .ci/run runs the worker tests on a SQLite file too.
        pytest.skip("a real worker needs PostgreSQL or a SQLite file, not :memory:")
    campaign.members.add(user, other_user)
    record_event("target_joined", user=user, target=campaign)
    record_event("milestone_reached", target=campaign, data={"threshold": 2})
    assert wait_for(lambda: feed().count() == 3), list(feed().values_list("activity_type"))
    assert sorted(feed().values_list("user_id", "activity_type")) == sorted(
        [(user.pk, "target_join"), (user.pk, "milestone"), (other_user.pk, "milestone")]
    )
