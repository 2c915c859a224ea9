"""Celery tasks (``[celery]`` extra): thin wrappers over the services.

Services never import this module: with ``ASYNC_FEED`` they send
``fan_out_requested`` after commit, and ``queue_fan_out`` (connected in
``AppConfig.ready()`` when Celery is installed) queues ``fan_out_feed_task``.
Tasks take ids, not instances, and are safe to retry: the services they call
are idempotent.

Schedule the maintenance ones with Celery beat, e.g.::

    CELERY_BEAT_SCHEDULE = {
        "engagement-flush-pending-fan-out": {
            "task": "django_engagement.tasks.flush_pending_fan_out_task",
            "schedule": 300.0,
        },
        "engagement-daily-digests": {
            "task": "django_engagement.tasks.send_feed_digests_task",
            "schedule": crontab(hour=7, minute=0),
            "args": ("daily",),
        },
        "engagement-weekly-digests": {
            "task": "django_engagement.tasks.send_feed_digests_task",
            "schedule": crontab(hour=7, minute=0, day_of_week="mon"),
            "args": ("weekly",),
        },
        "engagement-aggregate": {
            "task": "django_engagement.tasks.aggregate_daily_task",
            "schedule": crontab(hour=1, minute=0),
        },
        "engagement-stored-reports": {   # after the aggregation
            "task": "django_engagement.tasks.generate_due_reports_task",
            "schedule": crontab(hour=2, minute=0),
            "kwargs": {"email_recipients": ["reports@example.com"]},
        },
        "engagement-aggregate-weeks": {     # the ISO week of yesterday, rewritten daily
            "task": "django_engagement.tasks.aggregate_daily_task",
            "schedule": crontab(hour=1, minute=10),
            "kwargs": {"period": "week"},
        },
    }
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from celery import shared_task

from .models import Report
from .services.aggregation import PERIODS, aggregate_daily, aggregate_period
from .services.email import send_immediate_emails, send_period
from .services.feed import fan_out_event_ids, flush_pending_fan_out, populate_feed
from .services.retention import apply_retention, purge_events
from .services.stored_reports import generate_due_reports, run_report

logger = logging.getLogger(__name__)

RETRYING = {
    "autoretry_for": (Exception,),
    # Bad arguments (a malformed date, days_back < 1, an unknown activity type) fail
    # the same way on every try: fail at once instead of retrying them with backoff.
    "dont_autoretry_for": (ValueError, TypeError),
    "max_retries": 3,
    "retry_backoff": True,
    "acks_late": True,
}


# A pool process killed mid-task (OOM killer, SIGKILL) must not ack the message: with
# acks_late alone Celery acks it and the fan-out is lost. Requeueing is safe because
# fan-out is idempotent (the feed's unique constraint).
DELIVERED = {**RETRYING, "reject_on_worker_lost": True}


@shared_task(**DELIVERED)
def fan_out_feed_task(event_ids: list[int]) -> int:
    """Create the feed items of stored events (``ASYNC_FEED``); returns how many are new."""
    return fan_out_event_ids(event_ids)


@shared_task(**DELIVERED)
def flush_pending_fan_out_task(older_than_seconds: int = 60) -> int:
    """The outbox sweeper: finish fan-outs pending for over ``older_than_seconds``.

    The grace period leaves fresh rows to the tasks queued for them. Returns the
    number of feed items created.
    """
    result = flush_pending_fan_out(older_than=dt.timedelta(seconds=older_than_seconds))
    if result.events:
        logger.info("flush_pending_fan_out: %s", result)
    return result.created_count


@shared_task(**RETRYING)
def populate_feed_task(user_id: int | None = None, days_back: int = 30) -> int:
    """``populate_activity_feeds`` as a task; returns the number of items created."""
    return populate_feed(user=user_id, days_back=days_back).created_count


@shared_task(**RETRYING)
def apply_retention_task(**kwargs: Any) -> None:
    """Delete (or archive) feed items past ``FEED_RETENTION``; kwargs go to ``apply_retention``."""
    logger.info("apply_retention: %s", apply_retention(**kwargs))


@shared_task(**RETRYING)
def purge_events_task(days: int | None = None) -> None:
    """Delete events older than ``days`` (default ``EVENT_RETENTION_DAYS``)."""
    logger.info("purge_events: %s", purge_events(days=days))


@shared_task(**RETRYING)
def aggregate_daily_task(date: str | None = None, period: str = "day") -> None:
    """Aggregate the ``period`` (hour, day, week, month) containing one day (ISO date
    string); default: the day (or its hours, week, month) of yesterday in ``TIME_ZONE``."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period!r}.")
    # None lets the service pick yesterday in TIME_ZONE, not in an activated time zone.
    day = dt.date.fromisoformat(date) if date else None
    if period == "day":
        logger.info("aggregate_daily(%s): %s", date, aggregate_daily(day))
    else:
        logger.info("aggregate_period(%s, %s): %s", period, date, aggregate_period(period, day))


# A report that fails is recorded as failed (with its error) by run_report, not raised:
# retries are for the broker and the worker, and run_report runs a pending report once.
@shared_task(**DELIVERED)
def generate_report_task(report_id: int) -> str:
    """Run pending stored report ``report_id`` (``ASYNC_REPORTS``); returns its status,
    or ``"deleted"`` when the report was deleted before a worker got to it."""
    try:
        return run_report(report_id).status
    except Report.DoesNotExist:
        logger.info("Stored report %s was deleted before it ran.", report_id)
        return "deleted"


@shared_task(acks_late=False)
def generate_due_reports_task(
    email_recipients: list[str] | None = None, date: str | None = None, force: bool = False
) -> list[str]:
    """``generate_reports --auto-schedule`` as a task (Celery beat, daily): the reports the
    schedule owes on ``date`` (ISO; default today in TIME_ZONE), run here, then emailed.
    Returns their statuses."""
    on = dt.date.fromisoformat(date) if date else None
    outcomes = generate_due_reports(on=on, force=force, email_recipients=email_recipients or [])
    return [f"{outcome.report.title}: {outcome.report.status}" for outcome in outcomes]


def queue_report(sender: Any, report_id: Any, **kwargs: Any) -> None:
    """Receiver of ``report_requested``: queue ``generate_report_task`` (ASYNC_REPORTS)."""
    generate_report_task.delay(report_id)


def queue_immediate_emails(sender: Any, **kwargs: Any) -> None:
    """Receiver of ``emails_requested``: queue ``send_immediate_emails_task``."""
    send_immediate_emails_task.delay()


def queue_fan_out(sender: Any, event_ids: list[Any], **kwargs: Any) -> None:
    """Receiver of ``fan_out_requested``: queue ``fan_out_feed_task`` (the ASYNC_FEED hand-off).

    A broker error propagates to ``enqueue_fan_out``, which logs it; the outbox
    keeps the work for ``flush_pending_fan_out_task``.
    """
    fan_out_feed_task.delay(event_ids)


# Emails are sent at most once (claimed before sending): never retried automatically,
# and never redelivered to another worker after a kill.
@shared_task(acks_late=False)
def send_immediate_emails_task() -> int:
    """Send the queued ``immediately`` feed emails; returns the number of messages."""
    return send_immediate_emails().messages


@shared_task(acks_late=False)
def send_feed_digests_task(period: str) -> int:
    """``send_feed_digests --period <period>`` as a task; returns the number of messages."""
    result, summaries = send_period(period)
    return result.messages + summaries
