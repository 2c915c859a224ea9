"""Plain helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import io
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connections

from django_engagement.models import get_event_model, get_feed_model


def counter_statements(writes: int = 1) -> int:
    """Extra statements ``writes`` feed writes spend on the unread counters: none on
    PostgreSQL (one statement with the write), one each elsewhere (RETURNING, then upsert)."""
    return 0 if connections["default"].vendor == "postgresql" else writes


def events():
    """The configured event model's default manager."""
    return get_event_model()._default_manager


def feed():
    """The configured feed model's default manager."""
    return get_feed_model()._default_manager


def post_raw(client: Any, raw: str | bytes, content_type: str = "application/json", **extra: Any):
    """POST ``raw`` to ``events/`` exactly as given (the parser must see the client's text)."""
    from django.urls import reverse

    body = raw.encode() if isinstance(raw, str) else raw
    url = reverse("django_engagement:engagement-events")
    return client.generic("POST", url, body, content_type=content_type, **extra)


def command_output(name: str, *args, tty: bool = False) -> str:
    """Run management command ``name`` and return its stdout; ``tty`` makes it a terminal."""
    out = io.StringIO()
    if tty:
        out.isatty = lambda: True
    call_command(name, *args, stdout=out)
    return out.getvalue()


def redis_available() -> bool:
    """Whether a Redis server answers PING on 127.0.0.1:6379."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll ``predicate`` every 0.1 s until it is true (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@contextmanager
def current_celery_app(**conf: Any) -> Iterator[Any]:
    """A Celery app with ``conf`` made current (``shared_task`` publishes through it)."""
    from celery import Celery
    from celery._state import get_current_app

    previous = get_current_app()
    app = Celery(f"engagement-tests-{uuid.uuid4().hex[:8]}", set_as_current=True)
    app.conf.update(result_backend=None, **conf)
    try:
        yield app
    finally:
        previous.set_current()


@contextmanager
def celery_worker_thread(broker_url: str) -> Iterator[Any]:
    """A real solo worker thread consuming a private queue on ``broker_url``.

    Its app is current while it runs, so ``.delay()`` reaches it.
    """
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    queue = f"engagement-test-{uuid.uuid4().hex}"

    def close_connections(**kwargs: Any) -> None:
        # The worker thread opened its own connections; the test database must be droppable.
        connections.close_all()

    with current_celery_app(
        broker_url=broker_url,
        task_default_queue=queue,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=False,
    ) as app:
        app.loader.import_module("django_engagement.tasks")
        task_postrun.connect(close_connections, weak=False)
        try:
            with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]) as worker:
                yield worker
        finally:
            task_postrun.disconnect(close_connections)


def make_users(count: int, prefix: str = "member") -> list:
    """``count`` users ``<prefix>0`` ... in one INSERT, each with an email address."""
    User = get_user_model()
    return User.objects.bulk_create(
        [User(username=f"{prefix}{n}", email=f"{prefix}{n}@example.com") for n in range(count)]
    )
