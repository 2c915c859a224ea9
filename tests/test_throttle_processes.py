"""INGEST_THROTTLE_RATE across processes: held by a shared cache, not by LocMemCache.

Two separate Python processes, one after the other, each send 4 requests from the
same client through the ingestion view's throttle at 5/min. With Redis (db 3) the
second process sees the first one's history; with LocMemCache each starts from zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.helpers import redis_available

REDIS_URL = "redis://127.0.0.1:6379/3"

# Runs in a fresh interpreter: the view's own throttles, as a request would meet them.
CLIENT_SCRIPT = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIRequestFactory
from django_engagement.api.ingest import EventIngestView

with override_settings(ENGAGEMENT={**settings.ENGAGEMENT, "INGEST_THROTTLE_RATE": "5/min"}):
    view = EventIngestView()
    allowed = 0
    for _ in range(int(sys.argv[1])):
        request = view.initialize_request(
            APIRequestFactory().post("/events/", REMOTE_ADDR="198.51.100.7")
        )
        allowed += all(t.allow_request(request, view) for t in view.get_throttles())
print(json.dumps(allowed))
"""


def allowed_per_process(cache_url: str, processes: int = 2, requests: int = 4) -> list[int]:
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONPATH": str(root),
        "CACHE_URL": cache_url,
    }
    counts = []
    for _ in range(processes):
        result = subprocess.run(
            [sys.executable, "-c", CLIENT_SCRIPT, str(requests)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        counts.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return counts


@pytest.fixture
def shared_redis():
    """Redis db 3, empty before and after (the throttle history lives there)."""
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    from django.core.cache.backends.redis import RedisCache

    cache = RedisCache(REDIS_URL, {})
    cache.clear()
    yield REDIS_URL
    cache.clear()


def test_shared_cache_holds_the_rate_across_processes(shared_redis):
    assert allowed_per_process(shared_redis) == [4, 1]


def test_locmem_cache_counts_per_process():
    """The problem W003 warns about: each process lets the client through 4 times."""
    assert allowed_per_process("locmemcache://") == [4, 4]
