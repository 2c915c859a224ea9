"""Test settings: SQLite in memory by default, any database through DATABASE_URL."""

import importlib.util

import environ

env = environ.Env()

SECRET_KEY = "django-engagement-tests"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite://:memory:")}
# ENGAGEMENT_REPLICA_URL: a hot standby of DATABASE_URL (tests/test_replica.py). As a test
# mirror Django creates no database on it; it reads the replicated test database.
if env("ENGAGEMENT_REPLICA_URL", default=None):
    DATABASES["replica"] = {**env.db("ENGAGEMENT_REPLICA_URL"), "TEST": {"MIRROR": "default"}}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # ENGAGEMENT_SQLITE_TEST_NAME: a test database file other threads and processes can open.
    # NAME follows it, so nothing (pytest-django's live_server among them) takes the
    # connection for in-memory and shares one sqlite3 connection between threads.
    if test_file := env("ENGAGEMENT_SQLITE_TEST_NAME", default=None):
        DATABASES["default"]["NAME"] = test_file
    DATABASES["default"]["TEST"] = {"NAME": test_file}

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
    "tests.testapp",
]

AUTH_USER_MODEL = "testapp.User"
ENGAGEMENT_TARGET_MODEL = "testapp.Campaign"
ENGAGEMENT = {
    "TARGET_LABEL": "campaign",
    "TARGET_GROUP_LABEL": "club",
    "TARGET_NAME_FIELD": "name",
    "TARGET_GROUP_FIELD": "club__name",
    "TARGET_PARTICIPANTS": "members",
    # The SDK endpoints are routed (tests/urls.py); without a key check W004 warns.
    "WRITE_KEYS": {"wk_test": {"source": "web"}},
    # Cached results would outlive each test's rolled-back data (and a shared CACHE_URL
    # cache, the run): off here, on in tests/test_cache.py.
    "CACHE_TIMEOUT": 0,
}

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"
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
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# CACHE_URL (django-environ) runs the suite on a shared cache, e.g. redis://127.0.0.1:6379/3.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# The suite is one process, so LocMemCache counts the ingestion throttle correctly here;
# tests/test_checks.py pins W003 and tests/test_throttle_processes.py the shared cache.
SILENCED_SYSTEM_CHECKS = ["django_engagement.W003"]
REST_FRAMEWORK = {"TEST_REQUEST_DEFAULT_FORMAT": "json"}
if importlib.util.find_spec("drf_spectacular"):
    # As a host would: set before the views are imported, so @extend_schema binds it.
    REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
