"""activity-feed/stream/: Server-Sent Events of the caller's own feed.

In-process tests drive the async view through Django's AsyncClient on the memory
broker; the cross-process tests start uvicorn on 127.0.0.1 and create items from a
separate ``django-admin shell`` process, through PostgreSQL NOTIFY or Redis pub/sub.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started
from django.db import close_old_connections, connection
from django.test import AsyncClient

from django_engagement.services.feed import mark_read, notify
from django_engagement.services.realtime import FeedChange, hub
from tests.conftest import require_service
from tests.helpers import feed, redis_available, wait_for
from tests.test_fan_out_delivery import database_url

ROOT = Path(__file__).resolve().parent.parent
STREAM = "/api/engagement/activity-feed/stream/"
REDIS_SETTINGS = "tests.settings_realtime_redis"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def memory_broker(engagement_settings):
    engagement_settings.update(REALTIME_BROKER="memory", REALTIME_HEARTBEAT=0.2)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="pw")


def parse(chunk: bytes) -> list[dict]:
    """SSE blocks of ``chunk`` as dicts of their fields (``comment`` for ``: ...``)."""
    blocks = []
    for block in chunk.decode().split("\n\n"):
        fields: dict = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def events_of(blocks: list[dict], name: str) -> list[dict]:
    return [json.loads(block["data"]) for block in blocks if block.get("event") == name]


class AsgiStream:
    """The stream through Django's real ASGI handler; ``aclose()`` is a client disconnect."""

    def __init__(self, response_start: dict, sent: asyncio.Queue, task, disconnected) -> None:
        self.status_code = response_start["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in response_start["headers"]}
        self.sent, self.task, self.disconnected = sent, task, disconnected

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        message = await self.sent.get()
        if message["type"] != "http.response.body" or not message.get("more_body"):
            raise StopAsyncIteration
        return message["body"]

    def json(self) -> dict:
        return json.loads(self.sent.get_nowait()["body"])

    async def aclose(self) -> None:
        self.disconnected.set()
        await self.task


def session_cookie(user) -> str:
    client = AsyncClient()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def open_stream(user, cookie: str | None = None, **headers) -> AsgiStream:
    """Open the stream as ``user`` (or with a ready session ``cookie``)."""
    cookie = cookie or await sync_to_async(session_cookie)(user)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": STREAM,
        "raw_path": STREAM.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }
    disconnected = asyncio.Event()
    requested = False
    sent: asyncio.Queue = asyncio.Queue()

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    # As Django's test client does: keep the test's database connection open.
    request_started.disconnect(close_old_connections)
    task = asyncio.create_task(ASGIHandler()(scope, receive, sent.put))
    try:
        start = await sent.get()
    finally:
        request_started.connect(close_old_connections)
    return AsgiStream(start, sent, task, disconnected)


def test_under_wsgi_the_stream_is_a_501_json(client, alice):
    client.force_login(alice)
    response = client.get(STREAM)
    assert response.status_code == 501
    assert "ASGI" in response.json()["detail"]


def test_anonymous_is_refused_with_json():
    async def run():
        return await AsyncClient().get(STREAM)

    response = async_to_sync(run)()
    assert response.status_code == 403  # as DRF answers: SessionAuthentication comes first
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_bad_last_event_id_is_a_400(alice, memory_broker):
    async def run():
        response = await open_stream(alice, **{"Last-Event-ID": "abc"})
        return response.status_code, response.json()

    status, body = async_to_sync(run)()
    assert status == 400
    assert body == {"last_event_id": ["Must be a feed item id (a non-negative integer)."]}
    assert hub.subscriber_count == 0


def test_new_items_and_unread_count_reach_only_their_user(alice, bob, memory_broker):
    notify([alice], "event", title="old")

    async def run():
        stream = await open_stream(alice)
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["x-accel-buffering"] == "no"
        first = parse(await anext(stream))
        await sync_to_async(notify)([bob], "event", title="for bob")
        await sync_to_async(notify)([alice, bob], "event", title="for both")
        later = []
        while not events_of(later, "item"):
            later += parse(await anext(stream))
        await stream.aclose()
        return first, later

    first, later = async_to_sync(run)()
    assert first[0] == {"retry": "3000"}
    assert events_of(first, "unread_count") == [{"unread_count": 1}]
    assert events_of(first, "item") == []  # no Last-Event-ID: only what is new
    items = events_of(later, "item")
    alice_item = feed().get(user=alice, title="for both")
    assert [item["title"] for item in items] == ["for both"]
    assert items[0]["id"] == alice_item.pk
    assert [block["id"] for block in later if block.get("event") == "item"] == [str(alice_item.pk)]
    assert events_of(later, "unread_count")[-1] == {"unread_count": 2}
    assert "for bob" not in json.dumps(later)


def test_last_event_id_resends_only_newer_items(alice, bob, memory_broker):
    for title in ("one", "two", "three"):
        notify([alice, bob], "event", title=title)
    one = feed().get(user=alice, title="one")

    async def run():
        stream = await open_stream(alice, **{"Last-Event-ID": str(one.pk)})
        blocks = parse(await anext(stream))
        await stream.aclose()
        return blocks

    blocks = async_to_sync(run)()
    assert [item["title"] for item in events_of(blocks, "item")] == ["two", "three"]
    assert {item["id"] for item in events_of(blocks, "item")} == set(
        feed().filter(user=alice, title__in=["two", "three"]).values_list("pk", flat=True)
    )
    assert events_of(blocks, "unread_count") == [{"unread_count": 3}]


def test_mark_read_sends_the_new_unread_count_and_a_heartbeat_when_idle(alice, memory_broker):
    notify([alice], "event", title="a")
    notify([alice], "event", title="b")

    async def run():
        stream = await open_stream(alice)
        first = parse(await anext(stream))
        heartbeat = parse(await anext(stream))  # REALTIME_HEARTBEAT=0.2 s, nothing new
        await sync_to_async(mark_read)(alice)
        later = parse(await anext(stream))
        await stream.aclose()
        return first, heartbeat, later

    first, heartbeat, later = async_to_sync(run)()
    assert events_of(first, "unread_count") == [{"unread_count": 2}]
    assert heartbeat == [{"comment": "heartbeat"}]
    assert later == [{"event": "unread_count", "data": '{"unread_count":0}'}]


def test_closing_the_last_stream_stops_the_listener(alice, bob, memory_broker):
    async def run():
        alice_stream = await open_stream(alice)
        bob_stream = await open_stream(bob)
        await anext(alice_stream)
        await anext(bob_stream)
        open_counts = (hub.subscriber_count, len(hub.tasks), hub.running)
        await alice_stream.aclose()
        one_left = (hub.subscriber_count, hub.running)
        await bob_stream.aclose()
        await asyncio.sleep(0.05)  # let the cancelled tasks finish
        return open_counts, one_left, (hub.subscriber_count, hub.running, dict(hub.subscriptions))

    open_counts, one_left, closed = async_to_sync(run)()
    assert open_counts == (2, 2, True)
    assert one_left == (1, True)
    assert closed == (0, False, {})


def test_stream_request_runs_a_fixed_number_of_queries(
    alice, memory_broker, django_assert_max_num_queries
):
    for n in range(30):
        notify([alice], "event", title=f"item {n}")
    first = feed().filter(user=alice).order_by("pk").first()
    cookie = session_cookie(alice)

    async def run():
        stream = await open_stream(alice, cookie, **{"Last-Event-ID": str(first.pk)})
        blocks = parse(await anext(stream))
        await stream.aclose()
        return blocks

    # session + user, newest id skipped (Last-Event-ID given), resume items, unread count
    with django_assert_max_num_queries(4):
        blocks = async_to_sync(run)()
    assert len(events_of(blocks, "item")) == 29


def test_an_unreadable_note_means_anyone():
    assert FeedChange.from_payload(b"not json") == FeedChange(None)
    assert FeedChange.from_payload('{"users": [3, 4]}') == FeedChange((3, 4))
    assert FeedChange(tuple(range(5000))).to_payload() == '{"users": null}'


# -- across processes: uvicorn + a writer process ---------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(settings_module: str) -> dict[str, str]:
    url = database_url()
    if url is None:
        pytest.skip(
            "the server process needs a file database: set ENGAGEMENT_SQLITE_TEST_NAME "
            "or DATABASE_URL"
        )
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def uvicorn_server(settings_module: str, tmp_path: Path) -> Iterator[int]:
    """uvicorn serving tests/asgi.py on a free loopback port; yields the port."""
    env = process_env(settings_module)
    port = free_port()
    log = (tmp_path / "uvicorn.log").open("w")
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
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def answers() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        assert wait_for(answers, 20), (tmp_path / "uvicorn.log").read_text()
        yield port
    finally:
        server.terminate()
        server.wait(10)
        log.close()


class RawStream:
    """An SSE client on a plain socket (HTTP Basic auth), reading events as they come."""

    def __init__(self, port: int, username: str, last_event_id: int | None = None) -> None:
        import base64

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        token = base64.b64encode(f"{username}:pw".encode()).decode()
        resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        self.sock.sendall(
            f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {token}\r\n"
            f"Accept: text/event-stream\r\n{resume}\r\n".encode()
        )
        self.buffer = b""

    def read_until(self, predicate, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            blocks = parse(self.buffer.split(b"\r\n\r\n", 1)[-1].replace(b"\r\n", b"\n"))
            if predicate(blocks):
                return blocks
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            self.buffer += data
        return parse(self.buffer.split(b"\r\n\r\n", 1)[-1].replace(b"\r\n", b"\n"))

    def close(self) -> None:
        self.sock.close()


def write_from_another_process(settings_module: str, code: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", code],
        cwd=ROOT,
        env=process_env(settings_module),
        check=True,
        timeout=60,
    )


NOTIFY_CODE = (
    "from django.contrib.auth import get_user_model as U; "
    "from django_engagement.services.feed import notify; "
    "notify(U().objects.filter(username__in=['alice', 'bob']), 'event', title='{title}')"
)


def has_item(title: str):
    return lambda blocks: any(item["title"] == title for item in events_of(blocks, "item"))


def listeners_on_postgres() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN %%'"
        )
        return cursor.fetchone()[0]


def cross_process_delivery(settings_module: str, tmp_path: Path, django_user_model) -> None:
    django_user_model.objects.create_user("alice", password="pw")
    django_user_model.objects.create_user("bob", password="pw")
    django_user_model.objects.create_user("carol", password="pw")
    with uvicorn_server(settings_module, tmp_path) as port:
        alice, alice_again, carol = (RawStream(port, name) for name in ("alice", "alice", "carol"))
        try:
            for stream in (alice, alice_again, carol):
                assert events_of(
                    stream.read_until(lambda b: events_of(b, "unread_count"), 10), "unread_count"
                ) == [{"unread_count": 0}]
            if connection.vendor == "postgresql" and settings_module == "tests.settings":
                assert listeners_on_postgres() == 1  # one per process, not per stream
            write_from_another_process(settings_module, NOTIFY_CODE.format(title="hello"))
            written = time.monotonic()
            blocks = alice.read_until(has_item("hello"), 1.0)
            assert time.monotonic() - written < 1.0
            assert [item["title"] for item in events_of(blocks, "item")] == ["hello"]
            assert events_of(blocks, "unread_count")[-1] == {"unread_count": 1}
            assert has_item("hello")(alice_again.read_until(has_item("hello"), 1.0))
            assert events_of(carol.read_until(lambda b: False, 0.5), "item") == []
            hello = feed().get(user__username="alice", title="hello")
        finally:
            for stream in (alice, alice_again, carol):
                stream.close()
        if connection.vendor == "postgresql" and settings_module == "tests.settings":
            # the last disconnect closes the listener's connection
            assert wait_for(lambda: listeners_on_postgres() == 0, 10)
        write_from_another_process(settings_module, NOTIFY_CODE.format(title="while away"))
        resumed = RawStream(port, "alice", last_event_id=hello.pk)
        try:
            blocks = resumed.read_until(has_item("while away"), 5)
            assert [item["title"] for item in events_of(blocks, "item")] == ["while away"]
        finally:
            resumed.close()


@pytest.mark.services
def test_item_from_another_process_through_postgres_notify(tmp_path, django_user_model):
    require_service(connection.vendor == "postgresql", "LISTEN/NOTIFY needs PostgreSQL")
    cross_process_delivery("tests.settings", tmp_path, django_user_model)


@pytest.mark.services
def test_item_from_another_process_through_redis_pubsub(tmp_path, django_user_model):
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    cross_process_delivery(REDIS_SETTINGS, tmp_path, django_user_model)


@pytest.mark.parametrize(
    ("broker", "expected"),
    [
        (None, []),
        ("memory", []),
        ("redis", []),
        ("carrier-pigeon", ["REALTIME_BROKER is 'carrier-pigeon', not one of"]),
    ],
)
def test_w006_names_a_broker_that_cannot_work(engagement_settings, broker, expected):
    from django_engagement.checks import check_realtime_broker

    engagement_settings.update(REALTIME_BROKER=broker)
    messages = check_realtime_broker()
    assert [m.id for m in messages] == ["django_engagement.W006"] * len(expected)
    assert all(text in m.msg for m, text in zip(messages, expected, strict=True))


def test_w006_postgres_broker_without_postgresql(engagement_settings):
    from django_engagement.checks import check_realtime_broker

    engagement_settings.update(REALTIME_BROKER="postgres")
    messages = check_realtime_broker()
    if connection.vendor == "postgresql":
        assert messages == []
    else:
        assert [m.msg.split(":")[0] for m in messages] == [
            "ENGAGEMENT REALTIME_BROKER is 'postgres' but the feed's database is not PostgreSQL"
        ]
