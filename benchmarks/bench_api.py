"""The HTTP API through Django's test client (full middleware, DRF, JSON), beside raw SQL.

    DATABASE_URL=postgres://... python benchmarks/run.py api             # full size
    python benchmarks/run.py api --scale 0.1                            # SQLite, quick look

Rows (sizes x scale):

- ``POST events/`` one event per request (N=1,000), floor: one ``cursor.execute``
  INSERT per event (both commit per event).
- ``POST events/`` with ``{"events": [...]}`` of 500 (N=20,000 events), floor:
  ``bulk_create`` of the same rows in batches of 500, one transaction per batch.
- ``GET activity-feed/?is_read=false`` (first page: 20 unread items with targets) for a
  user holding 10,000 of 1,000,000 feed rows, p50 of 50 requests, floor: the raw
  ``SELECT ... LIMIT 20``.
- ``GET activity-feed/summary/`` for the same user, p50 of 50, floor: the raw ``GROUP BY``.

The throttle stays on with a rate no run reaches, so its cache work is measured. Rows
are generated inside the database (``bench_tracking``'s ``INSERT ... SELECT`` helpers).
"""

from __future__ import annotations

import json

from bench_tracking import (
    _bool,
    _make_users,
    _p50,
    _q,
    _raw_single_inserts,
    _reset,
    build_feed_table,
)
from common import Row, measure
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import override_settings
from django.urls import reverse

from django_engagement.conf import DEFAULTS
from django_engagement.models import get_event_model, get_feed_model
from tests.testapp.models import Course

BATCH = 500
EVENTS_URL = reverse("django_engagement:engagement-events")
FEED_URL = reverse("django_engagement:engagement-activity-feed-list")
SUMMARY_URL = reverse("django_engagement:engagement-activity-feed-summary")


def _post(client: Client, body: bytes) -> None:
    response = client.post(EVENTS_URL, body, content_type="application/json")
    assert response.status_code == 201, response.content


def _ingestion_rows(client: Client, size, user_id: int) -> list[Row]:
    Event = get_event_model()
    n = size(1_000, 50)
    bodies = [
        json.dumps({"event_type": "page_view", "source": "web", "payload": {"n": i}}).encode()
        for i in range(n)
    ]
    seconds = measure(lambda: [_post(client, body) for body in bodies])[0]
    rows = [
        Row(
            "POST events/ (one event per request)",
            n,
            seconds,
            _raw_single_inserts(n, user_id),
            "req/s",
            "floor: one raw INSERT per event",
        )
    ]

    n = size(20_000, BATCH)
    batches = [
        json.dumps(
            {"events": [{"event_type": "page_view", "payload": {"n": i + j}} for j in range(BATCH)]}
        ).encode()
        for i in range(0, n, BATCH)
    ]
    seconds = measure(lambda: [_post(client, body) for body in batches])[0]

    def floor() -> None:
        for i in range(0, n, BATCH):
            with transaction.atomic():
                Event.objects.bulk_create(
                    [Event(event_type="page_view", data={"n": i + j}) for j in range(BATCH)]
                )

    rows.append(
        Row(
            f"POST events/ (batches of {BATCH})",
            len(batches) * BATCH,
            seconds,
            measure(floor)[0],
            "ev/s",
            "floor: bulk_create per batch",
        )
    )
    return rows


def _feed_rows(client: Client, size, user_ids: list[int]) -> list[Row]:
    Feed = get_feed_model()
    table = _q(Feed._meta.db_table)
    hot = user_ids[0]
    total, hot_items, build = build_feed_table(size, hot, user_ids, "apibench_")
    client.force_login(get_user_model().objects.get(pk=hot))

    def page() -> None:
        response = client.get(FEED_URL, {"is_read": "false"})
        assert len(response.json()["results"]) == 20

    def raw_page() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT * FROM {table} WHERE user_id = %s AND is_read = {_bool(False)}"
                " ORDER BY created_at DESC, id DESC LIMIT 20",
                [hot],
            )
            cursor.fetchall()

    def summary() -> None:
        assert client.get(SUMMARY_URL).json()["total_items"] == hot_items

    def raw_summary() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT activity_type, is_read, COUNT(*) FROM {table} WHERE user_id = %s"
                " GROUP BY activity_type, is_read",
                [hot],
            )
            cursor.fetchall()

    note = f"p50 of 50; user has {hot_items:,} items; table built in {build:.1f}s"
    return [
        Row(f"GET activity-feed/ page 1 in {total:,} rows", 20, _p50(page), _p50(raw_page),
            "items/s", note),
        Row(f"GET activity-feed/summary/ in {total:,} rows", 1, _p50(summary),
            _p50(raw_summary), "req/s", note),
    ]  # fmt: skip


def run(scale: float) -> list[Row]:
    size = lambda n, low=10: max(low, int(n * scale))  # noqa: E731
    engagement = {
        "TRACK": dict.fromkeys(DEFAULTS["TRACK"], False),
        "INGEST_THROTTLE_RATE": "100000000/day",
    }
    with override_settings(ENGAGEMENT=engagement):
        _reset()
        try:
            user_ids = _make_users(2_001)
            client = Client()
            rows = _ingestion_rows(client, size, user_ids[0])
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {_q(get_event_model()._meta.db_table)}")
            rows += _feed_rows(client, size, user_ids)
        finally:
            _reset()
            Course.objects.filter(title__startswith="apibench_").delete()
    return rows
