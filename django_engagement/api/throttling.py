"""Rate limit of the ingestion endpoint, configured by ``INGEST_THROTTLE_RATE``.

The rate comes from ``ENGAGEMENT["INGEST_THROTTLE_RATE"]`` (DRF's
``"120/min"`` syntax; ``None`` switches throttling off) rather than from
``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``, and is read when the throttle is
built, i.e. on every request, so ``override_settings`` takes effect at once.
History lives in Django's default cache under the scope ``engagement_ingest``;
that cache must be shared by all workers (Redis, Memcached, the database) for
the rate to hold across processes, which check ``django_engagement.W003`` says.
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
    """One budget per client: the user id when authenticated, else the client IP."""

    scope = "engagement_ingest"

    def get_rate(self) -> str | None:
        return engagement_settings.INGEST_THROTTLE_RATE

    def get_cache_key(self, request: Any, view: Any) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
