"""Monthly range partitions of the event and feed tables (PostgreSQL only).

Each test converts inside its own transaction (PostgreSQL DDL is transactional), so
the conversion is rolled back with the test and the rest of the suite is unaffected.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError
from django.db import connection

from django_engagement.models import get_event_model, get_feed_model
from django_engagement.services import partitions
from django_engagement.services.events import record_events
from django_engagement.services.retention import apply_retention, purge_events
from tests.helpers import command_output

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("no_tracking", "frozen_now"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="partitioning is PostgreSQL-only"),
]

DAY = timedelta(days=1)


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)


def test_convert_keeps_rows_and_ids_and_makes_monthly_partitions(user):
    Event = get_event_model()
    kept = Event.objects.bulk_create(
        [Event(event_type="page_view", user=user, created_at=at(2025, 12, 5)) for _ in range(3)]
    )
    result = partitions.convert(Event, months_ahead=1)
    table = Event._meta.db_table
    assert result.rows == 3
    assert result.partitions == [
        f"{table}_p202512",
        f"{table}_p202601",
        f"{table}_p202602",
        f"{table}_p202603",
        f"{table}_p202604",
        f"{table}_default",
    ]
    assert partitions.is_partitioned(Event)
    new = Event.objects.create(event_type="page_view", user=user, created_at=at(2026, 3, 2))
    assert new.pk == kept[-1].pk + 1
    assert Event.objects.count() == 4
    assert any("primary key" in change for change in result.changed)


def test_idempotency_keys_stay_unique_across_partitions(user):
    Event = get_event_model()
    partitions.convert(Event, months_ahead=1)
    first = record_events(
        [
            {
                "event_type": "page_view",
                "user": user,
                "idempotency_key": "k1",
                "timestamp": at(2026, 1, 3),
            }
        ]
    )
    # The retry lands in another month: still one row, and the original is returned.
    again = record_events(
        [
            {
                "event_type": "page_view",
                "user": user,
                "idempotency_key": "k1",
                "timestamp": at(2026, 3, 1),
            }
        ]
    )
    anon = record_events(
        [
            {"event_type": "page_view", "anonymous_id": "a", "idempotency_key": "k1"},
            {
                "event_type": "page_view",
                "anonymous_id": "a",
                "idempotency_key": "k1",
                "timestamp": at(2026, 2, 1),
            },
        ]
    )
    assert again[0].pk == first[0].pk
    assert anon[0].pk == anon[1].pk
    assert Event.objects.filter(idempotency_key="k1").count() == 2


def test_feed_retention_drops_whole_months_and_stays_exact_per_type(user, engagement_settings):
    engagement_settings.update(
        FEED_RETENTION={"reminder": 30, "milestone": 365}, FEED_RETENTION_DEFAULT=180
    )
    Feed = get_feed_model()

    def item(activity_type: str, when: datetime):
        return Feed(user=user, activity_type=activity_type, title="t", created_at=when)

    rows = [item("reminder", at(2025, 12, d)) for d in range(1, 6)]
    # January: 4 expired reminders beside a milestone kept for a year -> DELETE path.
    rows += [item("reminder", at(2026, 1, d)) for d in range(1, 5)] + [
        item("milestone", at(2026, 1, 9))
    ]
    # February: 2 reminders on either side of the 30-day cutoff (2026-01-30 12:00).
    rows += [item("reminder", at(2026, 1, 30) - DAY), item("reminder", at(2026, 2, 20))]
    Feed.objects.bulk_create(rows)
    partitions.convert(Feed, months_ahead=0)
    table = Feed._meta.db_table

    result = apply_retention()

    assert result.deleted == {"milestone": 0, "reminder": 10}
    names = [p.name for p in partitions.list_partitions(Feed)]
    assert f"{table}_p202512" not in names
    assert f"{table}_p202601" in names
    assert sorted(Feed.objects.values_list("activity_type", flat=True)) == ["milestone", "reminder"]


def test_purge_drops_event_months_and_detaches_feed_items(user):
    Event, Feed = get_event_model(), get_feed_model()
    old = Event.objects.bulk_create(
        [Event(event_type="page_view", user=user, created_at=at(2025, 10, d)) for d in (1, 2)]
    )
    recent = Event.objects.create(event_type="page_view", user=user, created_at=at(2026, 2, 20))
    Feed.objects.create(user=user, activity_type="event", title="t", event=old[0])
    partitions.convert(Event, months_ahead=0)
    partitions.convert(Feed, months_ahead=0)

    result = purge_events(days=90)

    assert (result.events, result.feed_items_detached) == (2, 1)
    assert list(Event.objects.values_list("pk", flat=True)) == [recent.pk]
    assert Feed.objects.get().event_id is None


def test_create_moves_default_rows_into_the_new_month(user):
    Feed = get_feed_model()
    partitions.convert(Feed, months_ahead=0)
    Feed.objects.create(user=user, activity_type="event", title="t", created_at=at(2026, 5, 2))
    created = partitions.create_partitions(Feed, months_ahead=2)
    table = Feed._meta.db_table
    assert created == [f"{table}_p202604", f"{table}_p202605"]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{table}_p202605"')
        assert cursor.fetchone() == (1,)
        cursor.execute(f'SELECT count(*) FROM "{table}_default"')
        assert cursor.fetchone() == (0,)


def test_command_convert_list_and_bad_input(user):
    out = command_output(
        "engagement_partitions", "convert", "--table", "feed", "--months-ahead", "0"
    )
    table = get_feed_model()._meta.db_table
    assert out.splitlines()[0] == f"{table}: 0 rows into 2 partitions"
    assert f"{table}_p202603" in command_output("engagement_partitions", "list", "--table", "feed")
    with pytest.raises(CommandError, match="already partitioned"):
        command_output("engagement_partitions", "convert", "--table", "feed")
    with pytest.raises(CommandError, match="is not a YYYY-MM-DD date"):
        command_output("engagement_partitions", "detach", "--before", "soon")


def test_dropped_month_is_archived_first(user, tmp_path):
    Feed = get_feed_model()
    Feed.objects.bulk_create(
        [
            Feed(user=user, activity_type="event", title=f"t{d}", created_at=at(2025, 6, d))
            for d in (1, 2, 3)
        ]
    )
    partitions.convert(Feed, months_ahead=0)

    result = apply_retention(archive_to=str(tmp_path))

    assert result.deleted == {**dict.fromkeys(result.deleted, 0), "event": 3}
    with gzip.open(result.archive, "rt") as archive:
        titles = sorted(json.loads(line)["title"] for line in archive)
    assert titles == ["t1", "t2", "t3"]
    assert f"{Feed._meta.db_table}_p202506" not in [
        p.name for p in partitions.list_partitions(Feed)
    ]
