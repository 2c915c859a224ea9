"""Each system check, pinned to its exact id and message."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core import checks
from django.test import modify_settings, override_settings

from django_engagement.checks import (
    check_engagement_apps,
    check_engagement_models,
    check_engagement_settings,
)
from tests import settings as test_settings
from tests.testapp.models import Campaign

BASE = {
    "TARGET_LABEL": "campaign",
    "TARGET_GROUP_LABEL": "club",
    "TARGET_GROUP_FIELD": "club__name",
    "TARGET_PARTICIPANTS": "members",
    # The report cache's E018/W009 are pinned in tests/test_cache.py.
    "CACHE_TIMEOUT": 0,
}


# A cache shared by processes; checks only build the backend, they never connect.
SHARED_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/3",
    }
}


@pytest.fixture(autouse=True)
def shared_cache(settings):
    """The checks here are about other settings; W003 (the cache) is pinned on its own."""
    settings.CACHES = SHARED_CACHE


def run_all():
    return check_engagement_models() + check_engagement_settings()


def ids(messages):
    return [message.id for message in messages]


def test_default_test_settings_are_clean():
    assert run_all() == []


@pytest.mark.django_db
def test_registered_with_django():
    assert [m for m in checks.run_checks() if m.id.startswith("django_engagement")] == []


@override_settings(ENGAGEMENT_EVENT_MODEL="nope")
def test_event_model_bad_form():
    assert ids(check_engagement_models()) == ["django_engagement.E001"]


@override_settings(ENGAGEMENT_FEED_MODEL="testapp.Missing")
def test_feed_model_not_installed():
    [error] = check_engagement_models()
    assert error.id == "django_engagement.E001"
    assert "ENGAGEMENT_FEED_MODEL refers to 'testapp.Missing'" in error.msg


@override_settings(ENGAGEMENT_EVENT_MODEL="testapp.Course")
def test_event_model_must_subclass_abstract():
    [error] = check_engagement_models()
    assert error == checks.Error(
        "ENGAGEMENT_EVENT_MODEL model 'testapp.Course' must subclass "
        "django_engagement.models.AbstractEvent.",
        obj=error.obj,
        id="django_engagement.E001",
    )


@override_settings(ENGAGEMENT_TARGET_MODEL="hub.Fast")
def test_unknown_target_model():
    assert check_engagement_models() == [
        checks.Error(
            "ENGAGEMENT_TARGET_MODEL refers to 'hub.Fast', which is not an installed model.",
            hint="Use the form 'app_label.ModelName' and add the app to INSTALLED_APPS.",
            id="django_engagement.E002",
        )
    ]


@override_settings(ENGAGEMENT_TARGET_MODEL=None, ENGAGEMENT={"TARGET_PARTICIPANTS": "members"})
def test_target_keys_without_target_model_warn():
    assert ids(check_engagement_models()) == ["django_engagement.W002"]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("followers", "Campaign has no field named 'followers'"),
        ("club", "it does not end at the user model"),
        ("members__email__x", "'x' follows a field that is not a relation"),
    ],
)
def test_bad_participants_path(path, problem):
    with override_settings(ENGAGEMENT={**BASE, "TARGET_PARTICIPANTS": path}):
        [error] = check_engagement_models()
    assert error.id == "django_engagement.E003"
    assert error.obj is Campaign
    assert problem in error.msg


def test_participants_must_cross_many_relation():
    with override_settings(
        ENGAGEMENT_TARGET_MODEL="testapp.Club",
        ENGAGEMENT={"TARGET_PARTICIPANTS": "campaign__members", "TARGET_NAME_FIELD": "name"},
    ):
        assert check_engagement_models() == []


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("TARGET_NAME_FIELD", "title"),
        ("TARGET_GROUP_FIELD", "club"),
        ("TARGET_GROUP_FIELD", "x__y"),
    ],
)
def test_bad_name_and_group_lookups(key, path):
    with override_settings(ENGAGEMENT={**BASE, key: path}):
        [error] = check_engagement_models()
    assert error.id == "django_engagement.E004"
    assert f"ENGAGEMENT[{key!r}] = {path!r}" in error.msg


LOCMEM = "django.core.files.storage.InMemoryStorage"


def test_async_feed_without_celery(monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)
    with override_settings(ENGAGEMENT={**BASE, "ASYNC_FEED": True}):
        assert ids(check_engagement_settings()) == ["django_engagement.E005"]


def test_async_reports_without_celery(monkeypatch):
    monkeypatch.setitem(sys.modules, "celery", None)
    with override_settings(ENGAGEMENT={**BASE, "ASYNC_REPORTS": True}):
        [error] = check_engagement_settings()
    assert error.id == "django_engagement.E017"
    assert error.msg == "ENGAGEMENT ASYNC_REPORTS is True but Celery is not installed."


def test_async_reports_with_celery_is_clean():
    with override_settings(ENGAGEMENT={**BASE, "ASYNC_REPORTS": True}):
        assert check_engagement_settings() == []


def test_report_storage_that_is_no_storages_alias_warns(settings):
    settings.STORAGES = {**settings.STORAGES, "reports": {"BACKEND": LOCMEM}}
    with override_settings(ENGAGEMENT={**BASE, "REPORT_STORAGE": "archive"}):
        [warning] = check_engagement_settings()
    assert warning.id == "django_engagement.W008"
    assert warning.msg.startswith("ENGAGEMENT REPORT_STORAGE 'archive' is not a key of")
    with override_settings(ENGAGEMENT={**BASE, "REPORT_STORAGE": "reports"}):
        assert check_engagement_settings() == []


def test_s3_storage_without_boto3(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)
    with override_settings(ENGAGEMENT={**BASE, "REPORT_STORAGE": "s3"}):
        assert ids(check_engagement_settings()) == ["django_engagement.E009"]


def test_unknown_key_is_a_warning():
    with override_settings(ENGAGEMENT={**BASE, "MAX_BATCH_SZIE": 10}):
        [warning] = check_engagement_settings()
    assert warning.id == "django_engagement.W001"
    assert warning.msg == "Unknown key 'MAX_BATCH_SZIE' in settings.ENGAGEMENT; it is ignored."


def test_engagement_must_be_a_dict():
    with override_settings(ENGAGEMENT=["ENABLED"]):
        assert ids(check_engagement_settings()) == ["django_engagement.E008"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"EVENT_RETENTION_DAYS": 0},
        {"FEED_RETENTION_DEFAULT": "180"},
        {"FEED_RETENTION": {"milestone": -1}},
        {"FEED_RETENTION": 30},
    ],
)
def test_invalid_retention_values(overrides):
    with override_settings(ENGAGEMENT={**BASE, **overrides}):
        assert ids(check_engagement_settings()) == ["django_engagement.E006"]


def test_invalid_on_user_delete():
    with override_settings(ENGAGEMENT={**BASE, "ON_USER_DELETE": "keep"}):
        assert ids(check_engagement_settings()) == ["django_engagement.E007"]


@pytest.mark.parametrize(
    "overrides", [{"MAX_BATCH_SIZE": 0}, {"MAX_EVENT_SIZE": "2k"}, {"MILESTONES": [10, "x"]}]
)
def test_invalid_limits(overrides):
    with override_settings(ENGAGEMENT={**BASE, **overrides}):
        assert ids(check_engagement_settings()) == ["django_engagement.E008"]


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"page_view": {"recipients": "actor"}}, "must be a dict with an 'activity_type'"),
        ({"page_view": {"activity_type": "event", "recipients": "all"}}, "is invalid: keys are"),
        ("nowhere.rules", "No module named 'nowhere'"),
    ],
)
def test_invalid_feed_rules(rules, problem):
    with override_settings(ENGAGEMENT={**BASE, "FEED_RULES": rules}):
        [error] = check_engagement_settings()
    assert error.id == "django_engagement.E010"
    assert problem in error.msg


JOIN_RULE = {"activity_type": "target_join", "title": "You joined {target}"}


@pytest.mark.parametrize(
    ("overrides", "unrecorded"),
    [
        # The default join code, left behind after JOIN_EVENT was renamed.
        (
            {"JOIN_EVENT": "course_joined", "FEED_RULES": {"target_joined": JOIN_RULE}},
            ["target_joined"],
        ),
        ({"LEAVE_EVENT": "course_left", "FEED_RULES": {"target_left": None}}, ["target_left"]),
        # EVENT_TYPES as a list: a client code must be in it; package codes always count.
        (
            {
                "EVENT_TYPES": ["page_view"],
                "FEED_RULES": {
                    "page_view": JOIN_RULE,
                    "comment": JOIN_RULE,
                    "milestone_reached": None,
                },
            },
            ["comment"],
        ),
        # Recorded codes: none warn.
        ({"JOIN_EVENT": "course_joined", "FEED_RULES": {"course_joined": JOIN_RULE}}, []),
        ({"FEED_RULES": {"target_joined": JOIN_RULE, "comment": JOIN_RULE}}, []),
        ({"FEED_RULES": "tests.test_feed_service.custom_rules"}, []),
    ],
)
def test_feed_rules_keyed_by_codes_nothing_records(overrides, unrecorded):
    with override_settings(ENGAGEMENT={**BASE, **overrides}):
        messages = check_engagement_settings()
    assert ids(messages) == ["django_engagement.W005"] * len(unrecorded)
    assert [message.msg for message in messages] == [
        f"ENGAGEMENT FEED_RULES[{code!r}] is keyed by an event type nothing records, "
        "so the rule never applies."
        for code in unrecorded
    ]


@pytest.mark.parametrize("rate", ["abc", "10/fortnight", "x/min", 120])
def test_invalid_throttle_rate(rate):
    with override_settings(ENGAGEMENT={**BASE, "INGEST_THROTTLE_RATE": rate}):
        assert ids(check_engagement_settings()) == ["django_engagement.E011"]


@pytest.mark.parametrize("rate", ["120/min", "5/s", "1000/day", None])
def test_valid_throttle_rates(rate):
    with override_settings(ENGAGEMENT={**BASE, "INGEST_THROTTLE_RATE": rate}):
        assert check_engagement_settings() == []


def throttle_warning(backend: str, effect: str, rate: str = "120/min") -> checks.Warning:
    return checks.Warning(
        f"ENGAGEMENT INGEST_THROTTLE_RATE {rate!r} is counted in a {backend} "
        f"(CACHES['default']): {effect}.",
        hint="Point CACHES['default'] at a cache all workers share (Redis, Memcached "
        "or the database cache), or set INGEST_THROTTLE_RATE to None.",
        id="django_engagement.W003",
    )


LOCMEM_WARNING = throttle_warning(
    "LocMemCache", "each process keeps its own count, so N workers allow N times the rate"
)


@pytest.mark.parametrize(
    ("backend", "rate", "expected"),
    [
        ("locmem.LocMemCache", "120/min", [LOCMEM_WARNING]),
        (
            "dummy.DummyCache",
            "5/s",
            [
                throttle_warning(
                    "DummyCache", "it stores nothing, so the rate is never enforced", "5/s"
                )
            ],
        ),
        ("locmem.LocMemCache", None, []),
        ("redis.RedisCache", "120/min", []),
        ("db.DatabaseCache", "120/min", []),
        ("filebased.FileBasedCache", "120/min", []),
    ],
)
def test_throttle_in_a_per_process_cache_warns(settings, backend, rate, expected):
    settings.CACHES = {
        "default": {"BACKEND": f"django.core.cache.backends.{backend}", "LOCATION": "/tmp/x"}
    }
    with override_settings(ENGAGEMENT={**BASE, "INGEST_THROTTLE_RATE": rate}):
        assert check_engagement_settings() == expected


def test_bad_throttle_rate_reports_e011_only(settings):
    settings.CACHES = test_settings.CACHES
    with override_settings(ENGAGEMENT={**BASE, "INGEST_THROTTLE_RATE": "x/min"}):
        assert ids(check_engagement_settings()) == ["django_engagement.E011"]


@pytest.mark.django_db
def test_the_suite_silences_w003_for_its_single_process_cache(settings):
    """tests/settings.py counts throttles in LocMemCache: right for one pytest process."""
    settings.CACHES = test_settings.CACHES
    [warning] = [m for m in checks.run_checks() if m.id.startswith("django_engagement")]
    assert warning == LOCMEM_WARNING
    assert warning.is_silenced()


@modify_settings(INSTALLED_APPS={"remove": ["rest_framework"]})
def test_rest_framework_not_installed():
    assert check_engagement_apps() == [
        checks.Error(
            "django_engagement needs 'rest_framework' in INSTALLED_APPS: the HTTP API and its "
            "browsable pages are Django REST framework views.",
            hint="Add 'rest_framework' to INSTALLED_APPS (it is installed with django-engagement).",
            id="django_engagement.E013",
        )
    ]


@modify_settings(INSTALLED_APPS={"remove": ["django_filters"]})
def test_django_filters_not_installed():
    assert check_engagement_apps() == [
        checks.Error(
            "django_engagement needs 'django_filters' in INSTALLED_APPS: the activity feed's "
            "filters are django-filter FilterSets.",
            hint="Add 'django_filters' to INSTALLED_APPS (it is installed with django-engagement).",
            id="django_engagement.E014",
        )
    ]


E015 = checks.Error(
    "django_engagement needs 'django.contrib.contenttypes' in INSTALLED_APPS: events and feed "
    "items point at their targets through content types.",
    hint="Add 'django.contrib.contenttypes' to INSTALLED_APPS "
    "(it is installed with django-engagement).",
    id="django_engagement.E015",
)


@modify_settings(INSTALLED_APPS={"remove": ["django.contrib.contenttypes"]})
def test_contenttypes_not_installed_check():
    assert check_engagement_apps() == [E015]


def test_contenttypes_not_installed_stops_startup(tmp_path: Path):
    """Django cannot load the models without contenttypes: the app says so at startup."""
    (tmp_path / "no_contenttypes.py").write_text(
        textwrap.dedent(
            """
            SECRET_KEY = "x"
            INSTALLED_APPS = ["django.contrib.auth", "rest_framework", "django_filters",
                              "django_engagement"]
            DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
            """
        )
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "no_contenttypes",
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)]),
        },
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"django.core.exceptions.ImproperlyConfigured: {E015.msg} {E015.hint} ({E015.id})"
    )


def test_contenttypes_under_its_own_app_config_is_found(tmp_path: Path):
    """A project may list contenttypes through an AppConfig subclass of its own."""
    from django_engagement.apps import lists_app

    (tmp_path / "myconfigs.py").write_text(
        "from django.contrib.contenttypes.apps import ContentTypesConfig\n\n\n"
        "class MyContentTypes(ContentTypesConfig):\n    pass\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        assert lists_app(["myconfigs.MyContentTypes"], "django.contrib.contenttypes")
        assert not lists_app(["myconfigs", "rest_framework"], "django.contrib.contenttypes")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("myconfigs", None)
