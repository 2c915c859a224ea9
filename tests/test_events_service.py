"""record_event / record_events / request_context / anonymize_ip."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from django_engagement import record_event, record_events
from django_engagement.models import get_event_model, get_feed_model
from django_engagement.services.events import anonymize_ip, request_context, store_events
from django_engagement.signals import event_recorded
from django_engagement.validators import PayloadTooLarge
from tests.helpers import events
from tests.testapp.models import Course

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


def make_request(user=None, ip="203.0.113.77", agent="Mozilla/5.0"):
    request = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_USER_AGENT=agent)
    if user is not None:
        request.user = user
    return request


def event_inserts(queries) -> int:
    table = get_event_model()._meta.db_table
    return sum(f'INTO "{table}"' in query["sql"] for query in queries.captured_queries)


# -- record_event ----------------------------------------------------------------------


def test_record_event_stores_every_field(user, campaign):
    happened = datetime(2026, 1, 4, 10, 30, tzinfo=UTC)
    event = record_event(
        "page_view",
        user=user,
        target=campaign,
        data={"page": "home"},
        source="web",
        anonymous_id="anon-1",
        title="Home",
        description="Viewed home",
        timestamp=happened,
        idempotency_key="key-1",
    )
    stored = events().get()
    assert stored.pk == event.pk
    assert (stored.event_type, stored.user, stored.source) == ("page_view", user, "web")
    assert (stored.anonymous_id, stored.title, stored.description) == (
        "anon-1",
        "Home",
        "Viewed home",
    )
    assert stored.data == {"page": "home"}
    assert stored.target == campaign
    assert stored.target_object_id == str(campaign.pk)
    assert stored.created_at == happened
    assert stored.idempotency_key == "key-1"
    assert stored.ip_address is None
    assert isinstance(stored.uuid, uuid.UUID)


def test_record_event_defaults():
    event = record_event("app_opened")
    assert (event.source, event.data, event.user_id, event.anonymous_id) == ("server", {}, None, "")
    assert event.idempotency_key is None
    assert event.target_content_type_id is None


def test_int_target_and_naive_timestamp(settings):
    course = Course.objects.create(title="Intro")
    event = record_event("course_viewed", target=course, timestamp=datetime(2026, 3, 1, 12, 0))
    event.refresh_from_db()
    assert event.target == course
    assert event.target_object_id == str(course.pk)
    assert event.created_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_disabled_returns_none_and_stores_nothing(engagement_settings, user):
    engagement_settings.update(ENABLED=False)
    assert record_event("page_view", user=user) is None
    assert record_events([{"event_type": "page_view"}]) == []
    assert events().count() == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"event_type": "Bad Type"}, ValidationError, "Invalid event type 'Bad Type'"),
        # 64 characters and a newline: past the column's max_length (a DataError on PostgreSQL).
        ({"event_type": "a" * 64 + "\n"}, ValidationError, "Invalid event type"),
        ({"event_type": "page_view\n"}, ValidationError, "Invalid event type"),
        ({"event_type": "ok", "source": "fax"}, ValidationError, "Unknown source 'fax'"),
        ({"event_type": "ok", "data": ["x"]}, ValidationError, "data must be a JSON object"),
        ({"event_type": "ok", "title": "t" * 256}, ValidationError, "title is 256 characters"),
        (
            {"event_type": "ok", "data": {"blob": "x" * 3000}},
            PayloadTooLarge,
            "Event payload is 3011 bytes; the limit is 2048 bytes",
        ),
    ],
)
def test_validation_errors(kwargs, error, message):
    event_type = kwargs.pop("event_type")
    with pytest.raises(error, match=message):
        record_event(event_type, **kwargs)
    assert events().count() == 0


def test_event_types_setting_restricts_codes(engagement_settings):
    engagement_settings.update(EVENT_TYPES=["page_view"])
    assert record_event("page_view") is not None
    with pytest.raises(ValidationError, match="Unknown event type 'signup'"):
        record_event("signup")


def test_request_gives_user_ip_and_user_agent(user, other_user):
    event = record_event("page_view", request=make_request(user, agent="A" * 600))
    assert event.user == user
    assert event.ip_address == "203.0.113.0"
    assert event.user_agent == "A" * 512
    # An explicit user wins over the request's.
    assert record_event("page_view", user=other_user, request=make_request(user)).user == other_user


def test_request_with_anonymous_user(user):
    from django.contrib.auth.models import AnonymousUser

    event = record_event("page_view", request=make_request(AnonymousUser()))
    assert event.user is None
    assert event.ip_address == "203.0.113.0"


def test_ip_settings(engagement_settings, user):
    engagement_settings.update(ANONYMIZE_IP=False)
    assert record_event("page_view", request=make_request()).ip_address == "203.0.113.77"
    engagement_settings.update(CAPTURE_IP=False)
    assert record_event("page_view", request=make_request()).ip_address is None
    assert events().filter(ip_address__isnull=False).count() == 1


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("192.168.1.123", "192.168.1.0"),
        ("10.0.0.0", "10.0.0.0"),
        ("2001:db8:85a3:1234:5678:8a2e:370:7334", "2001:db8:85a3::"),
        ("::1", "::"),
    ],
)
def test_anonymize_ip(ip, expected):
    assert anonymize_ip(ip) == expected


def test_request_context(user):
    assert request_context(make_request(user, ip="not-an-ip")) == {
        "user": user,
        "ip_address": None,
        "user_agent": "Mozilla/5.0",
    }
    request = make_request(ip="2001:db8::1")
    assert request_context(request)["ip_address"] == "2001:db8::"
    assert request_context(request)["user"] is None


# -- idempotency -----------------------------------------------------------------------


def test_repeated_idempotency_key_returns_the_original(user, django_capture_on_commit_callbacks):
    received = []

    def listener(sender, events, created, **kwargs):
        received.append((sender, [event.pk for event in events], created))

    event_recorded.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = record_event("purchase", user=user, idempotency_key="order-9", data={"n": 1})
        with django_capture_on_commit_callbacks(execute=True):
            again = record_event("purchase", user=user, idempotency_key="order-9", data={"n": 2})
    finally:
        event_recorded.disconnect(listener)
    assert again.pk == first.pk
    assert again.data == {"n": 1}
    assert events().count() == 1
    assert received == [
        (get_event_model(), [first.pk], True),
        (get_event_model(), [first.pk], False),
    ]


def test_event_recorded_waits_for_commit(django_capture_on_commit_callbacks):
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    event_recorded.connect(listener)
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            record_event("page_view")
        assert received == []
        for callback in callbacks:
            callback()
    finally:
        event_recorded.disconnect(listener)
    assert len(received) == 1


# -- record_events ---------------------------------------------------------------------


def test_record_events_keeps_input_order_and_maps_keys(user):
    record_event("purchase", idempotency_key="dup")
    original = events().get()
    stored = record_events(
        [
            {"event_type": "a", "user": user},
            {"event_type": "b", "idempotency_key": "dup"},
            {"event_type": "c", "idempotency_key": "new"},
            {"event_type": "d", "idempotency_key": "new"},
            {"event_type": "e", "user": user.pk, "ip_address": "198.51.100.9", "user_agent": "UA"},
        ]
    )
    assert [event.event_type for event in stored] == ["a", "purchase", "c", "c", "e"]
    assert stored[1].pk == original.pk
    assert stored[2].pk == stored[3].pk
    assert all(event.pk for event in stored)
    assert events().count() == 4
    last = events().get(event_type="e")
    assert (last.user_id, last.ip_address, last.user_agent) == (user.pk, "198.51.100.0", "UA")


@pytest.mark.parametrize("keys", [False, True])
def test_record_events_one_insert_per_batch(engagement_settings, keys):
    engagement_settings.update(MAX_BATCH_SIZE=40)
    specs = [
        {
            "event_type": "page_view",
            "data": {"n": n},
            **({"idempotency_key": f"k{n}"} if keys else {}),
        }
        for n in range(100)
    ]
    with CaptureQueriesContext(connection) as queries:
        stored = record_events(specs)
    assert event_inserts(queries) == 3
    # With keys, each batch also reads back what is stored: one SELECT per batch.
    selects = sum(query["sql"].startswith("SELECT") for query in queries.captured_queries)
    assert selects == (3 if keys else 0)
    assert [event.data["n"] for event in stored] == list(range(100))
    assert events().count() == 100


def test_record_events_is_all_or_nothing_and_names_the_index():
    specs = [{"event_type": "ok"}, {"event_type": "ok"}, {"event_type": "BAD"}]
    with pytest.raises(ValidationError, match=r"events\[2\]: Invalid event type 'BAD'"):
        record_events(specs)
    with pytest.raises(PayloadTooLarge, match=r"events\[1\]: Event payload is"):
        record_events([{"event_type": "ok"}, {"event_type": "ok", "data": {"x": "y" * 3000}}])
    with pytest.raises(ValidationError, match=r"events\[0\]: Unknown event keys: request"):
        record_events([{"event_type": "ok", "request": None}])
    assert events().count() == 0


def test_store_events_reports_created():
    results = store_events([{"event_type": "a", "idempotency_key": "x"}])
    again = store_events([{"event_type": "a", "idempotency_key": "x"}, {"event_type": "b"}])
    assert [created for _, created in results] == [True]
    assert [created for _, created in again] == [False, True]
    assert again[0][0].pk == results[0][0].pk


def test_fan_out_runs_for_new_events_only(engagement_settings, user, campaign):
    first = record_event("target_joined", user=user, target=campaign, idempotency_key="j1")
    record_event("target_joined", user=user, target=campaign, idempotency_key="j1")
    assert list(get_feed_model()._default_manager.values_list("event_id", "activity_type")) == [
        (first.pk, "target_join")
    ]


def test_record_event_keys_are_scoped_to_the_user(user, other_user):
    """Issue 9.5: server code recording for another user never gets the first user's event."""
    first = record_event("purchase", user=user, idempotency_key="order-1")
    other = record_event("purchase", user=other_user, idempotency_key="order-1")
    server = record_event("purchase", idempotency_key="order-1")
    anonymous = record_event("purchase", anonymous_id="anon-1", idempotency_key="order-1")
    assert len({first.pk, other.pk, server.pk, anonymous.pk}) == 4
    assert record_event("purchase", user=str(user.pk), idempotency_key="order-1").pk == first.pk
    assert record_event("purchase", idempotency_key="order-1").pk == server.pk
    assert events().count() == 4


def test_record_events_maps_keys_per_scope(user, other_user):
    record_event("purchase", user=user, idempotency_key="k")
    original = events().get()
    results = store_events(
        [
            {"event_type": "a", "user": user, "idempotency_key": "k"},
            {"event_type": "b", "user": other_user, "idempotency_key": "k"},
            {"event_type": "c", "anonymous_id": "anon-1", "idempotency_key": "k"},
            {"event_type": "d", "user": other_user.pk, "idempotency_key": "k"},
            {"event_type": "e", "idempotency_key": "k"},
            {"event_type": "f", "anonymous_id": "anon-1", "idempotency_key": "k"},
        ]
    )
    stored = [(event.event_type, created) for event, created in results]
    assert stored == [
        ("purchase", False),
        ("b", True),
        ("c", True),
        ("b", False),
        ("e", True),
        ("c", False),
    ]
    assert results[0][0].pk == original.pk
    assert events().count() == 4


# -- concurrency (PostgreSQL) ------------------------------------------------------------


def run_concurrently(count: int, action) -> tuple[list, list]:
    """Run ``action`` in ``count`` threads released together; return (results, errors)."""
    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(action())
        except Exception as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_idempotent_records_store_one_event():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    results, errors = run_concurrently(
        8, lambda: record_event("purchase", idempotency_key="race", data={"t": 1}).pk
    )
    assert errors == []
    assert events().count() == 1
    assert set(results) == {events().get().pk}


@pytest.mark.django_db(transaction=True)
def test_concurrent_bulk_with_shared_keys():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    specs = [{"event_type": "sync", "idempotency_key": f"item-{n}"} for n in range(50)]
    results, errors = run_concurrently(4, lambda: [event.pk for event in record_events(specs)])
    assert errors == []
    assert events().count() == 50
    assert len({tuple(pks) for pks in results}) == 1


def test_timestamp_must_be_a_datetime():
    with pytest.raises(ValidationError, match="timestamp must be a datetime"):
        record_event("x", timestamp="2026-01-01")
    assert record_event("x", timestamp=datetime.now(UTC) - timedelta(days=3))


def test_anonymous_request_user_records_no_user(db):
    from django.contrib.auth.models import AnonymousUser

    event = record_event("page_view", user=AnonymousUser(), anonymous_id="anon-9")
    event.refresh_from_db()
    assert event.user_id is None
    assert event.anonymous_id == "anon-9"
