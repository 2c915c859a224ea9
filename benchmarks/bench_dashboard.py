"""``GET reports/dashboard/`` cold and warm: the report cache (``CACHE_TIMEOUT``) on Redis.

    python benchmarks/run.py dashboard --scale 0.1                       # SQLite, 100k events
    DATABASE_URL=postgres://... python benchmarks/run.py dashboard       # 1M events

Data (1M events x scale) is generated in the database with one ``INSERT ... SELECT``:
events over the last 30 days up to now, 50k users x scale, 100 targets, one event in
twenty anonymous, 8% joins. The endpoint is requested through Django's test client as a
staff user, with the results cached in ``django.core.cache.backends.redis.RedisCache`` on
``redis://127.0.0.1:6379/15`` (LocMemCache when Redis is not running):

- **cold, raw**: cache emptied, no day aggregated (every day from raw events);
- **cold, aggregated**: cache emptied after ``aggregate_daily`` of the 29 past days (only
  today is raw); the aggregation's version bumps are what empties it;
- **warm**: the median of 20 requests answered from the cache (no SQL query).

The floor beside the cold rows is the bare ``COUNT(*)`` of the window's events.
"""

from __future__ import annotations

import socket
import statistics
import time
import uuid
from datetime import timedelta

from bench_report import _json, _series, _target_text, _uuid_sql
from common import Row
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.cache import caches
from django.db import connection, transaction
from django.test import Client, override_settings
from django.urls import reverse

from django_engagement.models import EventAggregateDaily, EventDayTotal, get_event_model
from django_engagement.services.aggregation import aggregate_daily, day_bounds, today
from tests.testapp.models import Campaign

PREFIX = "dashbench_"
MARK = "dashbench"  # the user agent of this suite's events
EVENTS, USERS_PER_EVENT, TARGETS, DAYS = 1_000_000, 0.05, 100, 30
REDIS_URL = "redis://127.0.0.1:6379/15"
WARM_RUNS = 20


def _redis() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _ago(seconds_sql: str) -> str:
    if connection.vendor == "postgresql":
        return f"(now() - ({seconds_sql}) * interval '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({seconds_sql}) || ' seconds')"


def clear() -> None:
    User, Event = get_user_model(), get_event_model()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Event._meta.db_table} WHERE user_agent = '{MARK}'")
        cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE username LIKE '{PREFIX}%%'")
    Campaign.objects.filter(name__startswith=PREFIX).delete()
    EventAggregateDaily.objects.all().delete()
    EventDayTotal.objects.all().delete()


def fill(events: int) -> None:
    users = max(10, int(events * USERS_PER_EVENT))
    User, Event = get_user_model(), get_event_model()
    Campaign.objects.bulk_create(
        Campaign(id=uuid.UUID(int=k + 1), name=f"{PREFIX}{k}") for k in range(TARGETS)
    )
    User.objects.bulk_create(
        [User(username=f"{PREFIX}{n}", email="", password="") for n in range(users)],
        batch_size=2000,
    )
    base = User.objects.filter(username__startswith=PREFIX).order_by("pk")[0].pk
    content_type = ContentType.objects.get_for_model(Campaign).pk
    span = DAYS * 86400 / events
    kind = (
        "CASE WHEN i % 100 < 8 THEN 'target_joined' WHEN i % 100 < 10 THEN 'target_left' "
        "WHEN i % 100 < 50 THEN 'page_view' WHEN i % 100 < 75 THEN 'comment' ELSE 'login' END"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Event._meta.db_table} (uuid, event_type, user_id, anonymous_id, "
            "source, title, description, data, user_agent, created_at, received_at, "
            "target_content_type_id, target_object_id) "
            f"SELECT {_uuid_sql('i')}, {kind}, "
            f"CASE WHEN i % 20 = 19 THEN NULL ELSE {base} + (i * 7919) % {users} END, "
            "CASE WHEN i % 20 = 19 THEN 'anon' || (i % 5000) ELSE '' END, 'web', '', '', "
            f"{_json('{}')}, '{MARK}', {_ago(f'(i + 60) * {span}')}, "
            f"{_ago(f'(i + 60) * {span}')}, "
            f"CASE WHEN i % 100 < 10 THEN {content_type} END, "
            f"CASE WHEN i % 100 < 10 THEN {_target_text(f'(i / 100) % {TARGETS}')} ELSE '' END "
            f"FROM {_series(events)}"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def floor(days: int) -> float:
    start = day_bounds(today() - timedelta(days=days - 1))[0]
    began = time.perf_counter()
    get_event_model().objects.filter(created_at__gte=start).count()
    return time.perf_counter() - began


def run(scale: float) -> list[Row]:
    events = max(1000, int(EVENTS * scale))
    backend = (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if _redis()
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
    from django.conf import settings

    engagement = {**settings.ENGAGEMENT, "CACHE": "bench", "CACHE_TIMEOUT": 300}
    rows: list[Row] = []
    clear()
    began = time.perf_counter()
    fill(events)
    note = f"{backend['BACKEND'].rsplit('.', 1)[1]}; load {time.perf_counter() - began:.1f}s"
    admin = get_user_model().objects.create_superuser(f"{PREFIX}admin", "", "pw")
    client = Client()
    client.force_login(admin)
    url = reverse("django_engagement:engagement-reports-dashboard")
    with override_settings(CACHES={**settings.CACHES, "bench": backend}, ENGAGEMENT=engagement):
        store = caches["bench"]

        def get(days: int) -> float:
            start = time.perf_counter()
            response = client.get(url, {"days": days})
            assert response.status_code == 200, response.content[:200]
            return time.perf_counter() - start

        for days in (7, 30):
            store.clear()
            cold = get(days)
            warm = statistics.median(get(days) for _ in range(WARM_RUNS))
            rows.append(
                Row(f"dashboard days={days} cold, raw", events, cold, floor(days), "events/s", note)
            )
            rows.append(Row(f"dashboard days={days} warm", events, warm, None, "events/s", note))
        store.clear()
        began = time.perf_counter()
        for offset in range(1, DAYS):
            aggregate_daily(today() - timedelta(days=offset))
        aggregated = f"{note}; aggregate_daily x {DAYS - 1}: {time.perf_counter() - began:.1f}s"
        for days in (7, 30):
            cold = get(days)  # the bumps made every cached result unreachable
            warm = statistics.median(get(days) for _ in range(WARM_RUNS))
            rows.append(
                Row(
                    f"dashboard days={days} cold, aggregated",
                    events,
                    cold,
                    floor(days),
                    "events/s",
                    aggregated,
                )
            )
            rows.append(
                Row(f"dashboard days={days} warm", events, warm, None, "events/s", aggregated)
            )
        store.clear()
    admin.delete()
    clear()
    return rows
