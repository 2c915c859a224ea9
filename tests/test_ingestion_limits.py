"""Ingestion limits: JSON and text PostgreSQL cannot store, UTC offsets it refuses.

Each case was a 500 on PostgreSQL (``DataError``/``UnicodeEncodeError``); the
contract is a 400 naming the field (and the index in a batch) on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from django_engagement import record_event
from django_engagement.validators import UnstorableValue
from tests.helpers import events, feed, post_raw

URL = reverse("django_engagement:engagement-events")
FEED_URL = reverse("django_engagement:engagement-activity-feed-list")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "fresh_throttle")]


# JSON bodies written by hand: json.dumps cannot produce a lone surrogate's escape
# the way a client does, and the parser must see the exact text.
UNSTORABLE_PAYLOADS = [
    (r'{"a": "x\u0000y"}', "payload['a'] contains a NUL character (\\u0000)."),
    (r'{"a\u0000": 1}', "key of payload['a\\x00'] contains a NUL character (\\u0000)."),
    (r'{"a": ["ok", "\ud800"]}', "payload['a'][1] contains a lone surrogate (\\ud800)."),
    (r'{"\udfff": 1}', "key of payload['\\udfff'] contains a lone surrogate (\\udfff)."),
    ('{"a": 1e999}', "payload['a'] is inf: JSON numbers must be finite."),
    ('{"a": {"b": -1e999}}', "payload['a']['b'] is -inf: JSON numbers must be finite."),
]


@pytest.mark.parametrize(("payload", "message"), UNSTORABLE_PAYLOADS)
def test_single_event_payload_postgres_cannot_store_is_a_400_naming_it(
    api_client, payload, message
):
    response = post_raw(api_client, f'{{"event_type": "x", "payload": {payload}}}')

    assert response.status_code == 400
    assert response.json() == {"payload": [message]}
    assert events().count() == 0


@pytest.mark.parametrize(("payload", "message"), UNSTORABLE_PAYLOADS)
def test_bulk_payload_postgres_cannot_store_is_a_400_naming_the_index(api_client, payload, message):
    body = f'{{"events": [{{"event_type": "ok"}}, {{"event_type": "x", "payload": {payload}}}]}}'

    response = post_raw(api_client, body)

    assert response.status_code == 400
    assert response.json() == {"events": {"1": {"payload": [message]}}}
    assert events().count() == 0


@pytest.mark.parametrize("field", ["event_type", "anonymous_id", "idempotency_key", "source"])
@pytest.mark.parametrize("text", [r"a\u0000b", r"a\ud800b"])
def test_text_field_postgres_cannot_store_is_a_400_naming_it(api_client, field, text):
    body = {"event_type": "x", field: "PLACEHOLDER"}
    raw = str(body).replace("'", '"').replace("PLACEHOLDER", text)

    response = post_raw(api_client, raw)

    assert response.status_code == 400
    assert list(response.json()) == [field]
    assert events().count() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": {"a": "x\x00y"}}, "data['a'] contains a NUL character (\\u0000)."),
        ({"data": {"a": [float("nan")]}}, "data['a'][0] is nan: JSON numbers must be finite."),
        ({"data": {"\ud800": 1}}, "key of data['\\ud800'] contains a lone surrogate (\\ud800)."),
        ({"title": "a\x00"}, "title contains a NUL character (\\u0000)."),
        ({"description": "\udc00"}, "description contains a lone surrogate (\\udc00)."),
        ({"anonymous_id": "a\x00"}, "anonymous_id contains a NUL character (\\u0000)."),
        ({"idempotency_key": "k\x00"}, "idempotency_key contains a NUL character (\\u0000)."),
    ],
)
def test_record_event_raises_a_clear_value_error_before_the_database(kwargs, message):
    with pytest.raises(ValueError, match="^") as caught:
        record_event("x", **kwargs)

    assert isinstance(caught.value, UnstorableValue)
    assert isinstance(caught.value, ValidationError)
    assert caught.value.messages == [message]
    assert events().count() == 0


@pytest.mark.parametrize("offset", ["+17:59", "-17:59", "+23:59"])
def test_feed_date_time_bounds_with_offsets_postgres_refuses_are_converted_to_utc(
    auth_client, user, offset
):
    from django_engagement import notify

    notify([user], "event", title="old")
    item = feed().get()
    feed().filter(pk=item.pk).update(created_at=datetime(2020, 2, 12, 1, 0, tzinfo=UTC))

    query = f"2020-02-12T19:49:24{offset}".replace("+", "%2B")
    response = auth_client.get(f"{FEED_URL}?start_date={query}")
    response_end = auth_client.get(f"{FEED_URL}?end_date={query}")

    sign = 1 if offset[0] == "+" else -1
    hours, minutes = map(int, offset[1:].split(":"))
    bound = datetime(2020, 2, 12, 19, 49, 24, tzinfo=UTC) - sign * timedelta(
        hours=hours, minutes=minutes
    )
    item_is_after = datetime(2020, 2, 12, 1, 0, tzinfo=UTC) >= bound
    assert response.status_code == 200
    assert response_end.status_code == 200
    assert response.json()["count"] == (1 if item_is_after else 0)
    assert response_end.json()["count"] == (0 if item_is_after else 1)


def test_record_event_timestamp_with_an_offset_postgres_refuses_is_stored_in_utc():
    moment = datetime(2020, 2, 12, 19, 49, 24, tzinfo=timezone(timedelta(hours=17, minutes=59)))

    event = record_event("x", timestamp=moment)

    stored = events().get(pk=event.pk).created_at
    assert stored == datetime(2020, 2, 12, 1, 50, 24, tzinfo=UTC)


def test_ingested_timestamp_with_an_offset_postgres_refuses_is_stored(api_client):
    response = post_raw(api_client, '{"event_type": "x", "timestamp": "2020-02-12T19:49:24+17:59"}')

    assert response.status_code == 201
    assert events().get().created_at == datetime(2020, 2, 12, 1, 50, 24, tzinfo=UTC)


# Body size: checked before the body is read, and for chunked bodies too.

MARK_READ_URL = reverse("django_engagement:engagement-activity-feed-mark-read")


def test_body_over_data_upload_max_memory_size_is_a_json_413_before_reading(api_client):
    # The test client's FakePayload fails any read past its 2 bytes: a 413 proves that
    # the declared length was checked first (Django would have read it into request.body).
    response = api_client.generic(
        "POST", URL, b"{}", content_type="application/json", CONTENT_LENGTH=str(3 * 2**20)
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "Request body is larger than 2560000 bytes, the limit "
        "(MAX_BATCH_SIZE x (2 x MAX_EVENT_SIZE + 1024))."
    }


def test_feed_json_body_over_data_upload_max_memory_size_is_a_json_413(auth_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = b'{"activity_ids": [' + b"1, " * 50 + b"1]}"

    response = auth_client.generic("POST", MARK_READ_URL, body, content_type="application/json")

    assert response.status_code == 413
    assert response.json() == {
        "detail": "Request body is larger than 100 bytes, the limit (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    }


def chunked(client: APIClient, body: bytes, url: str = URL):
    """A chunked request as gunicorn hands it over: no Content-Length, the de-chunked
    body in ``wsgi.input`` and ``wsgi.input_terminated`` set."""
    import io

    return client.generic(
        "POST",
        url,
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True},
    )


def test_chunked_body_without_content_length_is_read(api_client):
    response = chunked(api_client, b'{"event_type": "page_view", "payload": {"page": "home"}}')

    assert response.status_code == 201
    assert events().get().data == {"page": "home"}


def test_chunked_body_over_the_bound_is_413_after_reading_limit_plus_one_bytes(
    api_client, engagement_settings
):
    engagement_settings.update(MAX_BATCH_SIZE=1, MAX_EVENT_SIZE=100)
    body = b'{"event_type": "x", "payload": {"a": "' + b"y" * 2000 + b'"}}'

    response = chunked(api_client, body)

    assert response.status_code == 413
    assert response.json() == {
        "detail": "Request body is larger than 1224 bytes, the limit "
        "(MAX_BATCH_SIZE x (2 x MAX_EVENT_SIZE + 1024))."
    }
    assert events().count() == 0


def test_chunked_body_a_server_cannot_deliver_is_a_400_not_an_empty_body(api_client):
    response = api_client.generic(
        "POST", URL, content_type="application/json", HTTP_TRANSFER_ENCODING="chunked"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "This server cannot read a chunked body: send Content-Length."
    }


# Reserved event types: the package's own server-side codes.


@pytest.mark.parametrize(
    "code",
    [
        "target_joined",
        "target_left",
        "milestone_reached",
        "user_signed_up",
        "user_logged_in",
        "user_logged_out",
        "target_created",
        "target_started",
        "target_updated",
    ],
)
def test_clients_cannot_send_the_packages_own_event_types(api_client, code):
    response = post_raw(
        api_client, f'{{"events": [{{"event_type": "ok"}}, {{"event_type": "{code}"}}]}}'
    )

    assert response.status_code == 400
    assert response.json() == {
        "events": {
            "1": {
                "event_type": [
                    f"Event type '{code}' is recorded by the server only "
                    "(ALLOW_CLIENT_RESERVED_EVENTS)."
                ]
            }
        }
    }
    assert events().count() == 0


def test_reserved_codes_follow_join_and_leave_event_settings(api_client, engagement_settings):
    engagement_settings.update(JOIN_EVENT="member_joined", LEAVE_EVENT="member_left")

    refused = post_raw(api_client, '{"event_type": "member_joined"}')
    accepted = post_raw(api_client, '{"event_type": "target_joined"}')

    assert refused.status_code == 400
    assert list(refused.json()) == ["event_type"]
    assert accepted.status_code == 201
    assert list(events().values_list("event_type", flat=True)) == ["target_joined"]


def test_signed_in_user_cannot_forge_a_join_into_their_feed(auth_client, campaign):
    response = post_raw(auth_client, '{"event_type": "target_joined"}')

    assert response.status_code == 400
    assert events().count() == 0
    assert feed().count() == 0


def test_allow_client_reserved_events_lets_them_through(auth_client, engagement_settings):
    engagement_settings.update(ALLOW_CLIENT_RESERVED_EVENTS=True)

    response = post_raw(auth_client, '{"event_type": "user_logged_in"}')

    assert response.status_code == 201
    assert events().get().event_type == "user_logged_in"


# Headers: WSGI decodes them as latin-1; the package reads them as UTF-8.


def wire(text: str) -> str:
    """A header value as a WSGI server hands UTF-8 bytes to Django (latin-1 decoded)."""
    return text.encode("utf-8").decode("latin-1")


def test_anonymous_id_header_is_decoded_as_utf8(api_client):
    response = post_raw(
        api_client,
        '{"event_type": "x"}',
        HTTP_X_CLIENT_ANON_ID=wire("café☃"),
        HTTP_USER_AGENT=wire("Zoë/1.0"),
    )

    assert response.status_code == 201
    event = events().get()
    assert event.anonymous_id == "café☃"
    assert event.user_agent == "Zoë/1.0"


def test_idempotency_key_header_is_decoded_as_utf8(api_client):
    # Keys are scoped per client: an anonymous client names itself with an anonymous id.
    body = '{"event_type": "x", "anonymous_id": "a1"}'
    first = post_raw(api_client, body, HTTP_IDEMPOTENCY_KEY=wire("clé-1"))
    again = post_raw(api_client, body, HTTP_IDEMPOTENCY_KEY=wire("clé-1"))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert events().get().idempotency_key == "clé-1"


@pytest.mark.parametrize(
    ("header", "name"),
    [("HTTP_X_CLIENT_ANON_ID", "X-Client-ANON-ID"), ("HTTP_IDEMPOTENCY_KEY", "Idempotency-Key")],
)
def test_header_that_is_not_utf8_is_a_400_naming_it(api_client, header, name):
    response = post_raw(api_client, '{"event_type": "x"}', **{header: b"caf\xe9".decode("latin-1")})

    assert response.status_code == 400
    assert response.json() == {name: ["This header is not valid UTF-8."]}
    assert events().count() == 0
