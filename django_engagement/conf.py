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

# Event codes the package records itself (receivers, milestones, target lifecycle), besides
# the JOIN_EVENT / LEAVE_EVENT settings; clients may not send them (reserved_event_types).
MILESTONE_EVENT = "milestone_reached"
TARGET_CREATED_EVENT = "target_created"
TARGET_STARTED_EVENT = "target_started"
TARGET_UPDATED_EVENT = "target_updated"
LOGIN_EVENT = "user_logged_in"
LOGOUT_EVENT = "user_logged_out"
SIGNUP_EVENT = "user_signed_up"

# Days a feed item is kept, by activity type (FEED_RETENTION_DEFAULT for other types).
DEFAULT_FEED_RETENTION = {
    "reminder": 30,
    "target_start": 90,
    "content_available": 90,
    "target_join": 180,
    "target_leave": 180,
    "milestone": 365,
    "event": 180,
}

# Display labels by activity type; "{target_label}" is replaced by TARGET_LABEL.
DEFAULT_ACTIVITY_TYPES = {
    "event": "Event",
    "target_start": "{target_label} started",
    "target_join": "Joined {target_label}",
    "target_leave": "Left {target_label}",
    "content_available": "Content available",
    "milestone": "Milestone reached",
    "reminder": "Reminder",
}

# Display labels by event type for the dashboard and reports; "{target_label}" is replaced
# by TARGET_LABEL. Codes without a label read as their code in words ("page_view" ->
# "Page view"). The codes are the ones the package records itself.
DEFAULT_EVENT_TYPE_LABELS = {
    "target_joined": "Joined {target_label}",
    "target_left": "Left {target_label}",
    "target_created": "{target_label} created",
    "target_started": "{target_label} started",
    "target_updated": "{target_label} updated",
    "milestone_reached": "Milestone reached",
    "user_signed_up": "Signed up",
    "user_logged_in": "Signed in",
    "user_logged_out": "Signed out",
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
    # Event type labels (merged over DEFAULT_EVENT_TYPE_LABELS): the admin dashboard
    "EVENT_TYPE_LABELS": DEFAULT_EVENT_TYPE_LABELS,
    "ASYNC_FEED": False,
    # Feed list pagination: "page" (page numbers, with count) or "cursor" (keyset)
    "FEED_PAGINATION": "page",
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
    # True: reports/saved/generate/ and generate_report() queue stored reports for Celery
    "ASYNC_REPORTS": False,
    # Database alias of every analytic read (reports, dashboard); None: the router's choice
    "READ_DATABASE": None,
    # Report and dashboard results cached in CACHES[CACHE] for CACHE_TIMEOUT seconds
    # (0 or None: off); aggregation invalidates the days it writes (docs/guide/reports.md)
    "CACHE": "default",
    "CACHE_TIMEOUT": 300,
    # Text cells starting with = + - @ tab CR get a leading ' in every CSV (formula injection)
    "CSV_ESCAPE_FORMULAS": True,
    # Real-time stream (docs/guide/realtime.md): None picks "postgres" on PostgreSQL,
    # else "memory" (one process only); "redis" needs REALTIME_REDIS_URL.
    "REALTIME_BROKER": None,
    "REALTIME_REDIS_URL": "redis://127.0.0.1:6379/0",
    "REALTIME_CHANNEL": "django_engagement_feed",
    "REALTIME_HEARTBEAT": 15,
    # Notification preferences, email, grouping, flood limit: docs/guide/preferences.md
    "NOTIFICATION_DEFAULTS": {"*": {"in_feed": True, "email": "never"}},
    "FEED_RATE_LIMIT": {},
    "FEED_GROUPING": {},
    "EMAIL_BASE_URL": "",
    "EMAIL_FROM": None,
    "SUMMARY_RECIPIENTS": [],
    "SUMMARY_DAYS": 7,
}

# Settings given as dotted paths (or lists of them) that are imported on access.
IMPORT_STRINGS = ("INGEST_PERMISSION_CLASSES", "REPORT_PERMISSION_CLASSES", "FEED_RULES")

# Dict-valued settings whose user value is merged over the default per key.
MERGED_DICTS = ("TRACK", "EVENT_TYPE_LABELS")

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


def reserved_event_types() -> frozenset[str]:
    """Codes the package records itself from signals; clients may not send them
    (unless ``ALLOW_CLIENT_RESERVED_EVENTS``). Follows ``JOIN_EVENT`` / ``LEAVE_EVENT``."""
    return frozenset(
        {
            engagement_settings.JOIN_EVENT,
            engagement_settings.LEAVE_EVENT,
            MILESTONE_EVENT,
            SIGNUP_EVENT,
            LOGIN_EVENT,
            LOGOUT_EVENT,
            TARGET_CREATED_EVENT,
            TARGET_STARTED_EVENT,
            TARGET_UPDATED_EVENT,
        }
    )


def reload_engagement_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTINGS_NAME or setting.startswith(f"{SETTINGS_NAME}_"):
        engagement_settings.reload()


setting_changed.connect(
    reload_engagement_settings, dispatch_uid="django_engagement.reload_settings"
)
