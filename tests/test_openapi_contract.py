"""The OpenAPI schema says what the API answers (issue 9, item 13).

Each test pins one promise of the schema against a real request: statuses and bodies
of the reports, JSON 404s for non-integer feed ids, JSON-only request bodies, the
constraints the server enforces on ``event_type``/``idempotency_key``/``user_id``, and
the statuses of ingestion (204, 413, 415, 429). ``.ci/schemathesis.sh`` checks the same
against a real server with generated requests.
"""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from django.urls import reverse
from rest_framework.authentication import BasicAuthentication

from django_engagement.api.reports import ReportView
from django_engagement.conf import reserved_event_types
from tests.helpers import post_raw
from tests.test_openapi import PREFIX, assert_matches, operation

pytest.importorskip("drf_spectacular")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "fresh_throttle")]

REPORTS = ["daily-summary", "active-users", "top", "export", "dashboard"]
EVENTS_URL = PREFIX + "events/"
GENERATE_URL = PREFIX + "activity-feed/generate/"
MARK_READ_URL = PREFIX + "activity-feed/mark-read/"
#: Past ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (1,000), where Django answers an HTML 400.
MANY_FIELDS = 1001


def documented_statuses(openapi: dict, path: str, method: str) -> set[str]:
    return set(operation(openapi, path, method)["responses"])


def event_property(openapi: dict, name: str) -> dict[str, Any]:
    return openapi["components"]["schemas"]["EventIn"]["properties"][name]


# Reports: 400, 401, 403 documented with their bodies, and answered


@pytest.mark.parametrize("report", REPORTS)
def test_reports_document_their_error_statuses(openapi, report):
    responses = operation(openapi, f"reports/{report}/", "get")["responses"]

    assert set(responses) == {"200", "400", "401", "403"}
    assert {code: list(responses[code]["content"]) for code in ("400", "401", "403")} == {
        "400": ["application/json"],
        "401": ["application/json"],
        "403": ["application/json"],
    }


@pytest.mark.parametrize("report", REPORTS)
def test_reports_answer_403_to_a_normal_user_as_documented(openapi, auth_client, report):
    response = auth_client.get(f"{PREFIX}reports/{report}/")

    assert response.status_code == 403
    assert_matches(openapi, f"reports/{report}/", "get", response)


@pytest.mark.parametrize(
    ("report", "query", "errors"),
    [
        ("daily-summary", "date=2026-13-01", {"date"}),
        ("active-users", "date=2026-02-30", {"date"}),
        ("top", "key=no spaces", {"key"}),
        ("export", "limit=0", {"limit"}),
        ("dashboard", "days=0", {"days"}),
    ],
)
def test_reports_answer_400_as_documented(openapi, admin_client_api, report, query, errors):
    response = admin_client_api.get(f"{PREFIX}reports/{report}/?{query}")

    assert response.status_code == 400
    assert set(response.json()) == errors
    assert_matches(openapi, f"reports/{report}/", "get", response)


def test_reports_answer_401_with_a_challenge_scheme_first(openapi, api_client):
    with mock.patch.object(ReportView, "authentication_classes", [BasicAuthentication]):
        response = api_client.get(PREFIX + "reports/daily-summary/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert_matches(openapi, "reports/daily-summary/", "get", response)


# activity-feed/{id}/: an integer, and a JSON 404 for anything else


def test_feed_item_id_is_an_integer_path_parameter(openapi):
    parameters = operation(openapi, "activity-feed/{id}/", "get")["parameters"]

    assert [(p["name"], p["in"], p["schema"]["type"]) for p in parameters] == [
        ("id", "path", "integer")
    ]


@pytest.mark.parametrize("item_id", ["abc", "0.5", "-1", "1e3", "%20", "a/b"])
def test_non_integer_feed_id_is_a_json_404(openapi, auth_client, item_id):
    response = auth_client.get(f"{PREFIX}activity-feed/{item_id}/")

    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {"detail": "Not found."}
    assert_matches(openapi, "activity-feed/{id}/", "get", response)


def test_feed_paths_without_the_slash_still_redirect(auth_client):
    response = auth_client.get(PREFIX + "activity-feed/summary")

    assert (response.status_code, response["Location"]) == (301, PREFIX + "activity-feed/summary/")


def test_out_of_range_feed_id_is_a_json_404(openapi, auth_client):
    response = auth_client.get(f"{PREFIX}activity-feed/{2**64}/")

    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert_matches(openapi, "activity-feed/{id}/", "get", response)


# JSON-only request bodies


def test_every_request_body_is_json_only(openapi):
    bodies = {
        (path, method): sorted(op["requestBody"]["content"])
        for path, operations in openapi["paths"].items()
        for method, op in operations.items()
        if "requestBody" in op
    }

    assert set(bodies) == {
        (PREFIX + "events/", "post"),
        (PREFIX + "activity-feed/mark-read/", "post"),
        (PREFIX + "activity-feed/generate/", "post"),
        (PREFIX + "activity-feed/preferences/", "put"),
        (PREFIX + "activity-feed/preferences/", "patch"),
        (PREFIX + "reports/saved/generate/", "post"),
    }
    assert set(map(tuple, bodies.values())) == {("application/json",)}


@pytest.mark.parametrize("url", [EVENTS_URL, MARK_READ_URL, GENERATE_URL])
def test_multipart_body_with_many_fields_is_a_json_415(admin_client_api, url):
    fields = {f"f{index}": "x" for index in range(MANY_FIELDS)}

    response = admin_client_api.post(url, fields, format="multipart")

    assert (response.status_code, response["Content-Type"]) == (415, "application/json")
    assert response.json()["detail"].startswith('Unsupported media type "multipart/form-data')


@pytest.mark.parametrize("url", [PREFIX + "activity-feed/", PREFIX + "reports/daily-summary/"])
def test_query_string_with_many_fields_is_a_json_400(admin_client_api, url):
    query = "&".join(f"f{index}=x" for index in range(MANY_FIELDS))

    response = admin_client_api.get(f"{url}?{query}")

    assert (response.status_code, response["Content-Type"]) == (400, "application/json")
    assert list(response.json()) == ["non_field_errors"]
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in response.json()["non_field_errors"][0]


# What the server enforces, the schema says


def test_event_type_schema_is_what_the_server_enforces(openapi):
    event_type = event_property(openapi, "event_type")

    assert (event_type["minLength"], event_type["maxLength"]) == (1, 64)
    assert event_type["pattern"] == "^[a-z][a-z0-9_.:-]{0,63}$"
    assert set(event_type["not"]["enum"]) == reserved_event_types()
    assert len(reserved_event_types()) == 9
    assert "additionalProperties" in openapi["components"]["schemas"]["EventIn"]
    assert openapi["components"]["schemas"]["EventIn"]["additionalProperties"] is False


@pytest.mark.parametrize(
    ("event_type", "accepted"),
    [("a", True), ("page_view", True), ("", False), ("Page", False), ("a" * 65, False)],
)
def test_event_type_pattern_matches_the_server(openapi, api_client, event_type, accepted):
    schema = event_property(openapi, "event_type")
    by_schema = (
        schema["minLength"] <= len(event_type) <= schema["maxLength"]
        and re.fullmatch(schema["pattern"], event_type) is not None
        and event_type not in schema["not"]["enum"]
    )

    response = api_client.post(EVENTS_URL, {"event_type": event_type}, format="json")

    assert by_schema is accepted
    assert response.status_code == (201 if accepted else 400)


def test_reserved_event_type_is_refused_as_the_schema_says(openapi, api_client):
    reserved = event_property(openapi, "event_type")["not"]["enum"][0]

    response = api_client.post(EVENTS_URL, {"event_type": reserved}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["event_type"]


def test_idempotency_key_schema_is_what_the_server_enforces(openapi):
    key = event_property(openapi, "idempotency_key")

    assert (key["minLength"], key["maxLength"]) == (1, 128)
    assert re.fullmatch(key["pattern"], "order-123")
    assert not re.fullmatch(key["pattern"], "a\x00b")
    assert not re.fullmatch(key["pattern"], "a\ud800b")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "This field may not be blank."),
        ("a" * 129, "Ensure this field has no more than 128 characters."),
        ("a\x00b", "This field contains a NUL character (\\u0000)."),
    ],
)
def test_idempotency_key_outside_the_schema_is_400(api_client, key, message):
    body = {"event_type": "page_view", "anonymous_id": "anon-1", "idempotency_key": key}

    response = api_client.post(EVENTS_URL, body, format="json")

    assert (response.status_code, response.json()) == (400, {"idempotency_key": [message]})


def test_lone_surrogate_in_idempotency_key_is_400(api_client):
    raw = '{"event_type": "page_view", "anonymous_id": "a", "idempotency_key": "k\\ud800"}'

    response = post_raw(api_client, raw)

    assert response.status_code == 400
    assert response.json() == {
        "idempotency_key": ["This field contains a lone surrogate (\\ud800)."]
    }


def test_generate_user_id_is_a_schema_integer(openapi):
    user_id = openapi["components"]["schemas"]["GenerateFeed"]["properties"]["user_id"]

    assert user_id == {
        "type": "integer",
        "minimum": 1,
        "description": "Primary key of the user whose feed is (re)built.",
    }


@pytest.mark.parametrize("user_id", [1.5, 1.0, True, "1"])
def test_generate_refuses_a_user_id_that_is_not_an_integer(admin_client_api, user, user_id):
    response = admin_client_api.post(GENERATE_URL, {"user_id": user_id}, format="json")

    assert (response.status_code, response.json()) == (
        400,
        {"user_id": ["A user id is an integer."]},
    )


@pytest.mark.parametrize("mark_all", [0, 1, "true"])
def test_mark_all_is_a_json_boolean(auth_client, mark_all):
    response = auth_client.post(MARK_READ_URL, {"mark_all": mark_all}, format="json")

    assert (response.status_code, list(response.json())) == (400, ["mark_all"])


def test_mark_read_schema_states_one_of_ids_or_mark_all(openapi):
    schema = openapi["components"]["schemas"]["MarkRead"]

    mark_all_only = schema["oneOf"][1]["properties"]["mark_all"]["$ref"].rsplit("/", 1)[-1]

    assert schema["oneOf"][0] == {"required": ["activity_ids"]}
    assert schema["oneOf"][1]["required"] == ["mark_all"]
    assert openapi["components"]["schemas"][mark_all_only]["enum"] == [True]
    assert schema["additionalProperties"] is False


def test_mark_read_body_is_required_as_the_server_says(openapi, auth_client):
    body = operation(openapi, "activity-feed/mark-read/", "post")["requestBody"]

    response = auth_client.post(MARK_READ_URL)

    assert body["required"] is True
    assert response.status_code == 400


@pytest.mark.parametrize("report", ["daily-summary", "dashboard"])
def test_a_repeated_report_parameter_is_a_400_naming_it(admin_client_api, report):
    key = "date" if report == "daily-summary" else "days"
    value = "2026-01-01" if key == "date" else "7"

    response = admin_client_api.get(f"{PREFIX}reports/{report}/?{key}={value}&{key}={value}")

    assert response.status_code == 400
    assert response.json() == {key: ["Send one value."]}


@pytest.mark.parametrize("pagination", ["page", "cursor"])
def test_a_page_size_that_is_no_integer_is_a_400(auth_client, pagination):
    response = auth_client.get(f"{PREFIX}activity-feed/?pagination={pagination}&page_size=abc")

    assert (response.status_code, response.json()) == (400, {"page_size": ["A whole number."]})


def test_a_blank_report_date_is_a_400(admin_client_api):
    response = admin_client_api.get(f"{PREFIX}reports/daily-summary/?date=")

    assert (response.status_code, response.json()) == (
        400,
        {"date": ["This field may not be blank."]},
    )


def test_an_unknown_report_format_is_a_documented_400(openapi, admin_client_api):
    response = admin_client_api.get(f"{PREFIX}reports/export/?format=AAA")

    assert "400" in documented_statuses(openapi, "reports/export/", "get")
    assert (response.status_code, response.json()) == (400, {"format": ["Unknown format."]})


@pytest.mark.parametrize("parameter", ["start_date", "end_date", "is_read"])
def test_empty_feed_filter_is_400(auth_client, parameter):
    response = auth_client.get(f"{PREFIX}activity-feed/?{parameter}=")

    assert (response.status_code, list(response.json())) == (400, [parameter])


# Ingestion statuses: each documented, each answered


def test_ingestion_documents_every_status_it_answers(openapi):
    assert documented_statuses(openapi, "events/", "post") == {
        "201",
        "204",
        "400",
        "401",
        "403",
        "413",
        "415",
        "429",
    }


def test_disabled_ingestion_is_the_documented_204(openapi, api_client, engagement_settings):
    engagement_settings.update(ENABLED=False)

    response = api_client.post(EVENTS_URL, {"event_type": "page_view"}, format="json")

    assert response.status_code == 204
    assert_matches(openapi, "events/", "post", response)


def test_oversize_body_is_the_documented_413(openapi, api_client, engagement_settings):
    engagement_settings.update(MAX_BATCH_SIZE=1, MAX_EVENT_SIZE=10)

    response = post_raw(
        api_client, '{"event_type": "page_view", "payload": {"a": "' + "x" * 200 + '"}}'
    )

    assert response.status_code == 413
    assert_matches(openapi, "events/", "post", response)


def test_form_body_is_the_documented_415(openapi, api_client):
    response = post_raw(api_client, "event_type=page_view", "application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert_matches(openapi, "events/", "post", response)


def test_throttled_ingestion_is_the_documented_429(openapi, api_client, engagement_settings):
    engagement_settings.update(INGEST_THROTTLE_RATE="1/min")
    api_client.post(EVENTS_URL, {"event_type": "page_view"}, format="json")

    response = api_client.post(EVENTS_URL, {"event_type": "page_view"}, format="json")

    assert response.status_code == 429
    assert_matches(openapi, "events/", "post", response)


def test_bad_json_is_a_documented_400(openapi, api_client):
    response = post_raw(api_client, "{")

    assert response.status_code == 400
    assert list(response.json()) == ["detail"]
    assert_matches(openapi, "events/", "post", response)


# SDK endpoints: excluded from the schema on purpose


def test_sdk_endpoints_are_not_in_the_schema(openapi):
    sdk_paths = [path for path in openapi["paths"] if "/segment/" in path or "/posthog/" in path]

    assert sdk_paths == []
    assert reverse("django_engagement:engagement-sdk-segment-batch") == PREFIX + "segment/v1/batch"


# Stored reports (reports/saved/): every status answered as documented


def _stored_report(**fields):
    from datetime import date

    from django_engagement.models import Report

    values = {
        "report_type": "daily_summary",
        "title": "Daily summary 2026-01-04",
        "period_start": date(2026, 1, 4),
        "period_end": date(2026, 1, 4),
        "parameters_key": "0" * 64,
        "status": "done",
        "result": {"total_events": 0},
        **fields,
    }
    return Report.objects.create(**values)


def test_stored_report_list_answers_as_documented(openapi, admin_client_api, auth_client):
    _stored_report()
    _stored_report(period_start="2026-01-05", period_end="2026-01-05", status="failed")

    ok = admin_client_api.get(PREFIX + "reports/saved/")
    assert (ok.status_code, ok.json()["count"]) == (200, 2)
    assert_matches(openapi, "reports/saved/", "get", ok)
    bad = admin_client_api.get(PREFIX + "reports/saved/?status=lost")
    assert bad.status_code == 400
    assert_matches(openapi, "reports/saved/", "get", bad)
    forbidden = auth_client.get(PREFIX + "reports/saved/")
    assert forbidden.status_code == 403
    assert_matches(openapi, "reports/saved/", "get", forbidden)
    assert documented_statuses(openapi, "reports/saved/", "get") == {
        "200",
        "400",
        "401",
        "403",
        "404",
    }


def test_stored_report_detail_answers_as_documented(openapi, admin_client_api):
    report = _stored_report(result={"nested": {"any": ["json", 1, None]}})

    ok = admin_client_api.get(f"{PREFIX}reports/saved/{report.pk}/")
    assert ok.status_code == 200
    assert_matches(openapi, "reports/saved/{id}/", "get", ok)
    missing = admin_client_api.get(f"{PREFIX}reports/saved/{report.pk + 1}/")
    assert missing.status_code == 404
    assert_matches(openapi, "reports/saved/{id}/", "get", missing)


def test_generate_report_answers_as_documented(
    openapi, admin_client_api, engagement_settings, django_capture_on_commit_callbacks
):
    url = PREFIX + "reports/saved/generate/"
    body = {"report_type": "daily_summary", "date": "2026-01-04"}

    created = admin_client_api.post(url, body, format="json")
    assert created.status_code == 201
    assert_matches(openapi, "reports/saved/generate/", "post", created)
    stored = admin_client_api.post(url, body, format="json")
    assert stored.status_code == 200
    assert_matches(openapi, "reports/saved/generate/", "post", stored)
    engagement_settings.update(ASYNC_REPORTS=True)
    with django_capture_on_commit_callbacks(execute=False):
        queued = admin_client_api.post(url, {**body, "date": "2026-01-05"}, format="json")
    assert queued.status_code == 202
    assert_matches(openapi, "reports/saved/generate/", "post", queued)
    bad = admin_client_api.post(url, {"report_type": "hourly"}, format="json")
    assert bad.status_code == 400
    assert_matches(openapi, "reports/saved/generate/", "post", bad)
    assert documented_statuses(openapi, "reports/saved/generate/", "post") == {
        "200",
        "201",
        "202",
        "400",
        "401",
        "403",
    }


def test_export_documents_both_streaming_formats(openapi):
    responses = operation(openapi, "reports/export/", "get")["responses"]

    assert sorted(responses["200"]["content"]) == ["application/x-ndjson", "text/csv"]
    [format_parameter] = [
        p
        for p in operation(openapi, "reports/export/", "get")["parameters"]
        if p["name"] == "format"
    ]
    assert format_parameter["schema"]["enum"] == ["csv", "json", "jsonl"]


def test_stored_report_list_past_the_last_page_is_a_documented_404(openapi, admin_client_api):
    response = admin_client_api.get(PREFIX + "reports/saved/?page=2")

    assert (response.status_code, response.json()) == (404, {"detail": "Invalid page."})
    assert_matches(openapi, "reports/saved/", "get", response)


@pytest.mark.parametrize("report_id", ["null,null", "abc", "-1", "a/b"])
def test_non_integer_stored_report_id_is_a_json_404(openapi, admin_client_api, report_id):
    response = admin_client_api.get(f"{PREFIX}reports/saved/{report_id}/")

    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert response.json() == {"detail": "Not found."}
    assert_matches(openapi, "reports/saved/{id}/", "get", response)


@pytest.mark.parametrize("parameter", ["status", "report_type"])
def test_a_blank_stored_report_filter_is_a_400(admin_client_api, parameter):
    response = admin_client_api.get(f"{PREFIX}reports/saved/?{parameter}=")

    assert response.status_code == 400
    assert response.json() == {parameter: ["This field may not be blank."]}


@pytest.mark.parametrize("in_feed", [0, 1, "true", None])
def test_preference_in_feed_is_a_json_boolean(auth_client, in_feed):
    body = {"default": {"in_feed": in_feed}}
    response = auth_client.patch(f"{PREFIX}activity-feed/preferences/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["default"]
