"""SDK endpoints under gunicorn: events/s through ``segment/v1/batch`` and ``posthog/batch/``.

    DATABASE_URL=postgres://... python benchmarks/run.py sdk
    python benchmarks/run.py sdk --scale 0.1

Starts gunicorn (2 sync workers, ``benchmarks.sdk_settings``) on a free loopback port and
posts the same N=20,000 events (x scale) in batches of 100 from 4 client threads over
keep-alive connections, as the SDKs send them (each message with its ``messageId`` /
``uuid``, an anonymous id, a timestamp and a small payload), through:

- ``segment/v1/batch`` (a segment-analytics-python body, HTTP Basic write key),
- ``posthog/batch/`` (a posthog-python body),
- ``POST events/`` with ``{"events": [...]}`` of the same 100 events (idempotency keys),

beside the floor: ``bulk_create`` of the same rows in batches of 100, one transaction per
batch, in-process (no HTTP). "vs floor" of the SDK rows is against ``POST events/``.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench_tracking import _reset
from common import Row, measure
from django.db import transaction

from django_engagement.models import get_event_model

ROOT = Path(__file__).resolve().parent.parent
BATCH = 100
CLIENTS = 4
WORKERS = 2
PREFIX = "/api/engagement"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """gunicorn serving the test URLconf with ``benchmarks.sdk_settings``."""

    def __init__(self) -> None:
        self.port = _free_port()
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.sdk_settings"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "django.core.wsgi:get_wsgi_application()",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(WORKERS),
                "--pythonpath",
                str(ROOT),
                "--log-level",
                "warning",
                "--keep-alive",
                "30",
            ],
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def segment_body(start: int) -> bytes:
    batch = [
        {
            "type": "track",
            "event": "Viewed Item",
            "anonymousId": f"anon-{n % 1000}",
            "properties": {"n": n, "sku": f"sku-{n % 50}"},
            "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
            "timestamp": _now(),
            "messageId": str(uuid.uuid4()),
        }
        for n in range(start, start + BATCH)
    ]
    return json.dumps({"batch": batch, "sentAt": _now(), "writeKey": "wk_bench"}).encode()


def posthog_body(start: int) -> bytes:
    batch = [
        {
            "event": "Viewed Item",
            "distinct_id": f"anon-{n % 1000}",
            "properties": {"n": n, "sku": f"sku-{n % 50}", "$lib": "posthog-python"},
            "timestamp": _now(),
            "uuid": str(uuid.uuid4()),
        }
        for n in range(start, start + BATCH)
    ]
    return json.dumps({"api_key": "phc_bench", "batch": batch, "sent_at": _now()}).encode()


def events_body(start: int) -> bytes:
    events = [
        {
            "event_type": "viewed_item",
            "anonymous_id": f"anon-{n % 1000}",
            "payload": {"n": n, "sku": f"sku-{n % 50}"},
            "timestamp": _now(),
            "idempotency_key": str(uuid.uuid4()),
        }
        for n in range(start, start + BATCH)
    ]
    return json.dumps({"events": events}).encode()


def _send(port: int, path: str, bodies: list[bytes], headers: dict[str, str]) -> float:
    """POST every body from ``CLIENTS`` threads on keep-alive connections; wall seconds."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            content = response.read()
            if response.status not in (200, 201):
                failures.append(f"{response.status} {content[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    assert not failures, failures[:3]
    return seconds


def _floor(n: int) -> float:
    Event = get_event_model()

    def insert() -> None:
        for start in range(0, n, BATCH):
            with transaction.atomic():
                Event.objects.bulk_create(
                    [
                        Event(
                            event_type="viewed_item",
                            source="web",
                            anonymous_id=f"anon-{i % 1000}",
                            data={"n": i, "sku": f"sku-{i % 50}"},
                            idempotency_key=str(uuid.uuid4()),
                        )
                        for i in range(start, start + BATCH)
                    ]
                )

    return measure(insert)[0]


def run(scale: float) -> list[Row]:
    n = max(BATCH * CLIENTS, int(20_000 * scale)) // BATCH * BATCH
    Event = get_event_model()
    auth = "Basic " + base64.b64encode(b"wk_bench:").decode()
    json_headers = {"Content-Type": "application/json"}
    paths = [
        ("POST events/ (batches of 100)", "/events/", events_body, json_headers),
        (
            "segment/v1/batch (batches of 100)",
            "/segment/v1/batch",
            segment_body,
            {**json_headers, "Authorization": auth},
        ),
        ("posthog/batch/ (batches of 100)", "/posthog/batch/", posthog_body, json_headers),
    ]
    _reset()
    server = Gunicorn()
    rows: list[Row] = []
    try:
        # Warm up each worker's imports and connections before timing.
        for _, path, build, headers in paths:
            _send(server.port, PREFIX + path, [build(0) for _ in range(WORKERS * 2)], headers)
        _reset()
        baseline = None
        for name, path, build, headers in paths:
            bodies = [build(start) for start in range(0, n, BATCH)]
            seconds = _send(server.port, PREFIX + path, bodies, headers)
            stored = Event.objects.count()
            assert stored == n, (name, stored)
            _reset()
            if baseline is None:
                baseline = seconds
                rows.append(
                    Row(name, n, seconds, _floor(n), "ev/s", "floor: bulk_create per batch")
                )
                _reset()
            else:
                rows.append(Row(name, n, seconds, baseline, "ev/s", "vs: POST events/ bulk"))
    finally:
        server.close()
        _reset()
    return rows
