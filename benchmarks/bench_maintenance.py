"""Retention, aggregation and CSV export at 1M rows: rates, longest statement, peak memory.

    DATABASE_URL=postgres://... python benchmarks/run.py maintenance       # 1M rows
    python benchmarks/run.py maintenance --scale 0.1                       # SQLite, 100k

Rows measured (N = 1,000,000 x scale):

- ``apply_retention`` deleting N expired feed items (4 activity types, plus N/10 recent
  items that must survive), without an archive and with ``archive_to`` a local
  directory. Floor: one plain ``DELETE ... WHERE created_at < cutoff`` over the table.
  The note gives the longest single SQL statement (timed per statement with
  ``connection.execute_wrapper``) and peak Python memory (tracemalloc, measured on a
  separate N/10 run so tracing does not slow the timed one; batches bound it anyway).
- ``aggregate_daily`` of one day holding N events (10 types x 6 sources, 1,000 users,
  half the events anonymous).
- ``reports/export/`` streaming N rows of that day through the view, consumed chunk by
  chunk; peak Python memory from tracemalloc.

Data is generated in the database (``INSERT ... SELECT generate_series`` on PostgreSQL,
``executemany`` on SQLite) in 1999. The suite empties the feed and event tables first:
retention deletes every expired row, whoever wrote it.
Targets on PostgreSQL: retention >= 300,000 rows/s without archive and >= 50,000 with,
no statement over 1 s; aggregation of a 1M-event day under 10 s; export under 100 MB.
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, date, timedelta

from common import Row, measure, peak_python_memory_mb
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIRequestFactory, force_authenticate

from django_engagement.api.reports import EventExportView
from django_engagement.models import EventAggregateDaily, get_event_model, get_feed_model
from django_engagement.services.aggregation import aggregate_daily, day_bounds
from django_engagement.services.retention import apply_retention

PREFIX = "mntbench_"
ROWS = 1_000_000
USERS = 1_000
DAY = date(1999, 6, 15)
EXPIRED_TYPES = ("fast_reminder", "devotional_reminder", "fast_start", "bench_other")
SOURCES = ("web", "android", "ios", "kiosk", "admin", "server")


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _vacuum(*models) -> None:
    if _pg():
        with connection.cursor() as cursor:
            for model in models:
                cursor.execute(f"VACUUM ANALYZE {_table(model)}")


def clear() -> None:
    Feed, Event, User = get_feed_model(), get_event_model(), get_user_model()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {_table(Feed)}")
        cursor.execute(f"DELETE FROM {_table(Event)}")
        cursor.execute(f"DELETE FROM {_table(User)} WHERE username LIKE '{PREFIX}%%'")
    EventAggregateDaily.objects.filter(date=DAY).delete()
    _vacuum(Feed, Event)


def make_users() -> int:
    """USERS users in one statement; returns the first id (ids are consecutive)."""
    User = get_user_model()
    users = [
        User(username=f"{PREFIX}{n}", email=f"{PREFIX}{n}@example.com", password="")
        for n in range(USERS)
    ]
    User.objects.bulk_create(users, batch_size=500)
    return (
        User.objects.filter(username__startswith=PREFIX)
        .order_by("pk")
        .values_list("pk", flat=True)[0]
    )


def fill_feed(expired: int, user_id: int) -> None:
    """``expired`` items 400+ days old over EXPIRED_TYPES, plus expired/10 recent ones."""
    Feed = get_feed_model()
    recent = expired // 10
    columns = (
        "user_id, activity_type, title, description, data, is_read, created_at, target_object_id"
    )
    if _pg():
        types = "ARRAY[" + ",".join(f"'{t}'" for t in EXPIRED_TYPES) + "]"
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_table(Feed)} ({columns}) "
                f"SELECT {user_id}, ({types})[1 + i % {len(EXPIRED_TYPES)}], 'Title ' || i, '', "
                "jsonb_build_object('n', i, 'fast_id', i % 100), false, "
                "now() - interval '400 days' - i * interval '1 second', '' "
                f"FROM generate_series(0, {expired - 1}) AS s(i)"
            )
            cursor.execute(
                f"INSERT INTO {_table(Feed)} ({columns}) "
                f"SELECT {user_id}, 'fast_reminder', 'Recent ' || i, '', '{{}}'::jsonb, false, "
                "now() - interval '1 day' + i * interval '1 millisecond', '' "
                f"FROM generate_series(0, {recent - 1}) AS s(i)"
            )
    else:
        old = (timezone.now() - timedelta(days=400)).replace(tzinfo=None)
        new = (timezone.now() - timedelta(days=1)).replace(tzinfo=None)

        def rows():
            for i in range(expired):
                yield (
                    user_id,
                    EXPIRED_TYPES[i % len(EXPIRED_TYPES)],
                    f"Title {i}",
                    "",
                    json.dumps({"n": i, "fast_id": i % 100}),
                    False,
                    str(old - timedelta(seconds=i)),
                    "",
                )
            for i in range(recent):
                yield (user_id, "fast_reminder", f"Recent {i}", "", "{}", False, str(new), "")

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_table(Feed)} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                rows(),
            )
    _vacuum(Feed)


def fill_events(count: int, first_user: int) -> None:
    """``count`` events spread evenly over DAY."""
    Event = get_event_model()
    start = day_bounds(DAY)[0].astimezone(UTC)
    step = 86_400 / count
    columns = (
        "uuid, event_type, user_id, anonymous_id, source, title, description, data, "
        "ip_address, user_agent, created_at, received_at, target_object_id"
    )
    if _pg():
        sources = "ARRAY[" + ",".join(f"'{s}'" for s in SOURCES) + "]"
        at = f"timestamptz '{start.isoformat()}' + i * {step} * interval '1 second'"
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_table(Event)} ({columns}) "
                f"SELECT md5('{PREFIX}' || i)::uuid, 'type_' || (i % 10), "
                f"CASE WHEN i % 2 = 0 THEN {first_user} + i % {USERS} END, "
                "CASE WHEN i % 2 = 1 THEN 'anon-' || (i % 50000) ELSE '' END, "
                f"({sources})[1 + i % 6], '', '', "
                "jsonb_build_object('service_id', (i % 100)::text, 'page', 'home'), "
                f"'203.0.113.0'::inet, 'bench', {at}, {at}, '' "
                f"FROM generate_series(0, {count - 1}) AS s(i)"
            )
    else:
        base = start.replace(tzinfo=None)

        def rows():
            for i in range(count):
                at = str(base + timedelta(seconds=i * step))
                yield (
                    uuid.uuid4().hex,
                    f"type_{i % 10}",
                    first_user + i % USERS if i % 2 == 0 else None,
                    f"anon-{i % 50000}" if i % 2 else "",
                    SOURCES[i % 6],
                    "",
                    "",
                    json.dumps({"service_id": str(i % 100), "page": "home"}),
                    "203.0.113.0",
                    "bench",
                    at,
                    at,
                    "",
                )

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {_table(Event)} ({columns}) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows(),
            )
    _vacuum(Event)


@contextmanager
def statement_timer():
    """Record the duration of every SQL statement run inside the block."""
    durations: list[float] = []

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            durations.append(time.perf_counter() - began)

    with connection.execute_wrapper(timed):
        yield durations


def plain_delete() -> float:
    Feed = get_feed_model()
    cutoff = timezone.now() - timedelta(days=30)
    with connection.cursor() as cursor:
        began = time.perf_counter()
        cursor.execute(f"DELETE FROM {_table(Feed)} WHERE created_at < %s", [cutoff])
        return time.perf_counter() - began


def retention_rows(expired: int, user_id: int) -> list[Row]:
    fill_feed(expired, user_id)
    floor = plain_delete()
    get_feed_model().objects.all().delete()
    rows = []
    for label, archive in (("no archive", False), ("archive to local file", True)):
        fill_feed(expired, user_id)
        with tempfile.TemporaryDirectory() as tmp, statement_timer() as durations:
            target = tmp if archive else None
            seconds, result = measure(lambda: apply_retention(archive_to=target))  # noqa: B023
        assert result.total == expired, result.counts
        assert get_feed_model().objects.count() == expired // 10
        get_feed_model().objects.all().delete()

        small = max(expired // 10, 1000)
        fill_feed(small, user_id)
        with tempfile.TemporaryDirectory() as tmp:
            target = tmp if archive else None
            _, peak = peak_python_memory_mb(lambda: apply_retention(archive_to=target))  # noqa: B023
        get_feed_model().objects.all().delete()
        rows.append(
            Row(
                f"apply_retention ({label})",
                expired,
                seconds,
                floor,
                note=f"longest statement {max(durations):.3f}s over {len(durations)}; "
                f"peak Python {peak:.2f} MB at {small:,} rows; floor = one plain DELETE",
            )
        )
    return rows


def aggregation_row(count: int) -> Row:
    seconds, result = measure(lambda: aggregate_daily(DAY))
    assert result.events == count, result
    return Row(
        "aggregate_daily (one day)", count, seconds, unit="events/s", note=f"{result.rows} rows"
    )


def export_row(count: int, admin) -> Row:
    """Consume ``reports/export/`` chunk by chunk: once timed, once under tracemalloc."""
    request = APIRequestFactory().get("/reports/export/", {"date": DAY.isoformat(), "limit": count})
    force_authenticate(request, user=admin)

    def consume() -> tuple[int, int]:
        response = EventExportView.as_view()(request)
        size = lines = 0
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
        return lines - 1, size

    seconds, (exported, size) = measure(consume)
    assert exported == count, exported
    _, peak = peak_python_memory_mb(consume)
    return Row(
        "reports/export/ (streamed CSV)",
        count,
        seconds,
        note=f"peak Python {peak:.1f} MB (separate traced run); {size / 1e6:.0f} MB of CSV",
    )


def run(scale: float) -> list[Row]:
    n = max(int(ROWS * scale), 1000)
    clear()
    User = get_user_model()
    admin, _ = User.objects.get_or_create(
        username=f"{PREFIX}admin", defaults={"is_staff": True, "is_superuser": True}
    )
    first_user = make_users()
    rows = retention_rows(n, admin.pk)
    fill_events(n, first_user)
    rows.append(aggregation_row(n))
    rows.append(export_row(n, admin))
    clear()
    return rows
