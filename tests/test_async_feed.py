"""ASYNC_FEED: fan-out enqueued after commit, run eagerly and by a real Celery worker on Redis."""

from __future__ import annotations

import time
import uuid

import pytest
from celery import Celery
from celery._state import get_current_app
from celery.signals import task_postrun
from django.db import connections

from django_engagement import record_event, record_events
from tests.conftest import require_service
from tests.helpers import feed, redis_available

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
    assert list(feed().values_list("user_id", "activity_type")) == [(user.pk, "fast_join")]


@pytest.mark.django_db
def test_no_task_when_no_rule_matches(eager_app, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        record_event("page_view", user=user)
    assert len(callbacks) == 1  # event_recorded only


@pytest.fixture
def redis_worker():
    """A real worker thread consuming a private queue on the local Redis."""
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    from celery.contrib.testing.worker import start_worker

    queue = f"engagement-test-{uuid.uuid4().hex}"
    previous = get_current_app()
    app = Celery("engagement-worker-tests", set_as_current=True)
    app.conf.update(
        broker_url=REDIS_URL,
        result_backend=None,
        task_default_queue=queue,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=False,
    )
    app.loader.import_module("django_engagement.tasks")

    def close_connections(**kwargs):
        # The worker thread opened its own connections; the test database must be droppable.
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]) as worker:
            yield worker
    finally:
        task_postrun.disconnect(close_connections)
        previous.set_current()


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_real_worker_builds_the_feed(redis_worker, user, other_user, campaign):
    campaign.members.add(user, other_user)
    record_event("target_joined", user=user, target=campaign)
    record_event("milestone_reached", target=campaign, data={"threshold": 2})
    assert wait_for(lambda: feed().count() == 3), list(feed().values_list("activity_type"))
    assert sorted(feed().values_list("user_id", "activity_type")) == sorted(
        [(user.pk, "fast_join"), (user.pk, "milestone"), (other_user.pk, "milestone")]
    )
