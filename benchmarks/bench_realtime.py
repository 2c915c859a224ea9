"""SSE stream: one uvicorn process holding N idle streams, then one item to all of them.

    DATABASE_URL=postgres://... python benchmarks/run.py realtime

N = 1,000 at scale 1. The clients are raw asyncio streams in this process (connects
bounded to 50 at a time), each authenticated with HTTP Basic as its own user. Figures:
the server's RSS with N idle streams, and the time from ``notify()`` of one item to
the N users (one ``INSERT ... SELECT``, then one NOTIFY) until the last client has read
its ``item`` event. The floor is the same fan-out's rows written by raw SQL plus one
raw ``pg_notify`` round trip to a ``LISTEN`` connection (PostgreSQL), measured in the
same run. PostgreSQL only (the default broker, NOTIFY); skipped on SQLite.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from common import Row, measure
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction

from django_engagement.models import get_feed_model
from django_engagement.services.feed import notify

ROOT = Path(__file__).resolve().parent.parent
STREAM = "/api/engagement/activity-feed/stream/"
CONNECT_CONCURRENCY = 50
PREFIX = "rtbench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "postgresql":
        return (
            f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}"
        )
    raise RuntimeError("bench_realtime needs PostgreSQL")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _users(n: int) -> list[str]:
    User = get_user_model()
    User.objects.filter(username__startswith=PREFIX).delete()
    password = make_password("pw")
    names = [f"{PREFIX}{i:05d}" for i in range(n)]
    User.objects.bulk_create([User(username=name, password=password) for name in names])
    return names


async def _open(port: int, username: str, gate: asyncio.Semaphore):
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        token = base64.b64encode(f"{username}:pw".encode()).decode()
        writer.write(
            f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {token}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        buffer = b""
        while b"event: unread_count" not in buffer:
            chunk = await reader.read(4096)
            if not chunk:
                raise RuntimeError(f"stream closed: {buffer[:200]!r}")
            buffer += chunk
        return reader, writer


async def _until_item(reader: asyncio.StreamReader) -> float:
    buffer = b""
    while b"event: item" not in buffer:
        chunk = await reader.read(4096)
        if not chunk:
            raise RuntimeError("stream closed before the item")
        buffer += chunk
    return time.perf_counter()


async def _session(port: int, names: list[str], server_pid: int) -> tuple[float, float, float]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.perf_counter()
    streams = await asyncio.gather(*(_open(port, name, gate) for name in names))
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(1)
    rss = _rss_mb(server_pid)
    waiters = [asyncio.create_task(_until_item(reader)) for reader, _ in streams]
    User = get_user_model()
    sent = time.perf_counter()
    await asyncio.to_thread(
        notify, User.objects.filter(username__startswith=PREFIX), "event", title="bench"
    )
    arrivals = await asyncio.wait_for(asyncio.gather(*waiters), 60)
    for _, writer in streams:
        writer.close()
    return connect_seconds, rss, max(arrivals) - sent


def _floor(n: int) -> float:
    """Raw SQL: the fan-out's rows, plus one pg_notify round trip (PostgreSQL)."""
    Feed = get_feed_model()
    User = get_user_model()
    table, users = Feed._meta.db_table, User._meta.db_table
    quote = connection.ops.quote_name

    def insert() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {quote(table)} (user_id, activity_type, title, description, data,"
                f" is_read, created_at, target_object_id)"
                f" SELECT id, 'event', 'floor', '', '{{}}', false, CURRENT_TIMESTAMP, ''"
                f" FROM {quote(users)} WHERE username LIKE %s",
                [f"{PREFIX}%"],
            )
            transaction.set_rollback(True)

    seconds = measure(insert)[0]
    if connection.vendor == "postgresql":
        import psycopg

        params = {
            k: v for k, v in connection.get_connection_params().items() if isinstance(v, str | int)
        }
        with psycopg.connect(**params, autocommit=True) as listener:
            listener.execute("LISTEN rtbench_floor")
            start = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify('rtbench_floor', '{}')")
            next(listener.notifies(timeout=5))
            seconds += time.perf_counter() - start
    return seconds


def run(scale: float) -> list[Row]:
    if connection.vendor != "postgresql":
        print("bench_realtime: skipped (PostgreSQL only: LISTEN/NOTIFY across processes)")
        return []
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}",
    }
    n = max(10, int(1000 * scale))
    names = _users(n)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        idle_rss = _rss_mb(server.pid)
        connect_seconds, rss, delivery = asyncio.run(_session(port, names, server.pid))
    finally:
        server.terminate()
        server.wait(30)
    floor = _floor(n)
    get_feed_model()._default_manager.filter(user__username__startswith=PREFIX).delete()
    get_user_model().objects.filter(username__startswith=PREFIX).delete()
    return [
        Row(f"open {n} streams (Basic auth, 50 at a time)", n, connect_seconds, None, "conn/s"),
        Row(
            f"one item to {n} idle streams, last arrival",
            n,
            delivery,
            floor,
            "streams/s",
            f"server RSS {idle_rss:.0f} MB at start, {rss:.0f} MB with {n} streams",
        ),
    ]
