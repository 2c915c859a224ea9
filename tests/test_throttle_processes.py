"""INGEST_THROTTLE_RATE across processes: held by a shared cache, not by LocMemCache.

Separate Python processes send requests from one client through the ingestion
view's own throttle. With Redis (db 3) they share one count; with LocMemCache
each process starts from zero. Rates are per day, so no window ends mid-test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.helpers import redis_available

REDIS_URL = "redis://127.0.0.1:6379/3"

# argv: requests, rate, and a directory to meet in ("" for none): once set up, a process
# writes ready-<pid> there and waits for the file "go", so all of them start together.
CLIENT_SCRIPT = """
import json, os, sys, time
from pathlib import Path
import django
django.setup()
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIRequestFactory
from django_engagement.api.ingest import EventIngestView

requests, rate, meet = int(sys.argv[1]), sys.argv[2], sys.argv[3]
factory = APIRequestFactory()
with override_settings(ENGAGEMENT={**settings.ENGAGEMENT, "INGEST_THROTTLE_RATE": rate}):
    view = EventIngestView()
    if meet:
        (Path(meet) / f"ready-{os.getpid()}").touch()
        while not (Path(meet) / "go").exists():
            time.sleep(0.01)
    allowed = 0
    for _ in range(requests):
        request = view.initialize_request(factory.post("/events/", REMOTE_ADDR="198.51.100.7"))
        allowed += all(t.allow_request(request, view) for t in view.get_throttles())
print(json.dumps(allowed))
"""


def allowed_per_process(
    cache_url: str, *, processes: int, requests: int, rate: str, meet: Path | None = None
) -> list[int]:
    """Requests each process got through; one after the other, or all released at once."""
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(root),
        "CACHE_URL": cache_url,
    }

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", CLIENT_SCRIPT, str(requests), rate, str(meet or "")],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def result(process: subprocess.Popen) -> int:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err[-2000:]
        return json.loads(out.strip().splitlines()[-1])

    if meet is None:
        return [result(start()) for _ in range(processes)]
    started = [start() for _ in range(processes)]
    deadline = time.monotonic() + 60
    while len(list(meet.glob("ready-*"))) < processes and time.monotonic() < deadline:
        time.sleep(0.05)
    (meet / "go").touch()
    return [result(process) for process in started]


@pytest.fixture
def shared_redis():
    """Redis db 3, empty before and after (the throttle counts live there)."""
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    from django.core.cache.backends.redis import RedisCache

    cache = RedisCache(REDIS_URL, {})
    cache.clear()
    yield REDIS_URL
    cache.clear()


def test_shared_cache_holds_the_rate_across_processes(shared_redis):
    assert allowed_per_process(shared_redis, processes=2, requests=4, rate="5/day") == [4, 1]


def test_locmem_cache_counts_per_process():
    """The problem W003 warns about: each process lets the client through again."""
    assert allowed_per_process("locmemcache://", processes=2, requests=4, rate="5/day") == [4, 4]


def test_concurrent_processes_never_exceed_the_rate(shared_redis, tmp_path):
    """4 processes x 100 requests at once: exactly 120 pass (DRF's get/set let 281 through)."""
    counts = allowed_per_process(
        shared_redis, processes=4, requests=100, rate="120/day", meet=tmp_path
    )
    assert sum(counts) == 120
