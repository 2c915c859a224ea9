"""Shared fixtures. External servers (PostgreSQL, Redis, S3, Chromium) are optional
under a plain run and skip with a reason; ENGAGEMENT_REQUIRE_SERVICES=1 (set by
.ci/run) turns those skips into failures."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from django_engagement.conf import engagement_settings as _engagement_settings

REQUIRE_SERVICES = os.environ.get("ENGAGEMENT_REQUIRE_SERVICES") == "1"


def require_service(available: bool, reason: str) -> None:
    """Skip the calling test when a server is missing, or fail when CI demands it."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


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
def user_factory(db, django_user_model):
    counter = iter(range(1, 1_000_000))

    def make(**fields):
        number = next(counter)
        fields.setdefault("username", f"user{number}")
        fields.setdefault("email", f"user{number}@example.com")
        return django_user_model.objects.create_user(password="pw", **fields)

    return make


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
