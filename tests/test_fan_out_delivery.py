"""ASYNC_FEED delivery guarantees (issue 9): the outbox, the sweeper, worker loss, broker loss.

Real servers throughout: a prefork Celery worker process on Redis db 1 whose pool
process is SIGKILLed in the middle of a fan-out, and a broker on a dead port during
``POST events/``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_engagement import record_event, tasks
from django_engagement.models import PendingFanOut, get_feed_model
from django_engagement.services.feed import flush_pending_fan_out
from tests.conftest import require_service
from tests.helpers import (
    celery_worker_thread,
    command_output,
    events,
    feed,
    redis_available,
    wait_for,
)

REDIS_URL = "redis://127.0.0.1:6379/1"
DEAD_BROKER_URL = "redis://127.0.0.1:1/7"
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("no_tracking")


@pytest.fixture(autouse=True)
def async_feed(engagement_settings):
    # These tests post the join event as a client would; the API reserves it by default.
    engagement_settings.update(ASYNC_FEED=True, ALLOW_CLIENT_RESERVED_EVENTS=True)


@pytest.fixture
def dead_broker():
    """The current Celery app publishes to a port nothing listens on."""
    from tests.helpers import current_celery_app

    with current_celery_app(broker_url=DEAD_BROKER_URL) as app:
        yield app


@pytest.fixture
def redis_worker():
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    with celery_worker_thread(REDIS_URL) as worker:
        yield worker


def pending_ids() -> list[int]:
    return list(PendingFanOut.objects.order_by("event_id").values_list("event_id", flat=True))


def feed_rows() -> list[tuple]:
    return sorted(feed().values_list("user_id", "event_id", "activity_type"))


def post_joined(client, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        reverse("django_engagement:engagement-events"),
        {"event_type": "target_joined", "source": "web"},
        format="json",
        **headers,
    )


# -- the outbox, in process -------------------------------------------------------------


@pytest.mark.django_db
def test_event_and_outbox_row_are_one_transaction(
    user, eager_app, django_capture_on_commit_callbacks
):
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        event = record_event("target_joined", user=user)
    # PostgreSQL writes the feed item and its unread counter in one WITH statement;
    # SQLite upserts the counter next. The counter is not what this test is about.
    starts = ("INSERT", "WITH changed AS (INSERT")
    tables = [q["sql"].split('"')[1] for q in queries if q["sql"].startswith(starts)]
    inserts = [table for table in tables if table != "django_engagement_feedunreadcount"]
    # The event and its outbox row, then (the task, at commit) the feed item.
    assert inserts == [
        events().model._meta.db_table,
        PendingFanOut._meta.db_table,
        feed().model._meta.db_table,
    ]
    # Eager Celery ran the task at commit: items written, outbox row gone.
    assert feed_rows() == [(user.pk, event.pk, "target_join")]
    assert pending_ids() == []


@pytest.mark.django_db
@pytest.mark.parametrize("async_on", [True, False], ids=["async", "sync"])
def test_event_without_a_rule_is_still_one_insert(user, engagement_settings, async_on):
    engagement_settings.update(ASYNC_FEED=async_on)
    with CaptureQueriesContext(connection) as queries:
        record_event("page_view", user=user)
    assert [q["sql"].split()[0] for q in queries] == ["INSERT"]
    assert pending_ids() == []


@pytest.mark.django_db
def test_sync_fan_out_writes_no_outbox_row(user, engagement_settings):
    engagement_settings.update(ASYNC_FEED=False)
    event = record_event("target_joined", user=user)
    assert feed_rows() == [(user.pk, event.pk, "target_join")]
    assert pending_ids() == []


@pytest.mark.django_db
def test_sweeper_finishes_pending_fan_out_once(user, other_user, campaign, dead_broker):
    campaign.members.add(user, other_user)
    joined = record_event("target_joined", user=user, target=campaign)
    milestone = record_event("milestone_reached", target=campaign, data={"threshold": 2})
    assert pending_ids() == [joined.pk, milestone.pk]
    assert feed_rows() == []

    result = flush_pending_fan_out()

    assert (result.events, result.created_count) == (2, 3)
    assert feed_rows() == sorted(
        [
            (user.pk, joined.pk, "target_join"),
            (user.pk, milestone.pk, "milestone"),
            (other_user.pk, milestone.pk, "milestone"),
        ]
    )
    assert pending_ids() == []
    assert flush_pending_fan_out().events == 0


@pytest.mark.django_db
def test_a_task_that_gives_up_leaves_its_row_to_the_sweeper(
    user, eager_app, monkeypatch, django_capture_on_commit_callbacks
):
    from django_engagement.services import feed as feed_service

    real_fan_out = feed_service.fan_out
    calls = []

    def database_down(events, **kwargs):
        calls.append([event.pk for event in events])
        raise ConnectionError("database went away")

    monkeypatch.setattr(feed_service, "fan_out", database_down)
    with django_capture_on_commit_callbacks(execute=True):
        event = record_event("target_joined", user=user)
    assert len(calls) == 4  # the first try and 3 retries, each rolled back
    assert pending_ids() == [event.pk]

    monkeypatch.setattr(feed_service, "fan_out", real_fan_out)
    assert flush_pending_fan_out().created_count == 1
    assert feed_rows() == [(user.pk, event.pk, "target_join")]


@pytest.mark.django_db
def test_sweeper_grace_period_leaves_fresh_rows_to_their_tasks(user, dead_broker):
    old = record_event("target_joined", user=user)
    fresh = record_event("target_left", user=user)
    PendingFanOut.objects.filter(event=old).update(created_at=timezone.now() - timedelta(minutes=5))

    result = flush_pending_fan_out(older_than=timedelta(seconds=60), batch_size=1)

    assert (result.events, result.created_count) == (1, 1)
    assert pending_ids() == [fresh.pk]


@pytest.mark.django_db
def test_task_fans_out_and_clears_the_outbox_idempotently(user, dead_broker):
    event = record_event("target_joined", user=user)
    assert tasks.fan_out_feed_task([event.pk]) == 1
    assert pending_ids() == []
    assert tasks.fan_out_feed_task([event.pk]) == 0  # a redelivery
    assert feed_rows() == [(user.pk, event.pk, "target_join")]


@pytest.mark.django_db
def test_sweeper_task_respects_its_grace_period(user, dead_broker):
    event = record_event("target_joined", user=user)
    assert tasks.flush_pending_fan_out_task() == 0
    assert pending_ids() == [event.pk]
    assert tasks.flush_pending_fan_out_task(older_than_seconds=0) == 1
    assert pending_ids() == []


@pytest.mark.django_db
def test_flush_pending_command(user, dead_broker):
    record_event("target_joined", user=user)
    record_event("target_left", user=user)

    assert command_output("populate_activity_feeds", "--flush-pending", "--dry-run") == (
        "2 events have pending feed fan-out.\n"
    )
    assert pending_ids() != []
    assert command_output("populate_activity_feeds", "--flush-pending") == (
        "Created 2 activity feed items from the pending fan-out of 2 events.\n"
    )
    assert pending_ids() == []
    assert feed().count() == 2


@pytest.mark.django_db
def test_flush_pending_command_rejects_user_id(user):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--flush-pending runs every pending fan-out"):
        command_output("populate_activity_feeds", "--flush-pending", "--user-id", str(user.pk))


@pytest.mark.django_db
def test_sync_replay_finishes_a_pending_fan_out(auth_client, user, engagement_settings):
    assert post_joined(auth_client, "sync-replay").status_code == 201  # on_commit never runs
    engagement_settings.update(ASYNC_FEED=False)

    response = post_joined(auth_client, "sync-replay")

    assert response.status_code == 201
    assert response["Idempotent-Replayed"] == "true"
    assert events().count() == 1
    assert feed_rows() == [(user.pk, events().get().pk, "target_join")]
    assert pending_ids() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeper_skips_rows_a_worker_holds(user, other_user, dead_broker):
    """PostgreSQL: a row locked by a running task is left to it, not waited for."""
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL; SQLite serialises writers")
    held = record_event("target_joined", user=user)
    free = record_event("target_joined", user=other_user)
    with side_connection() as side:
        side.execute(
            f"SELECT 1 FROM {PendingFanOut._meta.db_table} WHERE event_id = %s FOR UPDATE",
            [held.pk],
        )
        started = time.monotonic()
        result = flush_pending_fan_out()
        assert time.monotonic() - started < 5
    assert (result.events, result.created_count) == (1, 1)
    assert pending_ids() == [held.pk]
    assert feed_rows() == [(other_user.pk, free.pk, "target_join")]


# -- broker unreachable during ingestion --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_dead_broker_is_201_with_the_fan_out_pending(auth_client, user, dead_broker, caplog):
    with caplog.at_level(logging.WARNING, logger="django_engagement.services.feed"):
        started = time.monotonic()
        response = post_joined(auth_client, "dead-broker-1")
        elapsed = time.monotonic() - started
    print(f"POST events/ with the broker down: {elapsed * 1000:.0f} ms")

    assert response.status_code == 201, response.content
    event = events().get()
    assert response.json() == {"event_id": str(event.uuid)}
    assert pending_ids() == [event.pk]
    assert feed_rows() == []
    assert elapsed < 5
    [record] = [r for r in caplog.records if "Could not queue the feed fan-out" in r.message]
    assert record.getMessage().startswith(
        f"Could not queue the feed fan-out of 1 event(s) (first id {event.pk})"
    )

    command_output("populate_activity_feeds", "--flush-pending")
    assert feed_rows() == [(user.pk, event.pk, "target_join")]
    assert pending_ids() == []


@pytest.mark.django_db(transaction=True)
def test_replay_after_a_dead_broker_requeues_the_fan_out(auth_client, user, dead_broker):
    assert post_joined(auth_client, "replay-1").status_code == 201
    event = events().get()
    assert pending_ids() == [event.pk]

    with redis_worker_context():
        response = post_joined(auth_client, "replay-1")
        assert response.status_code == 201
        assert response["Idempotent-Replayed"] == "true"
        assert wait_for(lambda: not pending_ids()), "the replay did not re-queue the fan-out"

    assert events().count() == 1
    assert feed_rows() == [(user.pk, event.pk, "target_join")]


@pytest.mark.django_db(transaction=True)
def test_sweeper_task_on_a_real_worker_after_a_dead_broker(auth_client, user, dead_broker):
    assert post_joined(auth_client).status_code == 201
    assert post_joined(auth_client).status_code == 201  # no key: two events
    first, second = events().order_by("pk")
    assert pending_ids() == [first.pk, second.pk]

    with redis_worker_context():
        tasks.flush_pending_fan_out_task.delay(0)
        assert wait_for(lambda: not pending_ids())

    assert feed_rows() == [(user.pk, first.pk, "target_join"), (user.pk, second.pk, "target_join")]


@contextmanager
def redis_worker_context() -> Iterator[None]:
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    with celery_worker_thread(REDIS_URL):
        yield


# -- a pool process killed in the middle of a fan-out --------------------------------------


@contextmanager
def side_connection() -> Iterator[object]:
    """A second PostgreSQL connection to the test database, in a transaction; rolled back."""
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"],
        dbname=settings["NAME"],
    ) as side:
        with side.cursor() as cursor:
            yield cursor
        side.rollback()


def database_url() -> str | None:
    """A URL of the test database another process can open, or None (in-memory SQLite)."""
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        return (
            f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    name = str(settings["NAME"])
    if connection.vendor == "sqlite" and "memory" not in name:
        return f"sqlite:///{os.path.abspath(name)}"
    return None


def pool_children(pid: int) -> list[int]:
    """Pids of the direct children of ``pid`` (the worker's pool processes)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(entry.name))
    return children


@contextmanager
def prefork_worker(tmp_path: Path, **extra_env: str) -> Iterator[subprocess.Popen]:
    """A ``celery worker --pool=prefork --concurrency=1`` process on the test database."""
    url = database_url()
    if url is None:
        pytest.skip(
            "the worker process needs a file database: set ENGAGEMENT_SQLITE_TEST_NAME "
            "or DATABASE_URL (.ci/run does)"
        )
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    import redis

    from tests.helpers import current_celery_app

    queue = f"engagement-delivery-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ENGAGEMENT_TEST_BROKER": REDIS_URL,
        "ENGAGEMENT_TEST_QUEUE": queue,
        "PYTHONPATH": str(ROOT),
        **extra_env,
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.delivery_worker",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            f"--queues={queue}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with current_celery_app(broker_url=REDIS_URL, task_default_queue=queue):
            yield worker
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        log.close()
        redis.Redis.from_url(REDIS_URL).delete(queue)
        connection.close()  # the worker's writes are visible on a fresh connection


def make_participants(campaign, count: int) -> list[int]:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.bulk_create(
        [User(username=f"member{n:05d}", email=f"m{n}@example.com") for n in range(count)]
    )
    ids = list(User.objects.filter(username__startswith="member").values_list("pk", flat=True))
    Membership = campaign.members.through
    Membership.objects.bulk_create([Membership(campaign=campaign, user_id=pk) for pk in ids])
    return ids


def worker_log(tmp_path: Path) -> str:
    return (tmp_path / "worker.log").read_text()[-4000:]


@pytest.mark.django_db(transaction=True)
def test_killed_pool_process_mid_insert_redelivers_the_fan_out(campaign, tmp_path):
    """SIGKILL the pool process while its INSERT ... SELECT runs; the task runs again.

    PostgreSQL: a side connection holds ``LOCK TABLE feed IN SHARE MODE``, so the
    worker's INSERT blocks where ``pg_stat_activity`` shows it, and the kill lands
    in the statement. SQLite: the worker pauses before the INSERT (in the fan-out's
    transaction) and says so through a file. Without ``reject_on_worker_lost`` the
    message is acked and no item is ever created.
    """
    default = 3000 if connection.vendor == "postgresql" else 1000
    # ENGAGEMENT_DELIVERY_PARTICIPANTS=60000 replays the measurement.
    participants = int(os.environ.get("ENGAGEMENT_DELIVERY_PARTICIPANTS", default))
    ids = make_participants(campaign, participants)
    Feed = get_feed_model()
    table = Feed._meta.db_table
    pause_file = tmp_path / "paused"
    on_postgres = connection.vendor == "postgresql"
    extra_env = {} if on_postgres else {"ENGAGEMENT_TEST_PAUSE_FILE": str(pause_file)}

    with (
        prefork_worker(tmp_path, **extra_env) as worker,
        side_connection() if on_postgres else _no_side() as side,
    ):
        if on_postgres:
            side.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
        event = record_event("milestone_reached", target=campaign, data={"threshold": 1000})
        assert pending_ids() == [event.pk]

        if on_postgres:
            blocked = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                f"AND wait_event_type = 'Lock' AND query LIKE '%%INSERT INTO \"{table}\"%'"
            )

            def inserting() -> bool:
                with connection.cursor() as cursor:
                    cursor.execute(blocked)
                    return cursor.fetchone()[0] == 1

            assert wait_for(inserting, timeout=60), worker_log(tmp_path)
            [child] = pool_children(worker.pid)
        else:
            assert wait_for(pause_file.exists, timeout=60), worker_log(tmp_path)
            child = int(pause_file.read_text())
        os.kill(child, signal.SIGKILL)
        assert wait_for(lambda: child not in pool_children(worker.pid), timeout=10)
        if on_postgres:
            side.connection.rollback()  # the orphaned INSERT may finish; it never commits

        def all_delivered() -> bool:
            return Feed._default_manager.filter(event=event).count() == participants

        assert wait_for(all_delivered, timeout=60), worker_log(tmp_path)
        assert wait_for(lambda: not pending_ids(), timeout=10)

    rows = Feed._default_manager.filter(event=event)
    assert rows.count() == participants
    assert sorted(rows.values_list("user_id", flat=True)) == sorted(ids)
    assert set(rows.values_list("activity_type", flat=True)) == {"milestone"}
    assert "WorkerLostError" in worker_log(tmp_path) or "exited" in worker_log(tmp_path)


@contextmanager
def _no_side() -> Iterator[None]:
    yield None
