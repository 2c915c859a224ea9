"""A host project the package has never seen: custom user, own target, swapped event model.

Used by .ci/host_smoke/run.sh against the built wheel, on SQLite and PostgreSQL.
"""

import os
from urllib.parse import urlparse

SECRET_KEY = "host-smoke"
USE_TZ = True
TIME_ZONE = "Europe/Berlin"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "urls"

_url = urlparse(os.environ.get("DATABASE_URL", "sqlite:///host.sqlite3"))
if _url.scheme.startswith("postgres"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": _url.path.lstrip("/"),
            "USER": _url.username,
            "PASSWORD": _url.password,
            "HOST": _url.hostname,
            "PORT": _url.port or 5432,
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _url.path[1:]}}

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
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

AUTH_USER_MODEL = "shop.Customer"
ENGAGEMENT_EVENT_MODEL = "shop.TrackedEvent"
ENGAGEMENT_TARGET_MODEL = "shop.Workshop"
ENGAGEMENT = {
    "TARGET_LABEL": "workshop",
    "TARGET_GROUP_LABEL": "venue",
    "TARGET_NAME_FIELD": "title",
    "TARGET_GROUP_FIELD": "venue__city",
    "TARGET_PARTICIPANTS": "attendees",
    "MILESTONES": [2],
    "WRITE_KEYS": {"wk_smoke": {"source": "web"}},  # else check W004 (SDK endpoints) warns
}

# A cache every worker process of the host shares, so the ingestion throttle holds (W003).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": os.path.join(os.path.dirname(os.path.abspath(__file__)), ".cache"),
    }
}
