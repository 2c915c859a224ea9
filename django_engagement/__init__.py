"""django-engagement: track what users do and show it back to them.

The public Python API is importable from the package root::

    from django_engagement import record_event, notify, feed_summary, selectors

Names are resolved lazily (PEP 562) so importing the package never touches
the app registry.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_LAZY_EXPORTS = {
    "get_event_model": "django_engagement.models",
    "get_feed_model": "django_engagement.models",
    "get_target_model": "django_engagement.models",
    "record_event": "django_engagement.services.events",
    "record_events": "django_engagement.services.events",
    "notify": "django_engagement.services.feed",
    "feed_summary": "django_engagement.services.feed",
    "export_user_data": "django_engagement.services.privacy",
    "apply_retention": "django_engagement.services.retention",
    "purge_events": "django_engagement.services.retention",
    "aggregate_daily": "django_engagement.services.aggregation",
    "aggregate_period": "django_engagement.services.aggregation",
    "build_engagement_report": "django_engagement.services.engagement_report",
}

# Modules of the public API: ``from django_engagement import selectors``.
_LAZY_MODULES = {
    "selectors": "django_engagement.services.selectors",
}

__all__ = ["__version__", *_LAZY_EXPORTS, *_LAZY_MODULES]


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return import_module(_LAZY_MODULES[name])
    module_path = _LAZY_EXPORTS.get(name)
    if module_path is None:
        raise AttributeError(f"module 'django_engagement' has no attribute {name!r}")
    return getattr(import_module(module_path), name)
