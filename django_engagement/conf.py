"""Settings for django-engagement, read from one ``ENGAGEMENT`` dict.

Usage::

    from django_engagement.conf import engagement_settings

    if engagement_settings.ENABLED:
        ...

Values are resolved lazily, dotted paths listed in ``IMPORT_STRINGS`` are
imported on first access, and the cache is dropped whenever ``ENGAGEMENT`` or
an ``ENGAGEMENT_*`` top-level setting changes (``override_settings`` works).
The swappable model settings live at top level, like ``AUTH_USER_MODEL``,
because ``Meta.swappable`` can only name a top-level setting.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

SETTINGS_NAME = "ENGAGEMENT"

DEFAULT_SOURCES = ["web", "android", "ios", "kiosk", "admin", "server"]

# Seed 004's retention table: activity_type -> days kept.
DEFAULT_FEED_RETENTION = {
    "fast_reminder": 30,
    "devotional_reminder": 30,
    "fast_start": 90,
    "fast_join": 180,
    "fast_leave": 180,
    "devotional_available": 90,
    "milestone": 365,
    "event": 180,
}

# Seed 004's activity types with their display labels.
DEFAULT_ACTIVITY_TYPES = {
    "event": "Event",
    "fast_start": "Fast Started",
    "fast_join": "Joined Fast",
    "fast_leave": "Left Fast",
    "devotional_available": "Devotional Available",
    "milestone": "Milestone Reached",
    "fast_reminder": "Fast Reminder",
    "devotional_reminder": "Devotional Reminder",
}

DEFAULTS: dict[str, Any] = {
    # Ingestion
    "ENABLED": True,
    "MAX_EVENT_SIZE": 2048,
    "MAX_BATCH_SIZE": 500,
    "EVENT_TYPES": None,
    "ALLOW_CLIENT_RESERVED_EVENTS": False,
    "SOURCES": DEFAULT_SOURCES,
    "CAPTURE_IP": True,
    "ANONYMIZE_IP": True,
    "INGEST_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "INGEST_THROTTLE_RATE": "120/min",
    # SDK endpoints (Segment, RudderStack, PostHog): docs/guide/sdks.md
    "WRITE_KEYS": {},
    "SDK_USER_FIELD": "pk",
    "SDK_USER_RESOLVER": "django_engagement.services.sdk.resolve_users",
    "SDK_EVENT_TYPE_NORMALIZER": "django_engagement.services.sdk.normalize_event_type",
    "SDK_MAX_MESSAGE_SIZE": 32 * 1024,
    "SDK_MAX_REQUEST_SIZE": 5 * 1024 * 1024,
    "SDK_LIVE_WINDOW": 86400,
    "SDK_CORS_ORIGINS": [],
    # Retention
    "EVENT_RETENTION_DAYS": 90,
    "FEED_RETENTION": DEFAULT_FEED_RETENTION,
    "FEED_RETENTION_DEFAULT": 180,
    # Activity feed
    "FEED_RULES": None,
    "ACTIVITY_TYPES": DEFAULT_ACTIVITY_TYPES,
    "ASYNC_FEED": False,
    # Target model wiring
    "TARGET_LABEL": "target",
    "TARGET_GROUP_LABEL": "group",
    "TARGET_NAME_FIELD": "name",
    "TARGET_GROUP_FIELD": None,
    "TARGET_PARTICIPANTS": None,
    "JOIN_EVENT": "target_joined",
    "LEAVE_EVENT": "target_left",
    "MILESTONES": [10, 50, 100, 250, 500, 1000],
    # Receivers
    "TRACK": {
        "login": True,
        "logout": True,
        "signup": True,
        "membership": True,
        "target_lifecycle": True,
    },
    # Privacy
    "ON_USER_DELETE": "delete",
    # Reports
    "REPORT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "REPORT_STORAGE": None,
    # Text cells starting with = + - @ tab CR get a leading ' in every CSV (formula injection)
    "CSV_ESCAPE_FORMULAS": True,
    # Database alias reports, the dashboard and engagement_report read from (a replica)
    "READ_DATABASE": None,
}

# Settings given as dotted paths (or lists of them) that are imported on access.
IMPORT_STRINGS = ("INGEST_PERMISSION_CLASSES", "REPORT_PERMISSION_CLASSES", "FEED_RULES")

# Dict-valued settings whose user value is merged over the default per key.
MERGED_DICTS = ("TRACK",)

MODEL_SETTINGS = {
    "EVENT_MODEL": ("ENGAGEMENT_EVENT_MODEL", "django_engagement.Event"),
    "FEED_MODEL": ("ENGAGEMENT_FEED_MODEL", "django_engagement.ActivityFeedItem"),
    "TARGET_MODEL": ("ENGAGEMENT_TARGET_MODEL", None),
}


def perform_import(value: Any, setting_name: str) -> Any:
    """Import a dotted path, or each dotted path of a list; pass other values through."""
    if isinstance(value, str):
        return import_string(value)
    if isinstance(value, list | tuple):
        return [import_string(item) if isinstance(item, str) else item for item in value]
    return value


class EngagementSettings:
    """Lazy view over ``settings.ENGAGEMENT`` with defaults and import strings.

    Internal to the package: hosts configure it through Django settings.
    """

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached_attrs: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, SETTINGS_NAME, None) or {}

    def __getattr__(self, attr: str) -> Any:
        if attr in MODEL_SETTINGS:
            setting_name, default = MODEL_SETTINGS[attr]
            return getattr(settings, setting_name, default)
        if attr not in self.defaults:
            raise AttributeError(f"Invalid django-engagement setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr in MERGED_DICTS and isinstance(value, dict):
            value = {**self.defaults[attr], **value}
        if attr in IMPORT_STRINGS:
            value = perform_import(value, attr)
        self._cached_attrs.add(attr)
        setattr(self, attr, value)
        return value

    def reload(self) -> None:
        for attr in self._cached_attrs:
            delattr(self, attr)
        self._cached_attrs.clear()


engagement_settings = EngagementSettings()


def reload_engagement_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME or setting.startswith(f"{SETTINGS_NAME}_"):
        engagement_settings.reload()


setting_changed.connect(
    reload_engagement_settings, dispatch_uid="django_engagement.reload_settings"
)
