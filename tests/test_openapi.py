"""The OpenAPI schema (drf-spectacular) lists every endpoint and matches real responses.

Each test sends a real request and validates the JSON answer with ``jsonschema``
against the schema drf-spectacular generates for that path, method and status.
Objects get ``additionalProperties: false``, so an undocumented key fails too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.utils import timezone

from django_engagement.models import get_event_model, get_feed_model
from tests.testapp.models import Course

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("drf_spectacular")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

PREFIX = "/api/engagement/"
SPEC_ENDPOINTS = {
    ("", "get"),
    ("events/", "post"),
    ("activity-feed/", "get"),
    ("activity-feed/{id}/", "get"),
    ("activity-feed/summary/", "get"),
    ("activity-feed/mark-read/", "post"),
    ("activity-feed/generate/", "post"),
    ("reports/daily-summary/", "get"),
    ("reports/active-users/", "get"),
    ("reports/top/", "get"),
    ("reports/export/", "get"),
    ("reports/dashboard/", "get"),
}
# Notification preferences (docs/guide/preferences.md).
SPEC_ENDPOINTS |= {("activity-feed/preferences/", method) for method in ("get", "put", "patch")}
# Stored reports (docs/guide/reports.md).
SPEC_ENDPOINTS |= {
    ("reports/saved/", "get"),
    ("reports/saved/{id}/", "get"),
    ("reports/saved/generate/", "post"),
}


@pytest.fixture(autouse=True)
def clear_cache():
    cache.clear()


def strict(node: Any, components: dict[str, Any]) -> Any:
    """Inline ``$ref``s, turn OpenAPI 3.0 ``nullable`` into JSON Schema, close objects."""
    if isinstance(node, list):
        return [strict(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return strict(components[node["$ref"].rsplit("/", 1)[-1]], components)
    out = {key: strict(value, components) for key, value in node.items() if key != "nullable"}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def operation(openapi: dict, path: str, method: str) -> dict:
    return openapi["paths"][PREFIX + path][method]


def assert_matches(openapi: dict, path: str, method: str, response: Any) -> None:
    """The response's status is documented and its body matches the documented schema."""
    documented = operation(openapi, path, method)["responses"]
    status = str(response.status_code)
    assert status in documented, f"{method.upper()} {path}: {status} is not documented"
    content = documented[status].get("content")
    if content is None:
        assert response.content == b""
        return
    schema = strict(content["application/json"]["schema"], openapi["components"]["schemas"])
    jsonschema.validate(
        response.json(), schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_request_matches(openapi: dict, path: str, method: str, body: Any) -> None:
    request_body = operation(openapi, path, method)["requestBody"]["content"]["application/json"]
    schema = strict(request_body["schema"], openapi["components"]["schemas"])
    jsonschema.validate(body, schema)


def test_every_spec_endpoint_is_documented(openapi):
    documented = {
        (path.removeprefix(PREFIX), method)
        for path, operations in openapi["paths"].items()
        for method in operations
        if path.startswith(PREFIX) and method in {"get", "post", "put", "patch", "delete"}
    }

    assert documented == SPEC_ENDPOINTS


def test_the_checker_can_fail(openapi):
    schema = strict(
        openapi["components"]["schemas"]["EventCreated"], openapi["components"]["schemas"]
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"event_id": "x", "extra": 1}, schema)


# Ingestion


@pytest.mark.parametrize(
    "body",
    [
        {"event_type": "page_view", "source": "ios", "payload": {"page": "home"}},
        {"events": [{"event_type": "page_view"}, {"event_type": "job_apply", "payload": {"a": 1}}]},
    ],
)
def test_ingestion_created(openapi, api_client, body):
    assert_request_matches(openapi, "events/", "post", body)

    response = api_client.post(PREFIX + "events/", body, format="json")

    assert response.status_code == 201
    assert_matches(openapi, "events/", "post", response)


def test_ingestion_errors(openapi, api_client, engagement_settings):
    engagement_settings.update(INGEST_THROTTLE_RATE="3/day")  # the 4th request is throttled
    invalid = api_client.post(PREFIX + "events/", {"events": [{"event_type": 1}]}, format="json")
    unsupported = api_client.post(PREFIX + "events/", "x", content_type="text/plain")
    engagement_settings.update(MAX_EVENT_SIZE=10)
    too_large = api_client.post(
        PREFIX + "events/", {"event_type": "a", "payload": {"x": "y" * 20}}, format="json"
    )
    throttled = api_client.post(PREFIX + "events/", {"event_type": "a"}, format="json")
    engagement_settings.update(ENABLED=False)
    disabled = api_client.post(PREFIX + "events/", {"event_type": "a"}, format="json")

    statuses = [r.status_code for r in (invalid, unsupported, too_large, throttled, disabled)]
    assert statuses == [400, 415, 413, 429, 204]
    for response in (invalid, unsupported, too_large, throttled, disabled):
        assert_matches(openapi, "events/", "post", response)


# Activity feed


@pytest.fixture
def feed_items(user, campaign):
    Feed = get_feed_model()
    course = Course.objects.create(title="Icons")
    now = timezone.now()
    rows = [
        Feed(user=user, activity_type="target_join", title="Joined", created_at=now, data={"n": 1}),
        Feed(
            user=user,
            activity_type="milestone",
            title="10 members",
            created_at=now - timedelta(hours=3),
            is_read=True,
            read_at=now,
            target_content_type=ContentType.objects.get_for_model(campaign),
            target_object_id=str(campaign.pk),
        ),
        Feed(
            user=user,
            activity_type="event",
            title="Course",
            created_at=now - timedelta(days=2),
            target_content_type=ContentType.objects.get_for_model(course),
            target_object_id=str(course.pk),
        ),
    ]
    return get_feed_model()._default_manager.bulk_create(rows)


def test_feed_list_and_retrieve(openapi, auth_client, feed_items):
    listed = auth_client.get(PREFIX + "activity-feed/", {"page_size": 2})
    detail = auth_client.get(PREFIX + f"activity-feed/{feed_items[1].pk}/")
    missing = auth_client.get(PREFIX + "activity-feed/0/")
    bad_filter = auth_client.get(PREFIX + "activity-feed/", {"is_read": "perhaps"})

    assert [listed.status_code, detail.status_code, missing.status_code] == [200, 200, 404]
    assert listed.json()["next"] is not None
    assert_matches(openapi, "activity-feed/", "get", listed)
    assert_matches(openapi, "activity-feed/{id}/", "get", detail)
    assert_matches(openapi, "activity-feed/{id}/", "get", missing)
    assert_matches(openapi, "activity-feed/", "get", bad_filter)


def test_feed_summary(openapi, auth_client, api_client, feed_items):
    response = auth_client.get(PREFIX + "activity-feed/summary/")

    assert response.json()["total_items"] == 3
    assert_matches(openapi, "activity-feed/summary/", "get", response)
    denied = api_client.get(PREFIX + "activity-feed/summary/")
    assert denied.status_code == 403
    assert_matches(openapi, "activity-feed/summary/", "get", denied)


def test_feed_mark_read(openapi, auth_client, feed_items):
    body = {"activity_ids": [item.pk for item in feed_items]}
    assert_request_matches(openapi, "activity-feed/mark-read/", "post", body)

    response = auth_client.post(PREFIX + "activity-feed/mark-read/", body, format="json")
    invalid = auth_client.post(PREFIX + "activity-feed/mark-read/", {}, format="json")

    assert response.json()["updated_count"] == 2
    assert_matches(openapi, "activity-feed/mark-read/", "post", response)
    assert_matches(openapi, "activity-feed/mark-read/", "post", invalid)


def test_feed_generate(openapi, admin_client_api, auth_client, user, campaign):
    get_event_model()._default_manager.create(
        event_type="target_joined",
        user=user,
        target_content_type=ContentType.objects.get_for_model(campaign),
        target_object_id=str(campaign.pk),
    )
    body = {"user_id": user.pk, "days_back": 7}
    assert_request_matches(openapi, "activity-feed/generate/", "post", body)

    response = admin_client_api.post(PREFIX + "activity-feed/generate/", body, format="json")
    denied = auth_client.post(PREFIX + "activity-feed/generate/", body, format="json")

    assert (response.status_code, response.json()["created_count"]) == (200, 1)
    assert denied.status_code == 403
    assert_matches(openapi, "activity-feed/generate/", "post", response)
    assert_matches(openapi, "activity-feed/generate/", "post", denied)


# Reports (their views are in api/reports.py; the schema must match them too)


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("reports/daily-summary/", {}),
        ("reports/active-users/", {}),
        ("reports/top/", {"key": "page"}),
        ("reports/dashboard/", {"days": 7}),
    ],
)
def test_report_responses(openapi, admin_client_api, api_client, path, query):
    get_event_model()._default_manager.create(event_type="page_view", data={"page": "home"})

    response = admin_client_api.get(PREFIX + path, query)

    assert response.status_code == 200
    assert_matches(openapi, path, "get", response)


# Without drf-spectacular


def test_package_works_without_drf_spectacular():
    """The [openapi] extra is optional: with drf_spectacular unimportable, the URLs load."""
    code = """
import importlib.abc, importlib.util, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "drf_spectacular":
            raise ModuleNotFoundError(name)

sys.meta_path.insert(0, Block())
find = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "drf_spectacular" else find(name, *a)

import django
django.setup()
import django_engagement.urls
from django_engagement.api import schema
from django_engagement.api.ingest import EventIngestView

assert not schema.SPECTACULAR_INSTALLED
assert schema.extend_schema(summary="x")(len) is len
assert schema.OpenApiParameter.QUERY is None
assert "drf_spectacular" not in sys.modules
print("ok")
"""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )

    assert (result.returncode, result.stdout.strip()) == (0, "ok"), result.stderr
