"""engagement_report over 100k .. 1M events: wall time and peak RSS of the command.

    DATABASE_URL=postgres://... python benchmarks/run.py report            # up to 1M events
    python benchmarks/run.py report --scale 0.1                            # SQLite, 10k..100k

Per 1M events the data holds 200k feed items and 50k users, with 100 targets; users
and feed items grow with the events. Data is generated in the database with raw SQL
(``generate_series`` on PostgreSQL, a recursive CTE on SQLite) inside year 2001, so it
never mixes with other suites' rows. The command runs in a subprocess; its peak RSS
is read with ``os.wait4`` (the per-child form of ``getrusage(RUSAGE_CHILDREN)``).
The floor is streaming the period's raw event rows through one cursor in this
process: the least any report that lists every event must do.
Targets at 1M events: under 60 s and under 300 MB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import Row
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from django_engagement.models import get_event_model, get_feed_model
from tests.testapp.models import Campaign, Club

ROOT = Path(__file__).resolve().parent.parent
EVENT_SIZES = (100_000, 300_000, 1_000_000)
FEED_PER_EVENT, USERS_PER_EVENT, TARGETS = 0.2, 0.05, 100
START, END = "2001-01-01", "2001-03-01"  # the report's period (61 days)
PERIOD_SECONDS = 61 * 86400
SIGNUP_START, SIGNUP_SECONDS = "2000-11-01", 120 * 86400
PREFIX = "rptbench_"


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _series(n: int) -> str:
    """A row source ``s(i)`` for i in 0..n-1."""
    if _pg():
        return f"generate_series(0::bigint, {n - 1}) AS s(i)"
    return f"(WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < {n - 1}) SELECT i FROM r) AS s"  # noqa: E501


def _at(base: str, seconds_sql: str) -> str:
    if _pg():
        return f"(timestamp with time zone '{base} 00:00:00+00' + ({seconds_sql}) * interval '1 second')"  # noqa: E501
    return f"datetime('{base}', '+' || ({seconds_sql}) || ' seconds')"


def _target_text(k_sql: str) -> str:
    """``str(uuid.UUID(int=k + 1))`` in SQL: the form events store in target_object_id."""
    if _pg():
        return f"('00000000-0000-0000-0000-' || lpad(to_hex(({k_sql}) + 1), 12, '0'))"
    return f"('00000000-0000-0000-0000-' || printf('%012x', ({k_sql}) + 1))"


def _target_pk(k_sql: str) -> str:
    if _pg():
        return f"{_target_text(k_sql)}::uuid"
    return f"('00000000000000000000' || printf('%012x', ({k_sql}) + 1))"


def _uuid_sql(i_sql: str) -> str:
    return f"md5('e' || {i_sql})::uuid" if _pg() else "lower(hex(randomblob(16)))"


def _json(text: str) -> str:
    return f"'{text}'::jsonb" if _pg() else f"'{text}'"


def clear() -> None:
    """Remove this suite's rows: everything in its period, its users and its targets."""
    User, Event, Feed = get_user_model(), get_event_model(), get_feed_model()
    members = Campaign.members.through._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (Feed, Event):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE created_at < '2002-01-01'")
        cursor.execute(
            f"DELETE FROM {members} WHERE user_id IN "
            f"(SELECT id FROM {User._meta.db_table} WHERE username LIKE '{PREFIX}%%')"
        )
        cursor.execute(f"DELETE FROM {User._meta.db_table} WHERE username LIKE '{PREFIX}%%'")
    Campaign.objects.filter(name__startswith=PREFIX).delete()
    Club.objects.filter(name__startswith=PREFIX).delete()


def fill(events: int) -> None:
    """Users, targets, memberships, events and feed items for one size, set-based."""
    users, feed = int(events * USERS_PER_EVENT), int(events * FEED_PER_EVENT)
    User, Event, Feed = get_user_model(), get_event_model(), get_feed_model()
    clubs = Club.objects.bulk_create(Club(name=f"{PREFIX}club{n}") for n in range(5))
    Campaign.objects.bulk_create(
        Campaign(id=uuid.UUID(int=k + 1), name=f"{PREFIX}{k}", club=clubs[k % 5])
        for k in range(TARGETS)
    )
    content_type = ContentType.objects.get_for_model(Campaign).pk
    false = "false" if _pg() else "0"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {User._meta.db_table} (password, is_superuser, username, first_name, "
            "last_name, email, is_staff, is_active, date_joined, display_name) "
            f"SELECT '', {false}, '{PREFIX}' || i, '', '', '{PREFIX}' || i || '@example.com', "
            f"{false}, {'true' if _pg() else '1'}, "
            f"{_at(SIGNUP_START, f'i * {SIGNUP_SECONDS // users}')}, '' FROM {_series(users)}"
        )
        cursor.execute(
            f"SELECT min(id) FROM {User._meta.db_table} WHERE username LIKE '{PREFIX}%%'"
        )
        base = cursor.fetchone()[0]
        cursor.execute(
            f"INSERT INTO {Campaign.members.through._meta.db_table} (campaign_id, user_id) "
            f"SELECT {_target_pk(f'i % {TARGETS}')}, {base} + i FROM {_series(users)}"
        )
        # Per 100 events: 8 joins, 2 leaves, then views, comments, devotionals, prayers;
        # 5 of 100 anonymous. Users cycle with a stride so each acts throughout the period.
        kind = (
            "CASE WHEN i % 100 < 8 THEN 'target_joined' WHEN i % 100 < 10 THEN 'target_left' "
            "WHEN i % 100 < 40 THEN 'page_view' WHEN i % 100 < 60 THEN 'comment' "
            "WHEN i % 100 < 80 THEN 'devotional_viewed' ELSE 'prayer_request_created' END"
        )
        is_target = "i % 100 < 10"
        anonymous = "i % 20 = 19"
        created = _at(START, f"i * {PERIOD_SECONDS} / {events}")
        cursor.execute(
            f"INSERT INTO {Event._meta.db_table} (uuid, event_type, user_id, anonymous_id, "
            "source, title, description, data, user_agent, created_at, received_at, "
            "target_content_type_id, target_object_id) "
            f"SELECT {_uuid_sql('i')}, {kind}, "
            f"CASE WHEN {anonymous} THEN NULL ELSE {base} + (i * 7919) % {users} END, "
            f"CASE WHEN {anonymous} THEN 'anon' || i ELSE '' END, 'web', '', '', {_json('{}')}, "
            f"'', {created}, {created}, "
            f"CASE WHEN {is_target} THEN {content_type} END, "
            f"CASE WHEN {is_target} THEN {_target_text(f'(i / 100) % {TARGETS}')} ELSE '' END "
            f"FROM {_series(events)}"
        )
        feed_kind = (
            "CASE i % 5 WHEN 0 THEN 'fast_join' WHEN 1 THEN 'comment' WHEN 2 THEN 'milestone' "
            "WHEN 3 THEN 'fast_reminder' ELSE 'devotional_available' END"
        )
        cursor.execute(
            f"INSERT INTO {Feed._meta.db_table} (user_id, activity_type, title, description, "
            "data, is_read, created_at, target_object_id) "
            f"SELECT {base} + (i * 31) % {users}, {feed_kind}, 'x', '', {_json('{}')}, {false}, "
            f"{_at(START, f'i * {PERIOD_SECONDS} / {feed}')}, '' FROM {_series(feed)}"
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run_command(*args: str) -> tuple[float, float, str]:
    """Run ``engagement_report`` in a child process: (seconds, peak RSS in MB, stderr)."""
    command = [sys.executable, "-m", "django", "engagement_report", "--start", START]
    command += ["--end", END, *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])}
    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as null:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdout=null, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        log = err.read().decode()
    if child.returncode:
        raise RuntimeError(f"engagement_report failed ({child.returncode}): {log}")
    return seconds, usage.ru_maxrss / 1024, log


def slowest(log: str, count: int = 2) -> str:
    timings = []
    for line in log.splitlines():
        name, _, rest = line.partition(": ")
        if " in " in rest:
            timings.append((float(rest.rsplit(" in ", 1)[1].rstrip("s")), name))
    return ", ".join(f"{name} {sec:.1f}s" for sec, name in sorted(timings, reverse=True)[:count])


def floor(events: int) -> float:
    """Stream the period's event rows (what the timeline reads) through a cursor."""
    table = get_event_model()._meta.db_table
    began = time.perf_counter()
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(
            f"SELECT user_id, created_at, event_type, source, target_object_id, uuid "
            f"FROM {table} WHERE created_at >= '{START}' AND created_at < '2001-03-02' "
            "ORDER BY created_at, id"
        )
        while cursor.fetchmany(5000):
            pass
    return time.perf_counter() - began


def run(scale: float) -> list[Row]:
    rows = []
    sizes = [max(1000, int(n * scale)) for n in EVENT_SIZES]
    with tempfile.TemporaryDirectory() as out:
        for events in sizes:
            clear()
            began = time.perf_counter()
            fill(events)
            load = time.perf_counter() - began
            users, feed = int(events * USERS_PER_EVENT), int(events * FEED_PER_EVENT)
            data = f"{users:,} users, {feed:,} feed items; load {load:.1f}s"
            raw = floor(events)
            variants = [("json files", ["--output-dir", out])]
            if events == sizes[-1]:
                variants += [
                    ("csv files + zip", ["--output-dir", out, "--format", "csv", "--zip"]),
                    ("--stdout", ["--stdout"]),
                ]
            for label, args in variants:
                seconds, rss, log = run_command(*args)
                rows.append(
                    Row(
                        f"engagement_report {label}",
                        events,
                        seconds,
                        raw,
                        "events/s",
                        f"peak RSS {rss:.0f} MB; {slowest(log)}; {data}",
                    )
                )
    clear()
    return rows
