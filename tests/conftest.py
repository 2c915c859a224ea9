"""Shared fixtures. External servers (PostgreSQL, Redis, S3, Chromium) are optional
under a plain run and skip with a reason; ENGAGEMENT_REQUIRE_SERVICES=1 (set by
.ci/run) turns those skips into failures."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from django_engagement.conf import engagement_settings as _engagement_settings
from tests.factories import UserFactory

REQUIRE_SERVICES = os.environ.get("ENGAGEMENT_REQUIRE_SERVICES") == "1"


def require_service(available: bool, reason: str) -> None:
    """Skip the calling test when a server is missing, or fail when CI demands it."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


S3_BUCKET = "engagement-test"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-protocol server (moto) on loopback for the whole session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        ThreadedMotoServer = None
    require_service(ThreadedMotoServer is not None, "moto[server] is not installed")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(settings, s3_endpoint):
    """AWS_* settings aimed at the moto server with an empty ``S3_BUCKET``; yields a client."""
    import boto3

    settings.AWS_STORAGE_BUCKET_NAME = S3_BUCKET
    settings.AWS_S3_REGION_NAME = "us-east-1"
    settings.AWS_ACCESS_KEY_ID = "testing"
    settings.AWS_SECRET_ACCESS_KEY = "testing"
    settings.AWS_S3_ENDPOINT_URL = s3_endpoint
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url=s3_endpoint,
    )
    client.create_bucket(Bucket=S3_BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=S3_BUCKET).get("Contents", []):
        client.delete_object(Bucket=S3_BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=S3_BUCKET)


@pytest.fixture
def engagement_settings(settings):
    """Override ENGAGEMENT keys per test: ``engagement_settings.update(ENABLED=False)``."""

    class Overrides:
        def update(self, **values):
            settings.ENGAGEMENT = {**getattr(settings, "ENGAGEMENT", {}), **values}
            return _engagement_settings

        def __getattr__(self, name):
            return getattr(_engagement_settings, name)

    return Overrides()


@pytest.fixture
def no_tracking(engagement_settings):
    """The package's receivers record signups, logins and target changes; tests that
    count events exactly switch them off."""
    engagement_settings.update(TRACK=dict.fromkeys(engagement_settings.TRACK, False))


FROZEN_NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen_now(monkeypatch):
    """Retention and purge cutoffs are computed from this fixed instant, ``FROZEN_NOW``."""
    from django_engagement.services import retention

    monkeypatch.setattr(retention.timezone, "now", lambda: FROZEN_NOW)


@pytest.fixture
def eager_app():
    """A Celery app that runs tasks in-process, made current for ``shared_task``."""
    from celery import Celery
    from celery._state import get_current_app

    previous = get_current_app()
    app = Celery("engagement-tests", set_as_current=True)
    app.conf.update(task_always_eager=True)
    yield app
    previous.set_current()


@pytest.fixture
def user_factory(db):
    """``UserFactory`` with its numbering restarted: each test's users are user1, user2, ..."""
    UserFactory.reset_sequence(1)
    return UserFactory


@pytest.fixture
def user(user_factory):
    return user_factory(username="alice")


@pytest.fixture
def other_user(user_factory):
    return user_factory(username="bob")


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def auth_client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def admin_client_api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def campaign(db):
    from tests.testapp.models import Campaign, Club

    return Campaign.objects.create(name="Great Lent", club=Club.objects.create(name="St. Mary"))


@pytest.fixture
def expired_items(user, no_tracking):
    """Five milestone items 400 days old (past every retention) and one recent one."""
    from django_engagement.models import get_feed_model

    Feed = get_feed_model()
    old = datetime.now(UTC) - timedelta(days=400)
    return Feed.objects.bulk_create(
        [
            Feed(user=user, activity_type="milestone", title=f"m{n}", created_at=old, data={"n": n})
            for n in range(5)
        ]
        + [Feed(user=user, activity_type="milestone", title="recent")]
    )


@pytest.fixture
def fresh_throttle():
    """Fresh throttle history (the default cache) before and after the test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def openapi() -> dict:
    """The package's OpenAPI schema as drf-spectacular generates it, as JSON."""
    import json

    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema))
