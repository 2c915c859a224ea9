"""SDK endpoints at the protocol level: keys, limits, errors, CORS, mapping, backfill.

The real SDKs are in test_sdk_python.py / test_sdk_browser.py; these send the exact
bodies those SDKs send (and the bad ones they never should) through Django's client.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.core import checks
from django.utils import timezone

from django_engagement.api.sdk import common
from django_engagement.models import get_event_model, get_feed_model
from django_engagement.services.sdk import normalize_event_type
from tests.sdk_helpers import WRITE_KEYS, configure

SEGMENT = "/api/engagement/segment/v1"
POSTHOG = "/api/engagement/posthog"

pytestmark = pytest.mark.django_db


def Event():
    return get_event_model()


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def post(client, path, body, *, key=None, content_type="application/json", **extra):
    data = body if isinstance(body, bytes) else json.dumps(body)
    if key is not None:
        extra["HTTP_AUTHORIZATION"] = basic(key)
    return client.generic("POST", path, data, content_type=content_type, **extra)


def track(n=0, **fields):
    return {
        "type": "track",
        "event": "Viewed Item",
        "anonymousId": "anon-1",
        "properties": {"n": n},
        "messageId": f"m-{n}",
        **fields,
    }


@pytest.fixture
def keys(engagement_settings, no_tracking):
    configure(engagement_settings)


def assert_error(response, status, code, *, contains=""):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert contains in body["message"]
    assert Event().objects.count() == 0


# -- keys ------------------------------------------------------------------------------


def test_no_write_keys_refuses_everything(client, engagement_settings):
    engagement_settings.update(WRITE_KEYS={})
    response = post(client, f"{SEGMENT}/batch", {"batch": [track()]}, key="wk_web")
    assert_error(response, 401, "invalid_key", contains="No write keys are configured")
    response = post(client, f"{POSTHOG}/batch/", {"api_key": "phc_x", "batch": []})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"batch": [track()]}, None, "No write key"),
        ({"batch": [track()]}, "wk_nope", "Unknown write key"),
        ({"batch": [track()], "writeKey": "wk_nope"}, None, "Unknown write key"),
        ({"batch": [track()], "writeKey": "wk_ios"}, "wk_web", "two different write keys"),
        ({"batch": [track(writeKey="wk_ios")]}, "wk_web", "two different write keys"),
    ],
)
def test_wrong_missing_or_mixed_key_is_401(client, keys, body, key, message):
    response = post(client, f"{SEGMENT}/batch", body, key=key)
    assert_error(response, 401, "invalid_key", contains=message)


def test_posthog_key_from_api_key_or_token(client, keys):
    event = {"event": "clicked", "distinct_id": "d-1", "properties": {"token": "phc_android"}}
    assert post(client, f"{POSTHOG}/e/", [event]).json() == {"status": 1}
    mixed = {**event, "properties": {"token": "wk_web"}}
    response = post(client, f"{POSTHOG}/batch/", {"api_key": "phc_android", "batch": [mixed]})
    assert response.status_code == 401
    assert list(Event().objects.values_list("event_type", "source")) == [("clicked", "android")]


def test_w004_when_routed_without_keys(engagement_settings):
    engagement_settings.update(WRITE_KEYS={})
    messages = [m for m in checks.run_checks() if m.id == "django_engagement.W004"]
    assert len(messages) == 1
    configure(engagement_settings)
    assert [m for m in checks.run_checks() if m.id == "django_engagement.W004"] == []


# -- limits ----------------------------------------------------------------------------


def test_gzip_bomb_is_413_and_never_inflated_past_the_cap(
    client, keys, engagement_settings, monkeypatch
):
    engagement_settings.update(SDK_MAX_REQUEST_SIZE=64 * 1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    prefix = b'{"batch": [{"type": "track", "event": "x", "properties": {"pad": "'
    bomb = compressor.compress(prefix)
    chunk = b"0" * (1024 * 1024)
    for _ in range(64):  # 64 MiB inflated, about 64 KiB on the wire
        bomb += compressor.compress(chunk)
    bomb += compressor.flush()
    assert len(bomb) < 100 * 1024

    inflated = []
    real = zlib.decompressobj

    class Spy:
        def __init__(self, *args):
            self.inner = real(*args)

        def decompress(self, data, max_length=0):
            out = self.inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(common.zlib, "decompressobj", Spy)
    for extra in ({"HTTP_CONTENT_ENCODING": "gzip"}, {}):  # by header, by magic bytes
        response = post(
            client, f"{SEGMENT}/batch", bomb, key="wk_web", content_type="text/plain", **extra
        )
        assert_error(response, 413, "request_too_large", contains="65536 bytes")
    assert inflated == [64 * 1024 + 1] * 2


def test_gzip_by_header_or_magic_bytes_is_accepted(client, keys):
    body = gzip.compress(json.dumps({"batch": [track(0), track(1)]}).encode())
    response = post(
        client,
        f"{SEGMENT}/b",
        body,
        key="wk_web",
        content_type="text/plain",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert response.status_code == 200, response.content
    body = gzip.compress(json.dumps([{**track(2), "event": "x"}]).encode())
    posthog = [
        {"event": "y", "distinct_id": "d", "uuid": "u-1", "properties": {"token": "phc_android"}}
    ]
    response = post(
        client,
        f"{POSTHOG}/e/?compression=gzip-js",
        gzip.compress(json.dumps(posthog).encode()),
        content_type="text/plain",
    )
    assert response.status_code == 200, response.content
    assert sorted(Event().objects.values_list("event_type", flat=True)) == [
        "viewed_item",
        "viewed_item",
        "y",
    ]


def test_declared_body_over_the_cap_is_413_before_reading(client, keys, engagement_settings):
    engagement_settings.update(SDK_MAX_REQUEST_SIZE=1000)
    body = json.dumps({"batch": [track(n) for n in range(50)]})
    response = post(client, f"{SEGMENT}/batch", body.encode(), key="wk_web")
    assert_error(response, 413, "request_too_large", contains="1000 bytes")


def test_oversized_message_is_413_naming_its_index(client, keys):
    messages = [track(0), track(1, properties={"pad": "x" * 40_000}), track(2)]
    response = post(client, f"{SEGMENT}/batch", {"batch": messages}, key="wk_web")
    assert_error(response, 413, "message_too_large", contains="batch[1]: message is")


def test_payload_over_max_event_size_is_413(client, keys):
    messages = [track(0), track(1, properties={"pad": "x" * 3000})]
    response = post(client, f"{SEGMENT}/batch", {"batch": messages}, key="wk_web")
    assert_error(response, 413, "message_too_large", contains="batch[1]")


def test_too_many_messages_is_413(client, keys, engagement_settings):
    engagement_settings.update(MAX_BATCH_SIZE=3)
    response = post(
        client, f"{SEGMENT}/batch", {"batch": [track(n) for n in range(4)]}, key="wk_web"
    )
    assert_error(response, 413, "request_too_large", contains="4 messages; the limit is 3")


@pytest.mark.parametrize(
    ("message", "contains"),
    [
        ({"type": "bogus"}, "batch[2]: type must be one of"),
        (
            {"type": "track", "event": "Ok", "properties": [1]},
            "batch[2]: data must be a JSON object",
        ),
        ({"type": "track", "event": "Ok", "timestamp": "yesterday"}, "batch[2]: timestamp is not"),
        ("not an object", "batch[2]: a message must be a JSON object"),
    ],
)
def test_one_bad_message_fails_the_batch_naming_its_index(client, keys, message, contains):
    batch = [track(0), track(1), message, track(3)]
    response = post(client, f"{SEGMENT}/batch", {"batch": batch}, key="wk_web")
    assert_error(response, 400, "invalid_message", contains=contains)


@pytest.mark.parametrize(
    ("body", "contains"),
    [
        (b"{not json", "JSON parse error"),
        (b'{"batch": [{"type": "track", "event": "x", "properties": {"v": NaN}}]}', "JSON parse"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b'{"batch": []}', "non-empty list"),
        (b"[1, 2]", "Expected a JSON object"),
        (b"\x1f\x8b\x08garbage", "not valid gzip"),
    ],
)
def test_malformed_body_is_400(client, keys, body, contains):
    response = post(client, f"{SEGMENT}/batch", body, key="wk_web")
    assert_error(response, 400, "invalid_request", contains=contains)


def test_throttled_is_429_with_retry_after(client, engagement_settings, no_tracking):
    engagement_settings.update(WRITE_KEYS={"wk_slow": {"source": "web", "throttle_rate": "2/min"}})
    for n in range(2):
        assert post(client, f"{SEGMENT}/track", track(n), key="wk_slow").status_code == 200
    response = post(client, f"{SEGMENT}/track", track(9), key="wk_slow")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Event().objects.count() == 2


# -- CORS ------------------------------------------------------------------------------


def test_cors_preflight_for_allowed_origins(client, keys, engagement_settings):
    engagement_settings.update(SDK_CORS_ORIGINS=["https://app.example"])
    for path in (f"{SEGMENT}/b", f"{SEGMENT}/t", f"{POSTHOG}/e/", f"{POSTHOG}/flags/"):
        response = client.options(
            path,
            HTTP_ORIGIN="https://app.example",
            HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
            HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
        )
        assert response.status_code == 204
        assert response["Access-Control-Allow-Origin"] == "https://app.example"
        assert response["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
        assert "POST" in response["Access-Control-Allow-Methods"]
    response = client.options(f"{SEGMENT}/b", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    response = post(
        client, f"{SEGMENT}/t", track(), key="wk_web", HTTP_ORIGIN="https://app.example"
    )
    assert response["Access-Control-Allow-Origin"] == "https://app.example"


# -- mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("Order Completed", "order_completed"),
        ("$pageview", "pageview"),
        ("checkoutStarted", "checkout_started"),
        ("  Add to cart!! ", "add_to_cart"),
        ("404 seen", "e_404_seen"),
        ("video.play:start", "video.play:start"),
        ("x" * 80, "x" * 64),
    ],
)
def test_normalize_event_type(name, code):
    assert normalize_event_type(name) == code


def test_event_types_listed_are_kept_as_given(client, keys, engagement_settings):
    engagement_settings.update(EVENT_TYPES=["Order Completed", "clicked"])
    response = post(
        client,
        f"{SEGMENT}/batch",
        {"batch": [track(0, event="Order Completed"), track(1, event="Clicked")]},
        key="wk_web",
    )
    assert response.status_code == 200, response.content
    assert sorted(Event().objects.values_list("event_type", flat=True)) == [
        "Order Completed",
        "clicked",
    ]
    response = post(client, f"{SEGMENT}/t", track(2, event="Other"), key="wk_web")
    assert response.status_code == 400
    assert "batch[0]: Unknown event type 'other'" in response.json()["message"]


def upper_normalizer(name):
    return "custom_" + name.lower().replace(" ", "")


def test_normalizer_is_replaceable(client, keys, engagement_settings):
    engagement_settings.update(SDK_EVENT_TYPE_NORMALIZER="tests.test_sdk_protocol.upper_normalizer")
    post(client, f"{SEGMENT}/t", track(0, event="Big Win"), key="wk_web")
    assert list(Event().objects.values_list("event_type", flat=True)) == ["custom_bigwin"]


def test_timestamp_is_corrected_for_clock_skew(client, keys, monkeypatch):
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    monkeypatch.setattr("django_engagement.services.sdk.timezone.now", lambda: now)
    # The client's clock is 1 hour fast: it sent at 13:00 an event of 12:59:50 (its time).
    body = {
        "batch": [track(0, timestamp="2026-05-01T13:59:50Z"), track(1)],
        "sentAt": "2026-05-01T14:00:00Z",
    }
    post(client, f"{SEGMENT}/batch", body, key="wk_web")
    rows = dict(Event().objects.values_list("data__n", "created_at"))
    assert rows == {0: now - timedelta(seconds=10), 1: now}
    # Without sentAt the timestamp is taken as is, but never in the future.
    post(client, f"{SEGMENT}/t", track(2, timestamp="2026-05-01T11:00:00+00:00"), key="wk_web")
    post(client, f"{SEGMENT}/t", track(3, timestamp="2026-05-02T11:00:00+00:00"), key="wk_web")
    rows = dict(Event().objects.values_list("data__n", "created_at"))
    assert rows[2] == now - timedelta(hours=1)
    assert rows[3] == now


def test_ip_and_user_agent_from_context_anonymised(client, keys):
    message = track(0, context={"ip": "203.0.113.77", "userAgent": "Browser/1.0"})
    post(client, f"{SEGMENT}/t", message, key="wk_web", REMOTE_ADDR="198.51.100.9")
    post(
        client,
        f"{SEGMENT}/t",
        track(1),
        key="wk_web",
        REMOTE_ADDR="198.51.100.9",
        HTTP_USER_AGENT="server-sdk/2",
    )
    rows = dict(Event().objects.values_list("data__n", "ip_address"))
    assert rows == {0: "203.0.113.0", 1: "198.51.100.0"}
    agents = dict(Event().objects.values_list("data__n", "user_agent"))
    assert agents == {0: "Browser/1.0", 1: "server-sdk/2"}


def test_retried_batch_stores_nothing_twice(client, keys):
    body = {"batch": [track(n) for n in range(5)]}
    for _ in range(3):
        assert post(client, f"{SEGMENT}/batch", body, key="wk_web").status_code == 200
    assert Event().objects.count() == 5


def test_identify_links_earlier_and_later_anonymous_events(client, keys, user_factory):
    user = user_factory(username="carol")
    post(client, f"{SEGMENT}/t", track(0), key="wk_web")
    post(client, f"{SEGMENT}/t", track(1, anonymousId="someone-else"), key="wk_web")
    identify = {"type": "identify", "userId": str(user.pk), "anonymousId": "anon-1"}
    post(client, f"{SEGMENT}/identify", identify, key="wk_web")
    post(client, f"{SEGMENT}/t", track(2), key="wk_web")
    post(client, f"{SEGMENT}/t", track(3, userId="no-such-user", anonymousId=None), key="wk_web")
    rows = Event().objects.values_list("event_type", "data__n", "user_id", "anonymous_id")
    assert sorted(rows, key=str) == sorted(
        [
            ("viewed_item", 0, user.pk, "anon-1"),
            ("viewed_item", 1, None, "someone-else"),
            ("identify", None, user.pk, "anon-1"),
            ("viewed_item", 2, user.pk, "anon-1"),
            ("viewed_item", 3, None, "no-such-user"),
        ],
        key=str,
    )


def test_identify_drops_an_anonymous_copy_of_a_message_the_user_already_has(
    client, keys, user_factory
):
    """The same messageId stored once for the user and once anonymously (a retry that
    raced the link): linking the anonymous id keeps one event instead of a 500."""
    user = user_factory(username="erin")
    post(client, f"{SEGMENT}/t", track(0, userId=str(user.pk), anonymousId=None), key="wk_web")
    post(client, f"{SEGMENT}/t", track(0), key="wk_web")  # the same messageId, anonymous
    assert Event().objects.count() == 2
    identify = {"type": "identify", "userId": str(user.pk), "anonymousId": "anon-1"}

    response = post(client, f"{SEGMENT}/identify", identify, key="wk_web")

    assert response.status_code == 200, response.content
    rows = Event().objects.values_list("event_type", "data__n", "user_id", "anonymous_id")
    assert sorted(rows, key=str) == sorted(
        [("viewed_item", 0, user.pk, ""), ("identify", None, user.pk, "anon-1")], key=str
    )


def test_user_field_is_configurable(client, keys, engagement_settings, user_factory):
    user = user_factory(username="dave", email="dave@example.com")
    engagement_settings.update(SDK_USER_FIELD="email")
    post(client, f"{SEGMENT}/t", track(0, userId="dave@example.com"), key="wk_web")
    assert list(Event().objects.values_list("user_id", flat=True)) == [user.pk]


FAN_OUT_RULES = {"viewed_item": {"activity_type": "event", "title": "Viewed"}}


def test_backfilled_events_do_not_fan_out(client, keys, engagement_settings, user_factory):
    user = user_factory(username="erin")
    engagement_settings.update(FEED_RULES=FAN_OUT_RULES)
    pk = str(user.pk)
    now = timezone.now()
    old = (now - timedelta(days=3)).isoformat()
    recent = (now - timedelta(minutes=1)).isoformat()
    ph = {"event": "Viewed Item", "distinct_id": pk}
    post(
        client,
        f"{POSTHOG}/batch/",
        {
            "api_key": "phc_android",
            "historical_migration": True,
            "batch": [{**ph, "uuid": "h-1", "properties": {"n": 1}, "timestamp": recent}],
        },
    )
    post(
        client,
        f"{POSTHOG}/batch/",
        {
            "api_key": "phc_android",
            "batch": [
                {**ph, "uuid": "o-1", "properties": {"n": 2}, "timestamp": old},
                {**ph, "uuid": "l-1", "properties": {"n": 3}, "timestamp": recent},
            ],
        },
    )
    assert Event().objects.filter(user=user).count() == 3
    fed = get_feed_model().objects.filter(user=user).values_list("event__data__n", flat=True)
    assert list(fed) == [3]


def test_posthog_form_base64_and_properties(client, keys, user_factory):
    user = user_factory(username="fay")
    events = [
        {
            "event": "$pageview",
            "uuid": "p-1",
            "properties": {
                "token": "phc_android",
                "distinct_id": "dev-1",
                "$device_id": "dev-1",
                "$current_url": "http://site/a",
                "$browser": "Chrome",
                "$ip": "203.0.113.5",
                "plan": "pro",
            },
        },
        {
            "event": "$identify",
            "uuid": "p-2",
            "$set": {"email": "fay@example.com"},
            "properties": {
                "token": "phc_android",
                "distinct_id": str(user.pk),
                "$anon_distinct_id": "dev-1",
                "$device_id": "dev-1",
            },
        },
    ]
    data = base64.b64encode(json.dumps(events).encode()).decode()
    response = client.post(
        f"{POSTHOG}/e/", urlencode({"data": data}), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200, response.content
    rows = (
        Event()
        .objects.order_by("pk")
        .values_list("event_type", "user_id", "anonymous_id", "data", "ip_address")
    )
    assert list(rows) == [
        (
            "page_view",
            user.pk,
            "dev-1",
            {"$current_url": "http://site/a", "plan": "pro"},
            "203.0.113.0",
        ),
        ("identify", user.pk, "dev-1", {"email": "fay@example.com"}, "127.0.0.0"),
    ]


def test_posthog_flags_and_config(client, keys):
    response = post(client, f"{POSTHOG}/flags/?v=2", {"token": "phc_android", "distinct_id": "d"})
    assert response.status_code == 200
    assert response.json()["featureFlags"] == {}
    response = client.get(f"{POSTHOG}/array/phc_android/config")
    assert response.status_code == 200
    assert response.json()["sessionRecording"] is False
    assert client.get(f"{POSTHOG}/array/phc_nope/config").status_code == 401


def test_disabled_answers_200_and_stores_nothing(client, keys, engagement_settings):
    engagement_settings.update(ENABLED=False)
    response = post(client, f"{SEGMENT}/batch", {"batch": [track()]}, key="wk_web")
    assert response.status_code == 200
    assert Event().objects.count() == 0


def test_write_keys_fixture_is_the_documented_shape():
    assert all(set(options) <= {"source", "throttle_rate"} for options in WRITE_KEYS.values())


def test_a_naive_sdk_timestamp_is_read_as_utc():
    """Found by mypy: ``timezone.utc`` is gone since Django 5.0 (an AttributeError, a 500)."""
    from datetime import UTC, datetime

    from django_engagement.services.sdk import _parse_time

    assert _parse_time("2024-01-15T10:30:00", "timestamp") == datetime(
        2024, 1, 15, 10, 30, tzinfo=UTC
    )
