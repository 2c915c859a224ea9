"""The Celery tasks: options, delegation to the services, eager retries."""

from __future__ import annotations

from datetime import date

import pytest

from django_engagement import record_event, tasks
from django_engagement.models import get_feed_model

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

TASKS = [
    tasks.fan_out_feed_task,
    tasks.flush_pending_fan_out_task,
    tasks.populate_feed_task,
    tasks.apply_retention_task,
    tasks.purge_events_task,
    tasks.aggregate_daily_task,
]


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_task_options(task):
    assert task.name.startswith("django_engagement.tasks.")
    assert task.autoretry_for == (Exception,)
    assert (task.max_retries, task.retry_backoff, task.acks_late) == (3, True, True)


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.name)
def test_only_fan_out_tasks_are_requeued_when_their_worker_is_lost(task):
    # Idempotent fan-out is safe to redeliver; a report or purge that kills its
    # worker (OOM) must not loop forever.
    fan_out = task in (tasks.fan_out_feed_task, tasks.flush_pending_fan_out_task)
    assert bool(task.reject_on_worker_lost) is fan_out


def test_fan_out_task_is_idempotent(user, campaign, engagement_settings):
    engagement_settings.update(FEED_RULES={"target_joined": None})
    event = record_event("target_joined", user=user, target=campaign)
    engagement_settings.update(FEED_RULES=None)
    assert tasks.fan_out_feed_task([event.pk]) == 1
    assert tasks.fan_out_feed_task([event.pk]) == 0
    assert tasks.fan_out_feed_task([]) == 0
    assert get_feed_model()._default_manager.get().event_id == event.pk


def test_fan_out_retries_then_succeeds(eager_app, user, campaign, monkeypatch):
    event = record_event("page_view", user=user)
    calls = []
    real = tasks.fan_out_event_ids

    def flaky(event_ids):
        calls.append(event_ids)
        if len(calls) < 3:
            raise ConnectionError("database went away")
        return real(event_ids)

    monkeypatch.setattr(tasks, "fan_out_event_ids", flaky)
    assert tasks.fan_out_feed_task.delay([event.pk]).get() == 0
    assert calls == [[event.pk]] * 3


def test_fan_out_gives_up_after_three_retries(eager_app, monkeypatch):
    calls = []

    def broken(event_ids):
        calls.append(event_ids)
        raise ConnectionError("down")

    monkeypatch.setattr(tasks, "fan_out_event_ids", broken)
    result = tasks.fan_out_feed_task.delay([1])
    assert result.failed()
    assert isinstance(result.result, ConnectionError)
    assert len(calls) == 4  # the first try and 3 retries


@pytest.mark.parametrize(
    ("task", "args"),
    [
        (tasks.aggregate_daily_task, ["2026-13-45"]),
        (tasks.populate_feed_task, [None, 0]),
        (tasks.apply_retention_task, []),
    ],
    ids=["bad-date", "bad-days-back", "bad-kwarg"],
)
def test_bad_arguments_fail_at_once_without_retries(eager_app, task, args, monkeypatch):
    from celery.app.task import Task

    retries = []
    real_retry = Task.retry
    monkeypatch.setattr(
        Task, "retry", lambda self, *a, **kw: retries.append(a) or real_retry(self, *a, **kw)
    )
    kwargs = {"no_such_option": True} if task is tasks.apply_retention_task else {}
    result = task.apply_async(args, kwargs)
    assert result.failed()
    assert isinstance(result.result, ValueError | TypeError)
    assert retries == []


def test_populate_task(user, campaign, engagement_settings):
    engagement_settings.update(FEED_RULES={"target_joined": None})
    record_event("target_joined", user=user, target=campaign)
    engagement_settings.update(FEED_RULES=None)
    assert tasks.populate_feed_task(user_id=user.pk, days_back=7) == 1
    assert tasks.populate_feed_task() == 0


def test_maintenance_tasks_delegate(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks, "apply_retention", lambda **kw: calls.append(("retention", kw)))
    monkeypatch.setattr(tasks, "purge_events", lambda days=None: calls.append(("purge", days)))
    monkeypatch.setattr(tasks, "aggregate_daily", lambda day: calls.append(("aggregate", day)))
    tasks.apply_retention_task(dry_run=True, activity_type="reminder")
    tasks.purge_events_task()
    tasks.purge_events_task(days=30)
    tasks.aggregate_daily_task("2026-01-04")
    tasks.aggregate_daily_task()
    assert calls == [
        ("retention", {"dry_run": True, "activity_type": "reminder"}),
        ("purge", None),
        ("purge", 30),
        ("aggregate", date(2026, 1, 4)),
        ("aggregate", None),  # the service picks yesterday in TIME_ZONE
    ]


def test_maintenance_tasks_run_the_real_services(user):
    tasks.purge_events_task(days=30)
    tasks.aggregate_daily_task("2026-01-04")
    tasks.apply_retention_task(dry_run=True)
