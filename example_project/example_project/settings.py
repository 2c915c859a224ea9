"""Settings of the example project.

Every value that differs between machines comes from the environment or from an
optional ``example_project/.env`` file (see ``.env.example``); the real
environment wins over the file. The ``ENGAGEMENT_*`` variables are mapped into
the ``ENGAGEMENT`` dict the package reads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

SECRET_KEY = env("SECRET_KEY", default="django-insecure-example-project-only")
DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}

# The ingestion throttle (INGEST_THROTTLE_RATE) counts in this cache, so every worker
# must share it: Redis in production (CACHE_URL=redis://host:6379/1). The default, a
# file cache, is shared by the processes of one machine; LocMemCache would not be (W003).
CACHES = {"default": env.cache("CACHE_URL", default=f"filecache://{BASE_DIR / '.cache'}")}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "django_engagement",
    "hub",
]
HAS_SPECTACULAR = importlib.util.find_spec("drf_spectacular") is not None
if HAS_SPECTACULAR:
    INSTALLED_APPS.append("drf_spectacular")
    # Swagger UI's JavaScript and CSS as static files of this project, not from a CDN.
    INSTALLED_APPS.append("drf_spectacular_sidecar")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "example_project.authentication.BasicAuthenticationWithoutNul",
    ],
}
if HAS_SPECTACULAR:
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
    SPECTACULAR_SETTINGS = {
        "TITLE": "django-engagement example API",
        "DESCRIPTION": "Event ingestion, activity feed and reports of the example project.",
        "VERSION": "1.0.0",
        "SERVE_INCLUDE_SCHEMA": False,
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }

# django-engagement: the fasts users join are the targets, grouped by church.
ENGAGEMENT_TARGET_MODEL = "hub.Fast"
ENGAGEMENT = {
    "ENABLED": env.bool("ENGAGEMENT_ENABLED", default=True),
    "EVENT_RETENTION_DAYS": env.int("ENGAGEMENT_RETENTION_DAYS", default=180),
    "MAX_EVENT_SIZE": env.int("ENGAGEMENT_MAX_EVENT_SIZE", default=2048),
    "ASYNC_FEED": env.bool("ENGAGEMENT_ASYNC_FEED", default=False),
    # Per client; an empty value switches throttling off (.ci/schemathesis.sh raises it).
    "INGEST_THROTTLE_RATE": env("ENGAGEMENT_INGEST_THROTTLE_RATE", default="120/min") or None,
    "TARGET_LABEL": "fast",
    "TARGET_GROUP_LABEL": "church",
    "TARGET_NAME_FIELD": "name",
    "TARGET_GROUP_FIELD": "church__name",
    "TARGET_PARTICIPANTS": "profiles__user",
    "JOIN_EVENT": "fast_joined",
    "LEAVE_EVENT": "fast_left",
    # Dashboard labels of the project's own event codes (merged over the package's).
    "EVENT_TYPE_LABELS": {
        "fast_joined": "Joined {target_label}",
        "fast_left": "Left {target_label}",
        "devotional_viewed": "Read a devotional",
        "prayer_request_created": "Prayer request",
        "anonymous_page_view": "Page view (signed out)",
    },
    # The original app's feed vocabulary: its activity types, labels and retention table,
    # and the rules that give the join, leave and start items those types.
    "ACTIVITY_TYPES": {
        "event": "Event",
        "fast_start": "Fast Started",
        "fast_join": "Joined Fast",
        "fast_leave": "Left Fast",
        "devotional_available": "Devotional Available",
        "milestone": "Milestone Reached",
        "fast_reminder": "Fast Reminder",
        "devotional_reminder": "Devotional Reminder",
    },
    "FEED_RETENTION": {
        "fast_reminder": 30,
        "devotional_reminder": 30,
        "fast_start": 90,
        "fast_join": 180,
        "fast_leave": 180,
        "devotional_available": 90,
        "milestone": 365,
        "event": 180,
    },
    "FEED_RULES": {
        "fast_joined": {"activity_type": "fast_join", "title": "You joined {target}"},
        "fast_left": {"activity_type": "fast_leave", "title": "You left {target}"},
        "target_created": {
            "activity_type": "fast_start",
            "recipients": "participants",
            "title": "{target} has started",
        },
        "target_started": {
            "activity_type": "fast_start",
            "recipients": "participants",
            "title": "{target} has started",
        },
    },
    # Segment/RudderStack/PostHog SDKs (docs/guide/sdks.md): point them at
    # /api/engagement/segment or /api/engagement/posthog with this key.
    "WRITE_KEYS": {env("ENGAGEMENT_WRITE_KEY", default="wk_demo"): {"source": "web"}},
}

# Celery (example_project/celery.py) is only used when ENGAGEMENT_ASYNC_FEED is on.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Redis redelivers a message whose worker died after visibility_timeout (default: one
# hour). It must exceed the longest task's runtime and retry countdown (retry_backoff
# waits up to 600 s), or a running task is handed to a second worker and runs twice:
# safe for the package's idempotent tasks, only wasted work. See docs/reliability.md.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
}
# `celery -A example_project beat`: the outbox sweeper finishes fan-outs that the broker
# or a killed worker lost (numbers are seconds, so settings need no Celery import).
CELERY_BEAT_SCHEDULE = {
    "engagement-flush-pending-fan-out": {
        "task": "django_engagement.tasks.flush_pending_fan_out_task",
        "schedule": 300.0,
        "kwargs": {"older_than_seconds": 60},
    },
}

# S3 for `engagement_report --upload-s3` (the `[s3]` extra); unset means no upload.
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default=None)
AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
AWS_ACCESS_KEY_ID = env("AWS_ACCESS_KEY_ID", default=None)
AWS_SECRET_ACCESS_KEY = env("AWS_SECRET_ACCESS_KEY", default=None)
AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
