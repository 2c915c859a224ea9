"""POST events/: single and bulk ingestion, limits, bad input, permissions, throttling."""

from __future__ import annotations

import json
import math
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from django_engagement.models import get_event_model
from tests.helpers import events, post_raw

URL = reverse("django_engagement:engagement-events")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "fresh_throttle")]


def post(client, body, **extra):
    return client.post(URL, body, format="json", **extra)


# Single events


def test_single_anonymous_event_is_stored_with_request_context(api_client):
    response = post(
        api_client,
        {
            "event_type": "page_view",
            "anonymous_id": "anon-12345",
            "source": "android",
            "payload": {"page": "dashboard", "duration_seconds": 45},
        },
        REMOTE_ADDR="203.0.113.77",
        HTTP_USER_AGENT="Flutter/3.0",
    )

    assert response.status_code == 201
    assert set(response.json()) == {"event_id"}
    event = events().get()
    assert response.json()["event_id"] == str(event.uuid)
    assert (event.event_type, event.source, event.anonymous_id) == (
        "page_view",
        "android",
        "anon-12345",
    )
    assert event.data == {"page": "dashboard", "duration_seconds": 45}
    assert event.user_id is None
    assert event.ip_address == "203.0.113.0"
    assert event.user_agent == "Flutter/3.0"
    assert "Idempotent-Replayed" not in response.headers


def test_authenticated_user_is_linked(auth_client, user):
    response = post(auth_client, {"event_type": "page_view"})

    assert response.status_code == 201
    event = events().get()
    assert event.user_id == user.pk
    assert (event.source, event.data, event.anonymous_id) == ("web", {}, "")


def test_session_user_is_linked_and_csrf_enforced(user):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="pw")

    assert post(client, {"event_type": "page_view"}).status_code == 403
    assert events().count() == 0

    client.get("/admin/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = post(client, {"event_type": "page_view"}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert events().get().user_id == user.pk


def test_anonymous_client_needs_no_csrf_token():
    response = post(APIClient(enforce_csrf_checks=True), {"event_type": "page_view"})

    assert response.status_code == 201


def test_anonymous_id_header_is_the_fallback(api_client):
    post(api_client, {"event_type": "a"}, HTTP_X_CLIENT_ANON_ID="anon-header")
    post(api_client, {"event_type": "b", "anonymous_id": "anon-body"}, HTTP_X_CLIENT_ANON_ID="x")

    assert dict(events().values_list("event_type", "anonymous_id")) == {
        "a": "anon-header",
        "b": "anon-body",
    }


def test_timestamp_sets_when_the_event_happened(api_client):
    response = post(api_client, {"event_type": "a", "timestamp": "2026-01-04T10:30:00Z"})

    assert response.status_code == 201
    assert events().get().created_at.isoformat() == "2026-01-04T10:30:00+00:00"


def test_timestamp_more_than_a_day_ahead_is_rejected(api_client):
    future = (timezone.now() + timedelta(days=1, minutes=5)).isoformat()
    response = post(api_client, {"event_type": "a", "timestamp": future})

    assert response.status_code == 400
    assert response.json() == {"timestamp": ["Timestamp is more than a day in the future."]}
    assert events().count() == 0


@pytest.mark.parametrize(
    ("settings_update", "expected_ip"),
    [
        ({}, "198.51.100.0"),
        ({"ANONYMIZE_IP": False}, "198.51.100.23"),
        ({"CAPTURE_IP": False}, None),
    ],
)
def test_ip_capture_follows_settings(api_client, engagement_settings, settings_update, expected_ip):
    engagement_settings.update(**settings_update)

    post(api_client, {"event_type": "a"}, REMOTE_ADDR="198.51.100.23")

    assert events().get().ip_address == expected_ip


def test_long_user_agent_is_truncated_not_rejected(api_client):
    response = post(api_client, {"event_type": "a"}, HTTP_USER_AGENT="x" * 2000)

    assert response.status_code == 201
    assert len(events().get().user_agent) == 512


# Bulk


def test_bulk_events_are_stored_in_order(api_client):
    response = post(
        api_client,
        {
            "events": [
                {"event_type": "page_view", "payload": {"page": "home"}},
                {"event_type": "booking_created", "payload": {"booking_id": "123"}},
            ]
        },
        HTTP_X_CLIENT_ANON_ID="anon-7",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["events_created"] == 2
    stored = {str(e.uuid): e for e in events().all()}
    assert [stored[event_id].event_type for event_id in body["event_ids"]] == [
        "page_view",
        "booking_created",
    ]
    assert {e.anonymous_id for e in stored.values()} == {"anon-7"}


def test_bulk_error_names_index_and_field_and_stores_nothing(api_client):
    response = post(
        api_client,
        {
            "events": [
                {"event_type": "ok"},
                {"event_type": "Bad Type"},
                {"event_type": "ok", "source": "fax", "colour": "red"},
            ]
        },
    )

    assert response.status_code == 400
    errors = response.json()["events"]
    assert set(errors) == {"1", "2"}
    assert list(errors["1"]) == ["event_type"]
    assert "Invalid event type 'Bad Type'" in errors["1"]["event_type"][0]
    assert errors["2"]["colour"] == ["Unknown field."]
    assert errors["2"]["source"][0].startswith("Unknown source 'fax'")
    assert events().count() == 0


def test_event_type_with_trailing_newline_is_400(api_client):
    response = post(api_client, {"event_type": "page_view\n"})

    assert response.status_code == 400
    assert "Invalid event type" in response.json()["event_type"][0]
    assert events().count() == 0


def test_empty_bulk_is_rejected(api_client):
    response = post(api_client, {"events": []})

    assert response.status_code == 400
    assert response.json() == {"events": ["This list may not be empty."]}


def test_bulk_over_max_batch_size_names_the_limit(api_client, engagement_settings):
    engagement_settings.update(MAX_BATCH_SIZE=3)

    response = post(api_client, {"events": [{"event_type": "a"}] * 4})

    assert response.status_code == 400
    assert response.json() == {"events": ["Ensure this field has no more than 3 elements."]}
    assert events().count() == 0


def test_bulk_extra_top_level_key_is_rejected(api_client):
    response = post(api_client, {"events": [{"event_type": "a"}], "event_type": "b"})

    assert response.status_code == 400
    assert response.json() == {"event_type": ["Unknown field."]}


# Disabled, oversize


def test_disabled_answers_204_before_parsing_and_throttling(api_client, engagement_settings):
    engagement_settings.update(ENABLED=False, INGEST_THROTTLE_RATE="1/min")

    good = post(api_client, {"event_type": "page_view"})
    garbage = post_raw(api_client, b"{not json")

    assert (good.status_code, good.content) == (204, b"")
    assert (garbage.status_code, garbage.content) == (204, b"")
    assert events().count() == 0


def test_oversize_payload_is_413(api_client, engagement_settings):
    engagement_settings.update(MAX_EVENT_SIZE=100)
    payload = {"text": "x" * 100}  # 111 bytes as compact JSON

    response = post(api_client, {"event_type": "a", "payload": payload})

    assert response.status_code == 413
    assert response.json() == {
        "payload": ["Event payload is 111 bytes; the limit is 100 bytes (MAX_EVENT_SIZE)."]
    }
    assert events().count() == 0


def test_oversize_payload_in_bulk_names_the_index(api_client, engagement_settings):
    engagement_settings.update(MAX_EVENT_SIZE=100)

    response = post(
        api_client,
        {"events": [{"event_type": "a"}, {"event_type": "a", "payload": {"text": "x" * 100}}]},
    )

    assert response.status_code == 413
    assert list(response.json()["events"]) == ["1"]
    assert "limit is 100 bytes" in response.json()["events"]["1"]["payload"][0]
    assert events().count() == 0


def test_payload_at_the_limit_is_accepted(api_client, engagement_settings):
    engagement_settings.update(MAX_EVENT_SIZE=111)

    response = post(api_client, {"event_type": "a", "payload": {"text": "x" * 100}})

    assert response.status_code == 201


def test_body_over_the_request_bound_is_413_before_parsing(api_client, engagement_settings):
    engagement_settings.update(MAX_EVENT_SIZE=100, MAX_BATCH_SIZE=2)  # bound: 2 * 1224 bytes
    raw = b'{"events": [' + b" " * 3000 + b"]}"

    response = post_raw(api_client, raw)

    assert response.status_code == 413
    assert response.json() == {
        "detail": "Request body is larger than 2448 bytes, the limit "
        "(MAX_BATCH_SIZE x (2 x MAX_EVENT_SIZE + 1024))."
    }


# Bad input is always a 4xx


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"event_type": 123}, "event_type", "Not a valid string."),
        ({"event_type": "a" * 65}, "event_type", "Ensure this field has no more than 64"),
        ({}, "event_type", "This field is required."),
        ({"event_type": "a", "payload": [1, 2]}, "payload", 'got type "list"'),
        ({"event_type": "a", "payload": "text"}, "payload", 'got type "str"'),
        ({"event_type": "a", "source": 1}, "source", "Not a valid string."),
        ({"event_type": "a", "anonymous_id": 5}, "anonymous_id", "Not a valid string."),
        ({"event_type": "a", "anonymous_id": "x" * 129}, "anonymous_id", "no more than 128"),
        ({"event_type": "a", "idempotency_key": "k" * 129}, "idempotency_key", "no more than 128"),
        ({"event_type": "a", "timestamp": "yesterday"}, "timestamp", "Datetime has wrong format"),
        ({"event_type": "a", "data": {}}, "data", "send the event data as 'payload'"),
        ({"event_type": "a", "title": "t"}, "title", "Unknown field."),
        ({"events": "many"}, "events", 'Expected a list of items but got type "str"'),
    ],
)
def test_invalid_field_is_400_naming_it(api_client, body, field, message):
    response = post(api_client, body)

    assert response.status_code == 400
    assert message in response.json()[field][0]
    assert events().count() == 0


def test_non_object_event_in_bulk_names_the_index(api_client):
    response = post(api_client, {"events": [{"event_type": "a"}, 7]})

    assert response.status_code == 400
    assert response.json() == {
        "events": {"1": {"non_field_errors": ["Invalid data. Expected a dictionary, but got int."]}}
    }


def test_deeply_nested_payload_is_400(api_client):
    payload: dict = {}
    for _ in range(40):
        payload = {"a": payload}

    response = post(api_client, {"event_type": "a", "payload": payload})

    assert response.status_code == 400
    assert response.json() == {"payload": ["Payload is nested more than 32 levels deep."]}


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "nested too deeply"),
        (b'{"event_type": "\xff\xfe"}', "application/json", 400, "not valid utf-8"),
        (b"{not json", "application/json", 400, "JSON parse error"),
        (b'{"event_type": "a", "payload": {"x": NaN}}', "application/json", 400, "NaN"),
        (b"event_type=a", "application/x-www-form-urlencoded", 415, "Unsupported media type"),
        (b"hello", "text/plain", 415, "Unsupported media type"),
        (b'["page_view"]', "application/json", 400, "Expected a JSON object"),
        (b'"page_view"', "application/json", 400, "Expected a JSON object"),
        (b"null", "application/json", 400, "Expected a JSON object"),
        (b"", "application/json", 400, "This field is required."),
    ],
)
def test_malformed_body_is_a_clear_4xx(api_client, raw, content_type, status, message):
    response = post_raw(api_client, raw, content_type=content_type)

    assert response.status_code == status
    assert message in json.dumps(response.json())
    assert events().count() == 0


def test_event_types_setting_restricts_codes(api_client, engagement_settings):
    engagement_settings.update(EVENT_TYPES=["page_view"])

    assert post(api_client, {"event_type": "page_view"}).status_code == 201
    response = post(api_client, {"event_type": "job_apply"})
    assert response.status_code == 400
    assert response.json() == {
        "event_type": ["Unknown event type 'job_apply'; allowed: page_view."]
    }


def test_sources_setting_restricts_sources(api_client, engagement_settings):
    engagement_settings.update(SOURCES=["kiosk"])

    assert post(api_client, {"event_type": "a", "source": "kiosk"}).status_code == 201
    response = post(api_client, {"event_type": "a"})  # the default 'web' is not allowed
    assert response.status_code == 400
    assert list(response.json()) == ["source"]


# Idempotency


def test_repeated_idempotency_key_returns_the_original_event(api_client):
    body = {"event_type": "booking_created", "idempotency_key": "k-1", "anonymous_id": "anon-a"}

    first = post(api_client, body)
    second = post(api_client, {**body, "payload": {"changed": True}})

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert events().get().data == {}


def test_idempotency_key_header(api_client):
    anon = {"HTTP_X_CLIENT_ANON_ID": "anon-a"}
    first = post(api_client, {"event_type": "a"}, HTTP_IDEMPOTENCY_KEY="hdr-1", **anon)
    second = post(api_client, {"event_type": "a"}, HTTP_IDEMPOTENCY_KEY="hdr-1", **anon)

    assert first.json() == second.json()
    assert events().get().idempotency_key == "hdr-1"


def test_bulk_retry_with_idempotency_header_stores_nothing_new(auth_client):
    body = {"events": [{"event_type": "a"}, {"event_type": "b", "idempotency_key": "own"}]}

    first = post(auth_client, body, HTTP_IDEMPOTENCY_KEY="batch-9")
    second = post(auth_client, body, HTTP_IDEMPOTENCY_KEY="batch-9")

    assert first.json() == second.json()
    assert first.json()["events_created"] == 2
    assert second.headers["Idempotent-Replayed"] == "true"
    assert sorted(events().values_list("idempotency_key", flat=True)) == ["batch-9:0", "own"]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_idempotency_keys_are_scoped_per_user(user, other_user):
    """Issue 9.5: B reusing A's key gets its own event, and never sees A's event id."""
    body = {"event_type": "purchase", "idempotency_key": "order-123"}
    first_a = post(client_for(user), body)
    first_b = post(client_for(other_user), body)
    retry_a = post(client_for(user), body)
    retry_b = post(client_for(other_user), body)

    assert [r.status_code for r in (first_a, first_b, retry_a, retry_b)] == [201] * 4
    assert first_b.json()["event_id"] != first_a.json()["event_id"]
    assert "Idempotent-Replayed" not in first_b.headers
    assert retry_a.json() == first_a.json()
    assert retry_b.json() == first_b.json()
    assert retry_a.headers["Idempotent-Replayed"] == retry_b.headers["Idempotent-Replayed"]
    stored = events().order_by("pk")
    assert [(e.user_id, str(e.uuid)) for e in stored] == [
        (user.pk, first_a.json()["event_id"]),
        (other_user.pk, first_b.json()["event_id"]),
    ]


def test_idempotency_keys_are_scoped_per_anonymous_id(api_client):
    body = {"event_type": "page_view", "idempotency_key": "k"}
    from_a = post(api_client, {**body, "anonymous_id": "anon-a"})
    from_b = post(api_client, body, HTTP_X_CLIENT_ANON_ID="anon-b")
    retry_a = post(api_client, body, HTTP_X_CLIENT_ANON_ID="anon-a")

    assert from_b.json()["event_id"] != from_a.json()["event_id"]
    assert "Idempotent-Replayed" not in from_b.headers
    assert retry_a.json() == from_a.json()
    assert retry_a.headers["Idempotent-Replayed"] == "true"
    assert sorted(events().values_list("anonymous_id", flat=True)) == ["anon-a", "anon-b"]


def test_bulk_keys_are_scoped_per_user(user, other_user):
    body = {"events": [{"event_type": "a", "idempotency_key": "k1"}, {"event_type": "b"}]}
    from_a = post(client_for(user), body, HTTP_IDEMPOTENCY_KEY="batch")
    from_b = post(client_for(other_user), body, HTTP_IDEMPOTENCY_KEY="batch")

    assert set(from_a.json()["event_ids"]).isdisjoint(from_b.json()["event_ids"])
    assert "Idempotent-Replayed" not in from_b.headers
    assert events().count() == 4


def test_signed_in_and_server_keys_do_not_mix(user):
    """The server's scope (no user, no anonymous id) is not reachable over HTTP."""
    from django_engagement import record_event

    server = record_event("purchase", idempotency_key="order-1")
    response = post(client_for(user), {"event_type": "purchase", "idempotency_key": "order-1"})

    assert response.json()["event_id"] != str(server.uuid)
    assert events().count() == 2


def test_anonymous_key_without_anonymous_id_is_400(api_client):
    message = (
        "An idempotency key needs a client identity: sign in, or send anonymous_id "
        "or the X-Client-ANON-ID header."
    )
    single = post(api_client, {"event_type": "a", "idempotency_key": "k"})
    header = post(api_client, {"event_type": "a"}, HTTP_IDEMPOTENCY_KEY="k")
    bulk = post(
        api_client,
        {
            "events": [
                {"event_type": "a", "anonymous_id": "x", "idempotency_key": "k"},
                {"event_type": "b"},
            ]
        },
        HTTP_IDEMPOTENCY_KEY="batch",
    )

    assert (single.status_code, single.json()) == (400, {"idempotency_key": [message]})
    assert (header.status_code, header.json()) == (400, {"idempotency_key": [message]})
    assert (bulk.status_code, bulk.json()) == (
        400,
        {"events": {"1": {"idempotency_key": [message]}}},
    )
    assert events().count() == 0


def test_overlong_idempotency_header_is_400(api_client):
    response = post(api_client, {"events": [{"event_type": "a"}]}, HTTP_IDEMPOTENCY_KEY="k" * 121)

    assert response.status_code == 400
    assert response.json() == {
        "Idempotency-Key": ["Ensure this header has no more than 120 characters."]
    }


# Permissions and throttling (settings read per request)


def test_permission_classes_come_from_settings(api_client, auth_client, engagement_settings):
    engagement_settings.update(
        INGEST_PERMISSION_CLASSES=["rest_framework.permissions.IsAuthenticated"]
    )

    assert post(api_client, {"event_type": "a"}).status_code == 403
    assert post(auth_client, {"event_type": "a"}).status_code == 201
    assert events().count() == 1


def test_throttle_rate_per_client(api_client, auth_client, engagement_settings):
    engagement_settings.update(INGEST_THROTTLE_RATE="2/day")  # no window edge mid-test

    statuses = [post(api_client, {"event_type": "a"}).status_code for _ in range(3)]
    other_ip = post(api_client, {"event_type": "a"}, REMOTE_ADDR="192.0.2.1").status_code
    user = [post(auth_client, {"event_type": "a"}).status_code for _ in range(3)]

    assert statuses == [201, 201, 429]
    assert other_ip == 201
    assert user == [201, 201, 429]
    assert events().count() == 5


def test_throttle_counts_in_clock_aligned_windows(api_client, engagement_settings, monkeypatch):
    """A fixed window per minute: the budget resets at the minute, Retry-After says when."""
    from django_engagement.api.throttling import IngestRateThrottle

    engagement_settings.update(INGEST_THROTTLE_RATE="2/min")
    clock = [1_000_020.5]  # 0.5 s into a minute (1_000_020 is a multiple of 60)
    monkeypatch.setattr(IngestRateThrottle, "timer", staticmethod(lambda: clock[0]))

    def status_at(second: float):
        clock[0] = 1_000_020 + second
        return post(api_client, {"event_type": "a"})

    assert [status_at(s).status_code for s in (0.5, 1)] == [201, 201]
    throttled = status_at(30.5)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "30"
    assert throttled.json() == {
        "detail": "Request was throttled. Expected available in 30 seconds."
    }
    assert [status_at(s).status_code for s in (59.9, 60, 61, 62)] == [429, 201, 201, 429]


def test_throttle_on_a_dummy_cache_lets_everything_through(
    api_client, engagement_settings, settings
):
    """DummyCache stores no count: no limit (W003 says so), and never a 500."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    engagement_settings.update(INGEST_THROTTLE_RATE="1/day")

    assert [post(api_client, {"event_type": "a"}).status_code for _ in range(3)] == [201] * 3


def test_throttle_can_be_switched_off(api_client, engagement_settings):
    engagement_settings.update(INGEST_THROTTLE_RATE=None)

    assert {post(api_client, {"event_type": "a"}).status_code for _ in range(5)} == {201}


# Query counts


def test_single_event_query_count(auth_client):
    with CaptureQueriesContext(connection) as queries:
        assert post(auth_client, {"event_type": "page_view"}).status_code == 201

    assert len(queries) <= 4, [q["sql"] for q in queries.captured_queries]


def bulk_queries(client, size: int, key_prefix: str | None = None) -> tuple[int, int]:
    """(event INSERT statements, other queries) of one bulk request of ``size`` events."""
    body = {
        "events": [
            {
                "event_type": "page_view",
                "payload": {"n": n},
                **({"idempotency_key": f"{key_prefix}-{n}"} if key_prefix else {}),
            }
            for n in range(size)
        ]
    }
    with CaptureQueriesContext(connection) as queries:
        assert post(client, body).status_code == 201
    table = get_event_model()._meta.db_table
    inserts = sum(q["sql"].startswith("INSERT") and f'"{table}"' in q["sql"] for q in queries)
    return inserts, len(queries) - inserts


def insert_statements(size: int) -> int:
    """One INSERT per batch; only SQLite's bound-parameter limit splits a batch."""
    fields = [f for f in get_event_model()._meta.concrete_fields if not f.primary_key]
    return math.ceil(size / connection.ops.bulk_batch_size(fields, [None] * size))


@pytest.mark.parametrize("keys", [False, True])
def test_bulk_query_count_does_not_grow_with_batch_size(auth_client, keys):
    one = bulk_queries(auth_client, 1, "one" if keys else None)
    hundred = bulk_queries(auth_client, 100, "hundred" if keys else None)

    assert one == (1, one[1])
    assert hundred == (insert_statements(100), one[1])
    assert events().count() == 101


def test_event_ids_are_uuids(api_client):
    response = post(api_client, {"events": [{"event_type": "a"}] * 3})

    assert len({uuid.UUID(event_id) for event_id in response.json()["event_ids"]}) == 3


def test_header_key_leaves_room_for_the_longest_index_suffix(api_client, engagement_settings):
    """With a batch size whose last index needs more than 8 characters (``:999999999``),
    the header's limit shrinks with it: a 400, not a key too long for its column."""
    engagement_settings.update(MAX_BATCH_SIZE=10**9)
    limit = get_event_model()._meta.get_field("idempotency_key").max_length - 10
    body = {"events": [{"event_type": "a"}]}
    anon = {"HTTP_X_CLIENT_ANON_ID": "anon-1"}

    too_long = post(api_client, body, HTTP_IDEMPOTENCY_KEY="k" * (limit + 1), **anon)
    fits = post(api_client, body, HTTP_IDEMPOTENCY_KEY="k" * limit, **anon)

    assert (too_long.status_code, too_long.json()) == (
        400,
        {"Idempotency-Key": [f"Ensure this header has no more than {limit} characters."]},
    )
    assert fits.status_code == 201
    assert events().get().idempotency_key == "k" * limit + ":0"


def test_each_rule_runs_once_per_ingested_event(api_client, monkeypatch):
    """The serializers validate; the service stores what they validated without checking
    the same payload again (``store_validated_events``), so a payload is walked and
    measured once per event."""
    from django_engagement import validators
    from django_engagement.services import events as service

    calls = {"size": 0, "json": 0, "spec": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return wrapper

    size = counting("size", validators.validate_payload_size)
    storable = counting("json", validators.validate_storable_json)
    monkeypatch.setattr(validators, "validate_payload_size", size)
    monkeypatch.setattr(service, "validate_payload_size", size)
    monkeypatch.setattr(validators, "validate_storable_json", storable)
    monkeypatch.setattr(service, "validate_storable_json", storable)
    monkeypatch.setattr(
        service, "validate_event_spec", counting("spec", service.validate_event_spec)
    )
    body = {"events": [{"event_type": "page_view", "payload": {"n": n}} for n in range(3)]}

    assert post(api_client, body).status_code == 201
    assert calls == {"size": 3, "json": 3, "spec": 0}
    assert events().count() == 3

    service.record_events([{"event_type": "page_view", "data": {"n": 9}}])
    assert calls == {"size": 4, "json": 4, "spec": 1}
