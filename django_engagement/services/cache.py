"""Cached report and dashboard results, through Django's cache framework.

Usage::

    from django_engagement.services import cache

    @cache.cached("dashboard", days=lambda days: DateWindow.last_days(days))
    def build_dashboard(days: int) -> dict: ...

    cache.bump_days([date(2026, 1, 4)])   # what aggregation does after it commits

A result is stored in ``CACHES[ENGAGEMENT["CACHE"]]`` for ``CACHE_TIMEOUT`` seconds
(0 or None: no caching) under a key made of the report's name, every argument it was
called with, the settings that shape it (``ENGAGEMENT``, ``TIME_ZONE``, the model
settings) and the **data version** of each day it covers. Aggregation gives the days it
writes a new version after commit, so a cached result over those days is never served
again. Days still read from raw events (today, days not aggregated) have no such
signal: a result over them is at most ``CACHE_TIMEOUT`` seconds old.

Who may see a result is decided before the cache is asked (the views check
``REPORT_PERMISSION_CLASSES`` first); a result that depends on who asks must take that
as an argument (a user, a scope string), which then is part of its key. A cache that
fails (Redis down) is logged and skipped: the report is computed, never a 500.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.db import models

from ..conf import MODEL_SETTINGS, SETTINGS_NAME, engagement_settings

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

KEY_PREFIX = "django_engagement"
# Bumped when the shape of cached results changes, so old entries are never read.
SCHEMA = 1
# A key carries one version per covered day; results over longer spans (a report over
# centuries, say) are computed each time rather than keyed by thousands of versions.
MAX_CACHED_DAYS = 400


class Span(Protocol):
    """What a ``days`` callable returns: the first and last day a result covers."""

    @property
    def start(self) -> date: ...

    @property
    def end(self) -> date: ...


def backend() -> BaseCache | None:
    """The cache results go to, or None when caching is off (``CACHE_TIMEOUT`` 0/None)."""
    if not engagement_settings.CACHE_TIMEOUT:
        return None
    return caches[engagement_settings.CACHE]


def version_key(day: date) -> str:
    return f"{KEY_PREFIX}:version:{day.isoformat()}"


def bump_days(days: Iterable[date]) -> None:
    """Give each of ``days`` a new data version: cached results over them are dropped.

    Versions are random tokens kept without expiry, so a bump never repeats an older
    version. Called by aggregation after it commits; a failing cache is logged.
    """
    store = backend()
    days = list(days)
    if store is None or not days:
        return
    token = uuid.uuid4().hex
    try:
        store.set_many({version_key(day): token for day in days}, timeout=None)
    except Exception:  # the cache is an optimisation: never fail the aggregation for it
        logger.warning("could not bump the report cache versions", exc_info=True)


def day_versions(store: BaseCache, span: Span) -> list[str]:
    """The data versions of every day of ``span`` in one round trip (``"0"`` for a day
    never aggregated since the cache was last cleared)."""
    keys = []
    day = span.start
    while day <= span.end:
        keys.append(version_key(day))
        day = date.fromordinal(day.toordinal() + 1)
    found = store.get_many(keys)
    return [found.get(key, "0") for key in keys]


def _plain(value: Any) -> Any:
    """An argument as JSON that identifies it: dates as ISO text, model instances by
    label and pk, containers recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, models.Model):
        return [value._meta.label_lower, str(value.pk)]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in sorted(value.items(), key=str)}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(item) for item in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def settings_fingerprint() -> Any:
    """The settings that change what a report says: another value, another key."""
    return _plain(
        {
            "engagement": getattr(settings, SETTINGS_NAME, None) or {},
            "models": [getattr(settings, name, value) for name, value in MODEL_SETTINGS.values()],
            "time_zone": [settings.TIME_ZONE, settings.USE_TZ],
        }
    )


def result_key(name: str, arguments: dict[str, Any], versions: list[str]) -> str:
    """The cache key of one result: its name, arguments, settings and data versions."""
    material = json.dumps(
        [SCHEMA, name, _plain(arguments), settings_fingerprint(), versions],
        sort_keys=True,
        separators=(",", ":"),
    )
    return f"{KEY_PREFIX}:result:{name}:{hashlib.sha256(material.encode()).hexdigest()}"


def cached(name: str, *, days: Callable[..., Span]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Cache a report function's results (see the module docstring).

    ``days`` is called with the function's arguments and returns the span of days the
    result covers (an object with ``start`` and ``end`` dates); its days' versions are
    part of the key. An exception ``days`` raises (a bad argument) propagates before
    the cache is asked, as the function itself would raise it.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            store = backend()
            if store is None:
                return function(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            span = days(*bound.args, **bound.kwargs)
            if (span.end - span.start).days >= MAX_CACHED_DAYS:
                return function(*args, **kwargs)
            try:
                key = result_key(name, dict(bound.arguments), day_versions(store, span))
                hit = store.get(key)
            except Exception:
                logger.warning("report cache unavailable; computing %s", name, exc_info=True)
                return function(*args, **kwargs)
            if hit is not None:
                return hit
            result = function(*args, **kwargs)
            try:
                store.set(key, result, timeout=engagement_settings.CACHE_TIMEOUT)
            except Exception:
                logger.warning("could not store %s in the report cache", name, exc_info=True)
            return result

        return wrapper

    return decorate
