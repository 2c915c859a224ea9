"""The example project is wired as documented: checks, migrations, URLs, API."""

from __future__ import annotations

import base64
from datetime import date

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from django_engagement.conf import engagement_settings
from django_engagement.models import get_feed_model, get_target_model
from hub.models import Church, Fast, Profile


def test_engagement_is_configured_for_fasts():
    assert get_target_model() is Fast
    assert engagement_settings.TARGET_LABEL == "fast"
    assert engagement_settings.TARGET_GROUP_LABEL == "church"
    assert engagement_settings.TARGET_PARTICIPANTS == "profiles__user"


def test_joining_a_fast_shows_the_original_vocabulary_in_the_feed(db, client):
    """The project's ENGAGEMENT restores the original app's activity types and labels."""
    user = get_user_model().objects.create_user("ann", password="pw")
    fast = Fast.objects.create(
        name="Advent",
        church=Church.objects.create(name="St. Mary"),
        starts_on=date(2026, 12, 1),
        ends_on=date(2026, 12, 24),
    )
    fast.profiles.add(Profile.objects.create(user=user))
    client.login(username="ann", password="pw")
    [item] = client.get("/api/engagement/activity-feed/").json()["results"]
    assert (item["activity_type"], item["activity_type_display"], item["title"]) == (
        "fast_join",
        "Joined Fast",
        "You joined Advent",
    )
    assert engagement_settings.FEED_RETENTION["devotional_reminder"] == 30


def test_system_checks_pass(db):
    call_command("check", fail_level="WARNING")


def test_no_missing_migrations(db):
    call_command("makemigrations", check=True, dry_run=True, verbosity=0)


def test_root_redirects_to_admin(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_favicon_is_served(client):
    """Browsers request /favicon.ico on every site; a 404 was the one console error."""
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "max-age=86400, public"
    assert response.content.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
    assert client.post("/favicon.ico").status_code == 405


def test_admin_answers_for_the_demo_superuser(seeded, client):
    client.login(username="admin", password="admin")
    assert client.get("/admin/").status_code == 200


def test_openapi_schema_is_served_offline(client):
    pytest.importorskip("drf_spectacular")
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/engagement/events/" in paths
    assert "/api/engagement/activity-feed/" in paths


def test_activity_feed_answers_with_the_users_items(seeded, client):
    user = get_user_model().objects.get(username="user001")
    client.login(username="user001", password="demo")
    response = client.get("/api/engagement/activity-feed/")
    assert response.status_code == 200
    assert response.json()["count"] == get_feed_model().objects.filter(user=user).count()


def test_activity_feed_basic_auth(seeded, client):
    import base64

    token = base64.b64encode(b"user001:demo").decode()
    response = client.get("/api/engagement/activity-feed/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 200


def test_dashboard_report_answers_for_admin(seeded, client):
    client.login(username="admin", password="admin")
    response = client.get("/api/engagement/reports/dashboard/?days=30")
    assert response.status_code == 200
    client.logout()
    assert client.get("/api/engagement/reports/dashboard/").status_code in (401, 403)


def test_default_cache_is_shared_by_the_processes_of_one_machine(settings):
    """The ingestion throttle counts here; LocMemCache would count per process (W003)."""
    assert settings.CACHES["default"] == {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(settings.BASE_DIR / ".cache"),
    }


def test_celery_redelivers_lost_fan_out_within_minutes(settings):
    """A dead worker's message comes back after 15 minutes, not Redis' default hour,
    and beat runs the outbox sweeper (docs/reliability.md)."""
    pytest.importorskip("celery")
    from django_engagement import tasks

    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS == {"visibility_timeout": 900}
    [entry] = settings.CELERY_BEAT_SCHEDULE.values()
    assert entry["task"] == tasks.flush_pending_fan_out_task.name
    assert entry["schedule"] == 300.0


@pytest.mark.parametrize("credentials", ["ann\x00:pw", "ann:p\x00w"])
def test_basic_auth_with_a_nul_is_refused_not_a_500(db, client, credentials):
    """PostgreSQL cannot compare a NUL; the project's Basic auth refuses it first.

    A 403 rather than a 401: SessionAuthentication comes first and has no
    ``WWW-Authenticate`` scheme (DRF's rule).
    """
    get_user_model().objects.create_user("ann", password="pw")
    token = base64.b64encode(credentials.encode()).decode()
    response = client.get("/api/engagement/activity-feed/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid username/password."}


def test_the_schema_names_the_project_basic_auth_basicauth():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert schema["components"]["securitySchemes"]["basicAuth"] == {
        "type": "http",
        "scheme": "basic",
    }
