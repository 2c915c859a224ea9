"""purge_events and the purge_events command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_engagement.models import get_event_model, get_feed_model
from django_engagement.services.retention import purge_events
from tests.conftest import FROZEN_NOW as NOW
from tests.helpers import command_output

SECOND = timedelta(seconds=1)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "frozen_now")]


@pytest.fixture
def make_events(user):
    Event = get_event_model()

    def make(*ages: timedelta) -> list:
        return Event.objects.bulk_create(
            [Event(event_type="page_view", user=user, created_at=NOW - age) for age in ages]
        )

    return make


@pytest.fixture
def feed_for(user):
    Feed = get_feed_model()

    def make(*events) -> list:
        return Feed.objects.bulk_create(
            [
                Feed(user=user, activity_type="event", title="t", event=event, created_at=NOW)
                for event in events
            ]
        )

    return make


def test_deletes_events_strictly_older_than_the_default_days(make_events):
    outside, on_cutoff, inside = make_events(
        timedelta(days=90) + SECOND, timedelta(days=90), timedelta(days=90) - SECOND
    )

    result = purge_events()

    assert result.events == 1
    assert result.cutoff == NOW - timedelta(days=90)
    assert set(get_event_model().objects.values_list("pk", flat=True)) == {
        on_cutoff.pk,
        inside.pk,
    }


def test_days_argument_and_setting(make_events, engagement_settings):
    make_events(timedelta(days=10) + SECOND, timedelta(days=10), timedelta(days=40))

    assert purge_events(days=10).events == 2
    engagement_settings.update(EVENT_RETENTION_DAYS=5)
    assert purge_events().events == 1
    assert get_event_model().objects.count() == 0


def test_feed_items_survive_with_event_set_to_null(make_events, feed_for):
    old, recent = make_events(timedelta(days=100), timedelta(days=1))
    old_item, recent_item = feed_for(old, recent)

    result = purge_events()

    assert result.events == 1
    assert result.feed_items_detached == 1
    old_item.refresh_from_db()
    recent_item.refresh_from_db()
    assert old_item.event_id is None
    assert recent_item.event_id == recent.pk


def test_dry_run_counts_and_changes_nothing(make_events, feed_for):
    events = make_events(timedelta(days=100), timedelta(days=200), timedelta(days=1))
    feed_for(events[0], events[2])

    result = purge_events(dry_run=True)

    assert (result.events, result.feed_items_detached, result.dry_run) == (2, 1, True)
    assert get_event_model().objects.count() == 3
    assert get_feed_model().objects.filter(event__isnull=True).count() == 0


def test_each_batch_detaches_feed_items_then_deletes_by_id(make_events, feed_for):
    events = make_events(*[timedelta(days=100 + n) for n in range(5)])
    feed_for(*events)

    with CaptureQueriesContext(connection) as queries:
        result = purge_events(batch_size=2)

    writes = [q["sql"].split()[0] for q in queries if q["sql"].startswith(("UPDATE", "DELETE"))]
    # Per batch: detach feed items, delete the events' outbox rows, delete the events.
    assert writes == ["UPDATE", "DELETE", "DELETE"] * 3
    deletes = [q["sql"] for q in queries if q["sql"].startswith("DELETE")]
    assert all(" IN (" in sql or " = ANY(" in sql for sql in deletes)
    assert (result.events, result.feed_items_detached) == (5, 5)
    assert get_feed_model().objects.filter(event__isnull=True).count() == 5


def test_purge_drops_the_outbox_rows_of_purged_events(make_events):
    from django_engagement.models import PendingFanOut

    old, recent = make_events(timedelta(days=100), timedelta(days=1))
    PendingFanOut.objects.bulk_create([PendingFanOut(event=old), PendingFanOut(event=recent)])

    assert purge_events().events == 1
    assert list(PendingFanOut.objects.values_list("event_id", flat=True)) == [recent.pk]


def test_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError, match="days"):
        purge_events(days=-1)
    with pytest.raises(ValueError, match="batch_size"):
        purge_events(batch_size=0)


def run(*args, tty=False):
    return command_output("purge_events", *args, tty=tty)


def test_command_dry_run_and_real_run(make_events, feed_for):
    events = make_events(timedelta(days=100), timedelta(days=95), timedelta(days=1))
    feed_for(events[0])

    output = run("--dry-run")
    assert output == (
        "Would delete 2 events created before 2025-12-01 12:00 UTC; "
        "1 feed items would keep without their event.\n"
    )
    assert get_event_model().objects.count() == 3

    output = run("--days", "96", "--batch-size", "1", tty=True)
    assert "\r\033[Kevents: 1 rows" in output
    assert output.endswith(
        "Deleted 1 events created before 2025-11-25 12:00 UTC; "
        "1 feed items kept without their event.\n"
    )
    assert get_event_model().objects.count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "-3"], "--days must be 0 or more."),
        (["--days", "ten"], "argument --days: invalid int value: 'ten'"),
        (["--batch-size", "100000"], "--batch-size must be between 1 and 20000."),
    ],
)
def test_command_errors_are_one_line(args, message, make_events):
    make_events(timedelta(days=400))

    with pytest.raises(CommandError) as excinfo:
        run(*args)

    assert str(excinfo.value) == message or message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert get_event_model().objects.count() == 1


@pytest.mark.django_db
def test_command_days_past_the_calendar_is_a_command_error():
    with pytest.raises(CommandError, match=r"^--days reaches past the supported dates\.$"):
        command_output("purge_events", "--days", "3000000")
