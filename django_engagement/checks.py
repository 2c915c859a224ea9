"""System checks that catch misconfiguration at ``manage.py check`` time.

Ids: ``django_engagement.E001``-``E018`` (errors) and ``W001``-``W009`` (warnings);
docs/reference/checks.md lists each with its fix.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured

from .conf import (
    DEFAULTS,
    MODEL_SETTINGS,
    SETTINGS_NAME,
    engagement_settings,
    reserved_event_types,
)

ON_USER_DELETE_CHOICES = ("delete", "anonymize")


# The package's modules are imported inside the check functions: EngagementConfig.__init__
# imports this module (missing_app_error) before any model can be loaded.


def _model_setting_errors() -> list[checks.CheckMessage]:
    from .models import AbstractActivityFeedItem, AbstractEvent  # after the app registry

    errors: list[checks.CheckMessage] = []
    bases = {"EVENT_MODEL": AbstractEvent, "FEED_MODEL": AbstractActivityFeedItem}
    for attr, base in bases.items():
        setting_name = MODEL_SETTINGS[attr][0]
        value = getattr(engagement_settings, attr)
        try:
            model = apps.get_model(value)
        except (ValueError, LookupError):
            errors.append(
                checks.Error(
                    f"{setting_name} refers to {value!r}, which is not an installed model.",
                    hint="Use the form 'app_label.ModelName' and add the app to INSTALLED_APPS.",
                    id="django_engagement.E001",
                )
            )
            continue
        if not issubclass(model, base):
            errors.append(
                checks.Error(
                    f"{setting_name} model {value!r} must subclass "
                    f"django_engagement.models.{base.__name__}.",
                    obj=model,
                    id="django_engagement.E001",
                )
            )
    return errors


def _target_errors() -> list[checks.CheckMessage]:
    from .models import resolve_lookup  # after the app registry

    value = engagement_settings.TARGET_MODEL
    target_keys = ("TARGET_PARTICIPANTS", "TARGET_GROUP_FIELD")
    if not value:
        configured = [key for key in target_keys if engagement_settings.user_settings.get(key)]
        if configured:
            return [
                checks.Warning(
                    f"ENGAGEMENT sets {', '.join(configured)} "
                    "but ENGAGEMENT_TARGET_MODEL is unset.",
                    hint="Set ENGAGEMENT_TARGET_MODEL = 'app_label.ModelName' or drop those keys.",
                    id="django_engagement.W002",
                )
            ]
        return []
    try:
        target = apps.get_model(value)
    except (ValueError, LookupError):
        return [
            checks.Error(
                f"ENGAGEMENT_TARGET_MODEL refers to {value!r}, which is not an installed model.",
                hint="Use the form 'app_label.ModelName' and add the app to INSTALLED_APPS.",
                id="django_engagement.E002",
            )
        ]

    errors: list[checks.CheckMessage] = []
    participants = engagement_settings.TARGET_PARTICIPANTS
    if participants:
        try:
            fields = resolve_lookup(target, participants)
        except FieldDoesNotExist as exc:
            fields, problem = [], str(exc)
        else:
            problem = ""
            if fields[-1].related_model is not get_user_model():
                problem = "it does not end at the user model"
            elif not any(field.many_to_many or field.one_to_many for field in fields):
                problem = "it does not cross a many-valued relation"
        if problem:
            errors.append(
                checks.Error(
                    f"ENGAGEMENT['TARGET_PARTICIPANTS'] = {participants!r} is not a valid "
                    f"lookup from {target._meta.label} to its users: {problem}.",
                    hint="Give the path from the target to the users, e.g. 'profiles__user'.",
                    obj=target,
                    id="django_engagement.E003",
                )
            )
    for key in ("TARGET_NAME_FIELD", "TARGET_GROUP_FIELD"):
        path = getattr(engagement_settings, key)
        if not path:
            continue
        try:
            fields = resolve_lookup(target, path)
            problem = "it ends at a relation, not a value" if fields[-1].is_relation else ""
        except FieldDoesNotExist as exc:
            problem = str(exc)
        if problem:
            errors.append(
                checks.Error(
                    f"ENGAGEMENT[{key!r}] = {path!r} is not a valid lookup on "
                    f"{target._meta.label}: {problem}.",
                    hint="Name a field of the target or follow relations with '__', "
                    "e.g. 'school__name'.",
                    obj=target,
                    id="django_engagement.E004",
                )
            )
    return errors


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_valid_rate(rate: Any) -> bool:
    """DRF's throttle syntax: ``<requests>/<period>``, period starting with s, m, h or d."""
    if not isinstance(rate, str) or rate.count("/") != 1:
        return False
    requests, period = rate.split("/")
    return requests.isdigit() and period[:1] in ("s", "m", "h", "d")


def _value_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    retention = {
        "EVENT_RETENTION_DAYS": engagement_settings.EVENT_RETENTION_DAYS,
        "FEED_RETENTION_DEFAULT": engagement_settings.FEED_RETENTION_DEFAULT,
    }
    feed_retention = engagement_settings.FEED_RETENTION
    if isinstance(feed_retention, dict):
        retention.update({f"FEED_RETENTION[{k!r}]": v for k, v in feed_retention.items()})
    else:
        retention["FEED_RETENTION"] = None  # not a dict: reported like a bad value
    for name, value in retention.items():
        if not _is_positive_int(value):
            errors.append(
                checks.Error(
                    f"ENGAGEMENT {name} must be a positive number of days, got {value!r}.",
                    hint="FEED_RETENTION is a dict of activity_type -> days.",
                    id="django_engagement.E006",
                )
            )
    if engagement_settings.ON_USER_DELETE not in ON_USER_DELETE_CHOICES:
        errors.append(
            checks.Error(
                f"ENGAGEMENT ON_USER_DELETE must be one of {', '.join(ON_USER_DELETE_CHOICES)}, "
                f"got {engagement_settings.ON_USER_DELETE!r}.",
                id="django_engagement.E007",
            )
        )
    for key in ("MAX_EVENT_SIZE", "MAX_BATCH_SIZE"):
        value = getattr(engagement_settings, key)
        if not _is_positive_int(value):
            errors.append(
                checks.Error(
                    f"ENGAGEMENT {key} must be a positive integer, got {value!r}.",
                    id="django_engagement.E008",
                )
            )
    rate = engagement_settings.INGEST_THROTTLE_RATE
    if rate is not None and not _is_valid_rate(rate):
        errors.append(
            checks.Error(
                "ENGAGEMENT INGEST_THROTTLE_RATE must look like '120/min' or be None, "
                f"got {rate!r}.",
                hint="Use <number>/<s|sec|m|min|h|hour|d|day>.",
                id="django_engagement.E011",
            )
        )
    milestones = engagement_settings.MILESTONES
    if not isinstance(milestones, list | tuple) or not all(map(_is_positive_int, milestones)):
        errors.append(
            checks.Error(
                f"ENGAGEMENT MILESTONES must be a list of positive integers, got {milestones!r}.",
                id="django_engagement.E008",
            )
        )
    return errors


def _feed_rule_errors() -> list[checks.CheckMessage]:
    from .services.feed import feed_rule_table  # after the app registry

    try:
        feed_rule_table()
    except (ImportError, ImproperlyConfigured) as exc:
        return [
            checks.Error(
                f"ENGAGEMENT FEED_RULES is invalid: {exc}",
                hint="Give a dict of event_type -> rule dict, or a dotted path to a callable.",
                id="django_engagement.E010",
            )
        ]
    return []


def _grouping_errors() -> list[checks.CheckMessage]:
    from .services.grouping import flood_and_grouping_tables  # after the app registry

    try:
        flood_and_grouping_tables()
    except ImproperlyConfigured as exc:
        return [
            checks.Error(
                str(exc),
                hint='E.g. FEED_GROUPING = {"member_joined": {"window": 3600}} and '
                'FEED_RATE_LIMIT = {"*": 30, "reply": {"per_minute": 5, "mode": "fold"}}.',
                id="django_engagement.E016",
            )
        ]
    return []


def _unrecorded_feed_rule_warnings() -> list[checks.CheckMessage]:
    """Warn about ``FEED_RULES`` keys that no recorded event can match.

    A key is recorded when the package records it itself (``JOIN_EVENT`` and
    ``LEAVE_EVENT`` as set, milestones, logins, target lifecycle), or when
    ``EVENT_TYPES`` is a list holding it. With ``EVENT_TYPES = None`` any code may
    come in, so only the package's default join/leave codes are flagged once those
    settings name other codes: the usual leftover of renaming them.
    """
    # The raw value: a dotted path is E010's to import (and report), not this check's.
    setting = engagement_settings.user_settings.get("FEED_RULES")
    if not isinstance(setting, dict):
        return []
    recorded = reserved_event_types()
    allowed = engagement_settings.EVENT_TYPES
    if isinstance(allowed, list | tuple):
        unrecorded = [key for key in setting if key not in recorded and key not in allowed]
    else:
        stale = {DEFAULTS["JOIN_EVENT"], DEFAULTS["LEAVE_EVENT"]} - recorded
        unrecorded = [key for key in setting if key in stale]
    return [
        checks.Warning(
            f"ENGAGEMENT FEED_RULES[{event_type!r}] is keyed by an event type nothing "
            "records, so the rule never applies.",
            hint=f"Key it by an event type that is recorded: JOIN_EVENT is "
            f"{engagement_settings.JOIN_EVENT!r}, LEAVE_EVENT "
            f"{engagement_settings.LEAVE_EVENT!r}; client codes must be in EVENT_TYPES.",
            id="django_engagement.W005",
        )
        for event_type in unrecorded
    ]


def _optional_dependency_errors() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    if engagement_settings.ASYNC_FEED and importlib.util.find_spec("celery") is None:
        errors.append(
            checks.Error(
                "ENGAGEMENT ASYNC_FEED is True but Celery is not installed.",
                hint="pip install 'django-engagement[celery]' or set ASYNC_FEED to False.",
                id="django_engagement.E005",
            )
        )
    if engagement_settings.ASYNC_REPORTS and importlib.util.find_spec("celery") is None:
        errors.append(
            checks.Error(
                "ENGAGEMENT ASYNC_REPORTS is True but Celery is not installed.",
                hint="pip install 'django-engagement[celery]' or set ASYNC_REPORTS to False "
                "to generate stored reports in the request.",
                id="django_engagement.E017",
            )
        )
    storage = engagement_settings.REPORT_STORAGE
    if storage == "s3" and importlib.util.find_spec("boto3") is None:
        errors.append(
            checks.Error(
                "ENGAGEMENT REPORT_STORAGE is 's3' but boto3 is not installed.",
                hint="pip install 'django-engagement[s3]'.",
                id="django_engagement.E009",
            )
        )
    elif storage and storage not in settings.STORAGES:
        errors.append(
            checks.Warning(
                f"ENGAGEMENT REPORT_STORAGE {storage!r} is not a key of settings.STORAGES: "
                "stored engagement reports and report uploads will fail.",
                hint=f"Add STORAGES[{storage!r}] (e.g. django-storages' S3 backend) or set "
                "REPORT_STORAGE to None.",
                id="django_engagement.W008",
            )
        )
    return errors


def _read_database_errors() -> list[checks.CheckMessage]:
    alias = engagement_settings.READ_DATABASE
    if alias is None or alias in settings.DATABASES:
        return []
    return [
        checks.Error(
            f"ENGAGEMENT READ_DATABASE {alias!r} is not an alias in DATABASES.",
            hint=f"Add DATABASES[{alias!r}] (e.g. your read replica) or set READ_DATABASE to None.",
            id="django_engagement.E012",
        )
    ]


def _throttle_cache_warnings() -> list[checks.CheckMessage]:
    """Warn when the ingestion throttle counts in a cache each process keeps to itself.

    With LocMemCache every worker has its own history (4 workers let a client through
    about 4 x the rate); DummyCache stores nothing, so the rate is never enforced.
    """
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache

    from .api.throttling import throttle_cache  # after the app registry

    rate = engagement_settings.INGEST_THROTTLE_RATE
    if rate is None or not _is_valid_rate(rate):
        return []
    cache = throttle_cache()
    if isinstance(cache, LocMemCache):
        effect = "each process keeps its own count, so N workers allow N times the rate"
    elif isinstance(cache, DummyCache):
        effect = "it stores nothing, so the rate is never enforced"
    else:
        return []
    return [
        checks.Warning(
            f"ENGAGEMENT INGEST_THROTTLE_RATE {rate!r} is counted in a "
            f"{type(cache).__name__} (CACHES['default']): {effect}.",
            hint="Point CACHES['default'] at a cache all workers share (Redis, Memcached "
            "or the database cache), or set INGEST_THROTTLE_RATE to None.",
            id="django_engagement.W003",
        )
    ]


def _unknown_key_warnings() -> list[checks.CheckMessage]:
    user_settings = getattr(settings, SETTINGS_NAME, None)
    if user_settings is None:
        return []
    if not isinstance(user_settings, dict):
        return [
            checks.Error(
                f"{SETTINGS_NAME} must be a dict, got {type(user_settings).__name__}.",
                id="django_engagement.E008",
            )
        ]
    unknown = sorted(set(user_settings) - set(DEFAULTS))
    return [
        checks.Warning(
            f"Unknown key {key!r} in settings.{SETTINGS_NAME}; it is ignored.",
            hint=f"Valid keys: {', '.join(sorted(DEFAULTS))}.",
            id="django_engagement.W001",
        )
        for key in unknown
    ]


def _sdk_endpoints_routed() -> bool:
    """Whether the root URLconf reaches this package's SDK endpoints."""
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("django_engagement:engagement-sdk-segment-batch")
    except NoReverseMatch:
        return False
    except Exception:  # a broken URLconf is Django's own check to report
        return False
    return True


@checks.register(checks.Tags.urls)
def check_sdk_write_keys(app_configs=None, **kwargs: Any) -> list[checks.CheckMessage]:
    """SDK endpoints routed without ``WRITE_KEYS`` refuse every request (401)."""
    keys = engagement_settings.WRITE_KEYS
    if keys and isinstance(keys, dict):
        return []
    if not _sdk_endpoints_routed():
        return []
    return [
        checks.Warning(
            "The SDK endpoints (segment/, posthog/) are routed but ENGAGEMENT['WRITE_KEYS'] "
            "is empty: they answer 401 to every request.",
            hint='Set WRITE_KEYS, e.g. {"wk_abc": {"source": "web"}} (docs/guide/sdks.md).',
            id="django_engagement.W004",
        )
    ]


@checks.register(checks.Tags.models)
def check_engagement_models(app_configs=None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Swappable and target model settings point at usable models."""
    if app_configs is not None and not any(
        config.name == "django_engagement" for config in app_configs
    ):
        return []
    return _model_setting_errors() + _target_errors()


@checks.register()
def check_engagement_settings(app_configs=None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The ENGAGEMENT dict has known keys and sensible values."""
    warnings = _unknown_key_warnings()
    if any(message.id == "django_engagement.E008" for message in warnings):
        return warnings
    return (
        warnings
        + _value_errors()
        + _feed_rule_errors()
        + _grouping_errors()
        + _unrecorded_feed_rule_warnings()
        + _optional_dependency_errors()
        + _read_database_errors()
        + _throttle_cache_warnings()
        + _report_cache_messages()
    )


def _report_cache_messages() -> list[checks.CheckMessage]:
    """E018: ``CACHE`` names no cache or ``CACHE_TIMEOUT`` is no number of seconds;
    W009: results are cached per process, where aggregation run elsewhere cannot
    invalidate them."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    timeout, alias = engagement_settings.CACHE_TIMEOUT, engagement_settings.CACHE
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
    ):
        return [
            checks.Error(
                f"ENGAGEMENT CACHE_TIMEOUT must be a number of seconds or None, got {timeout!r}.",
                hint="0 or None turns the report cache off.",
                id="django_engagement.E018",
            )
        ]
    if not timeout:
        return []
    if not isinstance(alias, str) or alias not in settings.CACHES:
        return [
            checks.Error(
                f"ENGAGEMENT CACHE {alias!r} is not an alias of settings.CACHES.",
                hint=f"Use one of: {', '.join(sorted(settings.CACHES))}.",
                id="django_engagement.E018",
            )
        ]
    if isinstance(caches[alias], LocMemCache):
        return [
            checks.Warning(
                f"ENGAGEMENT caches reports in a LocMemCache (CACHES[{alias!r}]): each "
                "process keeps its own copy, which aggregation run in another process "
                "(a cron job, a Celery worker) cannot invalidate.",
                hint="Point CACHE at a cache all processes share (Redis, Memcached), or set "
                "CACHE_TIMEOUT to a few seconds or 0.",
                id="django_engagement.W009",
            )
        ]
    return []


# App label -> (id, why the package needs it). Without contenttypes Django cannot even load
# the models, so E015 is raised by EngagementConfig at startup (see apps.py); the check
# still reports it for registries built without that guard (tests, custom runners).
REQUIRED_APPS = {
    "rest_framework": (
        "django_engagement.E013",
        "the HTTP API and its browsable pages are Django REST framework views",
    ),
    "django_filters": (
        "django_engagement.E014",
        "the activity feed's filters are django-filter FilterSets",
    ),
    "django.contrib.contenttypes": (
        "django_engagement.E015",
        "events and feed items point at their targets through content types",
    ),
}


def missing_app_error(app: str) -> checks.Error:
    """The E013-E015 error for one missing app; also the message of the startup guard."""
    error_id, reason = REQUIRED_APPS[app]
    return checks.Error(
        f"django_engagement needs {app!r} in INSTALLED_APPS: {reason}.",
        hint=f"Add {app!r} to INSTALLED_APPS (it is installed with django-engagement).",
        id=error_id,
    )


@checks.register()
def check_engagement_apps(app_configs=None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The apps the package builds on are installed (else the API answers 500s)."""
    return [missing_app_error(app) for app in REQUIRED_APPS if not apps.is_installed(app)]


def _realtime_broker_problem() -> str | None:
    """Why activity-feed/stream/ would get no notes from the configured broker, or None."""
    # Local: services import the models, which cannot load when checks is imported.
    from .services.realtime import BROKERS, POSTGRES, REDIS, broker_name, feed_connection

    configured = engagement_settings.REALTIME_BROKER
    if configured is not None and configured not in BROKERS:
        return f"REALTIME_BROKER is {configured!r}, not one of {', '.join(BROKERS)} or None"
    name = broker_name()
    if name == POSTGRES:
        if feed_connection().vendor != "postgresql":
            return "REALTIME_BROKER is 'postgres' but the feed's database is not PostgreSQL"
        if importlib.util.find_spec("psycopg") is None:
            return "REALTIME_BROKER 'postgres' listens with psycopg 3, which is not installed"
    if name == REDIS and importlib.util.find_spec("redis") is None:
        return "REALTIME_BROKER is 'redis' but the redis package is not installed"
    return None


@checks.register()
def check_realtime_broker(app_configs=None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The real-time stream's broker can work (docs/guide/realtime.md)."""
    problem = _realtime_broker_problem()
    if problem is None:
        return []
    return [
        checks.Warning(
            f"ENGAGEMENT {problem}: activity-feed/stream/ cannot receive feed changes.",
            hint="Set REALTIME_BROKER to None (PostgreSQL NOTIFY on PostgreSQL, in-process "
            "otherwise), 'redis' with pip install 'django-engagement[realtime]', or 'memory'.",
            id="django_engagement.W006",
        )
    ]
