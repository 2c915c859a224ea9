"""The include prefix answers an index of the endpoints; view descriptions read as text."""

from __future__ import annotations

import pytest
from django.urls import include, path

from django_engagement.api.root import ENDPOINTS
from tests.urls import urlpatterns as test_urlpatterns

pytestmark = pytest.mark.django_db

EXPECTED_PATHS = [
    "events/",
    "activity-feed/",
    "activity-feed/summary/",
    "activity-feed/mark-read/",
    "activity-feed/generate/",
    "activity-feed/preferences/",
    "reports/daily-summary/",
    "reports/active-users/",
    "reports/top/",
    "reports/export/",
    "reports/dashboard/",
    "reports/saved/",
    "reports/saved/generate/",
]

#: A second include under its own instance namespace, for the namespace test.
urlpatterns = [
    *test_urlpatterns,
    path("v2/", include("django_engagement.urls", namespace="v2")),
]


def test_root_lists_every_endpoint(api_client):
    response = api_client.get("/api/engagement/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json() == {
        p.rstrip("/"): f"http://testserver/api/engagement/{p}" for p in EXPECTED_PATHS
    }


def test_root_follows_the_instance_namespace(api_client, settings):
    settings.ROOT_URLCONF = __name__
    response = api_client.get("/v2/", HTTP_ACCEPT="application/json")
    assert response.json()["events"] == "http://testserver/v2/events/"


def test_root_is_browsable(api_client):
    response = api_client.get("/api/engagement/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert "The endpoints of the engagement API, as absolute URLs." in response.text


@pytest.mark.parametrize("relative", ["", *EXPECTED_PATHS])
def test_descriptions_have_no_rest_literals(admin_client_api, relative):
    """DRF shows view docstrings in OPTIONS and the browsable API: no ``rst`` markup."""
    response = admin_client_api.options(f"/api/engagement/{relative}")
    assert response.status_code == 200
    description = response.json()["description"]
    assert description
    assert "``" not in description


def test_endpoint_table_matches_the_urlconf():
    from django_engagement import urls

    names = {p.name for p in urls.urlpatterns} - {"engagement-api-root"}
    # The SDK wire-protocol endpoints are for SDKs, not for browsing (docs/guide/sdks.md).
    names = {name for name in names if not name.startswith("engagement-sdk-")}
    # The SSE stream is for EventSource clients (docs/guide/realtime.md), not a DRF view.
    names -= {"engagement-activity-feed-stream"}
    # Detail routes are reachable from their lists, not listed themselves; the JSON
    # 404 of non-integer ids is no endpoint; the unsubscribe links are signed per user
    # and reach users by email only.
    hidden = {
        "engagement-activity-feed-detail",
        "engagement-reports-saved-detail",
        "engagement-not-found",
        "engagement-reports-saved-not-found",
        "engagement-unsubscribe",
    }
    assert set(ENDPOINTS.values()) == names - hidden
