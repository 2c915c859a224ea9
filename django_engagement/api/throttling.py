"""Rate limit of the ingestion endpoint, configured by ``INGEST_THROTTLE_RATE``.

The rate comes from ``ENGAGEMENT["INGEST_THROTTLE_RATE"]`` (DRF's
``"120/min"`` syntax; ``None`` switches throttling off) rather than from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, and is read when the throttle is
built, i.e. on every request, so ``override_settings`` takes effect at once.

Counts live in Django's default cache under the scope ``engagement_ingest``.
That cache must be shared by all workers (Redis, Memcached) for the rate to
hold across processes; check ``django_engagement.W003`` warns when it is not.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches
from rest_framework.throttling import SimpleRateThrottle

from ..conf import engagement_settings


def throttle_cache() -> BaseCache:
    """The cache backend ``IngestRateThrottle`` counts in: DRF's, the default cache."""
    cache = IngestRateThrottle.cache
    if isinstance(cache, BaseCache):
        return cache
    # DRF binds ``django.core.cache.cache``, a proxy to the default alias.
    return caches[DEFAULT_CACHE_ALIAS]


class IngestRateThrottle(SimpleRateThrottle):
    """One budget per client: the user id when authenticated, else the client IP.

    A fixed window aligned to the clock (the minute, hour or day of the rate)
    counted with the cache's ``incr`` (``add`` starts a window), instead of DRF's request history
    (``get`` then ``set``): concurrent requests on several workers each get their
    own count, so at most the rate passes per window (Redis and Memcached
    increment atomically; DRF's history let 281 of 600 concurrent requests
    through at 120/min). The price is the usual one of fixed windows: a client
    may spend one window's budget at its end and the next one's at its start.
    """

    scope = "engagement_ingest"
    # Set by SimpleRateThrottle.__init__ from the rate (parse_rate); the stubs omit them.
    num_requests: int
    duration: int

    def get_rate(self) -> str | None:
        return engagement_settings.INGEST_THROTTLE_RATE

    def get_cache_key(self, request: Any, view: Any) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        key = f"{self.get_cache_key(request, view)}:{window}"
        try:
            count = self.cache.incr(key)
        except ValueError:
            # The window's first request: add() creates the count, unless another
            # worker just did. Kept a window longer than used, so incr() never meets
            # an expired key. (DummyCache adds nothing but says it did: no limit, W003.)
            added = self.cache.add(key, 1, timeout=2 * self.duration)
            count = 1 if added else self.cache.incr(key)
        return count <= self.num_requests

    def wait(self) -> float:
        """Seconds until the current window ends (``Retry-After``)."""
        return self.window_end - self.now
