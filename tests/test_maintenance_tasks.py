"""The Celery maintenance tasks (retention, purge, aggregation), run eagerly."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from django.utils import timezone

from django_engagement.models import (
    EventAggregateDaily,
    EventDayTotal,
    get_event_model,
    get_feed_model,
)
from django_engagement.services.archive import read_archive

celery = pytest.importorskip("celery")

from django_engagement import tasks  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


@pytest.fixture(autouse=True)
def eager():
    """Run ``.delay()`` in-process and re-raise task errors, without a broker."""
    conf = celery.current_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


@pytest.fixture
def feed_items(user):
    Feed = get_feed_model()
    now = timezone.now()
    return Feed.objects.bulk_create(
        [
            Feed(
                user=user,
                activity_type="reminder",
                title="old",
                created_at=now - timedelta(days=31),
            ),
            Feed(
                user=user,
                activity_type="reminder",
                title="new",
                created_at=now - timedelta(days=29),
            ),
            Feed(
                user=user,
                activity_type="milestone",
                title="kept",
                created_at=now - timedelta(days=300),
            ),
        ]
    )


def test_apply_retention_task_deletes_expired_items(feed_items):
    tasks.apply_retention_task.delay().get()

    assert sorted(get_feed_model().objects.values_list("title", flat=True)) == ["kept", "new"]


def test_apply_retention_task_passes_its_options(feed_items, tmp_path):
    tasks.apply_retention_task.delay(older_than_days=30, archive_to=str(tmp_path)).get()

    assert list(get_feed_model().objects.values_list("title", flat=True)) == ["new"]
    (archive,) = tmp_path.iterdir()
    assert sorted(row["title"] for row in read_archive(archive)) == ["kept", "old"]


def test_apply_retention_task_dry_run_deletes_nothing(feed_items):
    tasks.apply_retention_task.delay(dry_run=True).get()

    assert get_feed_model().objects.count() == 3


def test_purge_events_task(user):
    Event = get_event_model()
    now = timezone.now()
    Event.objects.bulk_create(
        [
            Event(event_type="page_view", created_at=now - timedelta(days=11)),
            Event(event_type="page_view", created_at=now - timedelta(days=9)),
            Event(event_type="page_view", created_at=now - timedelta(days=91)),
        ]
    )

    tasks.purge_events_task.delay(days=10).get()
    assert Event.objects.count() == 1

    tasks.purge_events_task.delay().get()  # EVENT_RETENTION_DAYS (90): nothing older left
    assert Event.objects.count() == 1


def test_aggregate_daily_task_for_a_date(user):
    get_event_model().objects.create(
        event_type="page_view",
        user=user,
        created_at=datetime(2026, 1, 4, 12, tzinfo=timezone.get_default_timezone()),
    )

    tasks.aggregate_daily_task.delay("2026-01-04").get()
    tasks.aggregate_daily_task.delay("2026-01-04").get()

    assert EventAggregateDaily.objects.filter(date=date(2026, 1, 4)).count() == 1
    assert EventDayTotal.objects.filter(date=date(2026, 1, 4)).count() == 1
    row = EventAggregateDaily.objects.get(event_type="page_view")
    assert (row.count, row.unique_users) == (1, 1)


def test_aggregate_daily_task_defaults_to_yesterday(user):
    tz = timezone.get_default_timezone()
    yesterday = timezone.localdate(timezone=tz) - timedelta(days=1)
    get_event_model().objects.create(
        event_type="page_view", created_at=datetime.combine(yesterday, time(12), tzinfo=tz)
    )

    tasks.aggregate_daily_task.delay().get()

    assert set(EventAggregateDaily.objects.values_list("date", "event_type")) == {
        (yesterday, "page_view"),
    }
    assert list(EventDayTotal.objects.values_list("date", "count")) == [(yesterday, 1)]
