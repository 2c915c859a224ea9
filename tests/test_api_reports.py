"""The admin report endpoints under reports/."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_engagement.models import EventAggregateDaily, get_event_model
from django_engagement.services import aggregation, reports
from django_engagement.services.aggregation import aggregate_daily
from django_engagement.services.dashboard import build_dashboard

DAY = date(2026, 1, 4)
UTC = ZoneInfo("UTC")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


def url(name: str) -> str:
    return reverse(f"django_engagement:engagement-reports-{name}")


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


@pytest.fixture
def events(user, other_user):
    """Jan 4: 5 page_view (alice x2, bob with anon id a-1, anonymous a-1 and a-2),
    2 booking_created (alice, nobody), 1 service_search (anonymous a-3); Jan 3: 2 events."""
    Event = get_event_model()
    rows = [
        ("page_view", "web", user, "", {"page": "home"}, at(DAY, 8)),
        ("page_view", "android", user, "", {"page": "jobs"}, at(DAY, 9)),
        ("page_view", "web", other_user, "a-1", {"page": "home"}, at(DAY, 10)),
        ("page_view", "web", None, "a-1", {"page": "home"}, at(DAY, 11)),
        ("page_view", "ios", None, "a-2", {"page": None}, at(DAY, 12)),
        ("booking_created", "web", user, "", {"service_id": "456", "n": 1}, at(DAY, 13)),
        ("booking_created", "web", None, "", {"service_id": "789"}, at(DAY, 14)),
        ("service_search", "web", None, "a-3", {"service_id": "456"}, at(DAY, 23, 59)),
        ("page_view", "web", user, "", {"page": "home"}, at(DAY - timedelta(days=1), 9)),
        ("booking_created", "web", user, "", {"service_id": 456}, at(DAY - timedelta(days=1), 9)),
    ]
    return Event.objects.bulk_create(
        [
            Event(
                event_type=kind,
                source=source,
                user=owner,
                anonymous_id=anon,
                data=data,
                created_at=when,
                ip_address="203.0.113.0" if owner else None,
            )
            for kind, source, owner, anon, data, when in rows
        ]
    )


SUMMARY = {
    "date": "2026-01-04",
    "total_events": 8,
    "unique_users": 2,
    "unique_anonymous": 3,
    "events_by_type": {"page_view": 5, "booking_created": 2, "service_search": 1},
}
ACTIVE = {"date": "2026-01-04", "daily_active_users": 2, "unique_anonymous": 3, "total_active": 5}


# --- daily summary and active users ----------------------------------------------------


def test_daily_summary_from_raw_events(admin_client_api, events, django_assert_max_num_queries):
    # Is the day aggregated (twice: totals, per-type), then the raw totals and per-type groups.
    with django_assert_max_num_queries(4):
        response = admin_client_api.get(url("daily-summary"), {"date": "2026-01-04"})

    assert response.status_code == 200
    assert response.json() == SUMMARY
    assert list(response.json()["events_by_type"]) == [
        "page_view",
        "booking_created",
        "service_search",
    ]


def test_daily_summary_from_aggregates_gives_the_same_numbers(
    admin_client_api, events, django_assert_num_queries
):
    aggregate_daily(DAY)
    # Once aggregated, raw events no longer matter: the stored rows answer (the day's
    # total, which days are whole, their per-type rows).
    get_event_model().objects.all().delete()

    with django_assert_num_queries(3):
        response = admin_client_api.get(url("daily-summary"), {"date": "2026-01-04"})

    assert response.json() == SUMMARY


def test_active_users_raw_and_aggregated_agree(admin_client_api, events):
    raw = admin_client_api.get(url("active-users"), {"date": "2026-01-04"}).json()
    aggregate_daily(DAY)
    get_event_model().objects.all().delete()
    stored = admin_client_api.get(url("active-users"), {"date": "2026-01-04"}).json()

    assert raw == stored == ACTIVE


def test_day_without_events_is_all_zero(admin_client_api, events):
    response = admin_client_api.get(url("daily-summary"), {"date": "2025-06-01"})

    assert response.json() == {
        "date": "2025-06-01",
        "total_events": 0,
        "unique_users": 0,
        "unique_anonymous": 0,
        "events_by_type": {},
    }


def test_date_defaults_to_today_in_time_zone(admin_client_api, events, monkeypatch):
    monkeypatch.setattr(aggregation.timezone, "now", lambda: at(DAY, 18))

    assert admin_client_api.get(url("active-users")).json() == ACTIVE


def test_aggregates_without_day_totals_fall_back_to_raw_events(admin_client_api, events):
    EventAggregateDaily.objects.create(date=DAY, event_type="page_view", source="web", count=99)

    assert admin_client_api.get(url("daily-summary"), {"date": "2026-01-04"}).json() == SUMMARY


# --- top values --------------------------------------------------------------------------


def test_top_values_of_a_payload_key(admin_client_api, events, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        response = admin_client_api.get(
            url("top"), {"key": "service_id", "date_from": "2026-01-03", "date_to": "2026-01-04"}
        )

    assert response.status_code == 200
    assert response.json() == {
        "key": "service_id",
        "date_from": "2026-01-03",
        "date_to": "2026-01-04",
        "limit": 20,
        # Values are text: the number 456 of Jan 3 counts with the string "456".
        "top": [{"value": "456", "count": 3}, {"value": "789", "count": 1}],
    }


def test_top_values_skip_json_null_and_honour_limit(admin_client_api, events):
    response = admin_client_api.get(
        url("top"), {"key": "page", "date_from": "2026-01-04", "date_to": "2026-01-04", "limit": 1}
    )

    assert response.json()["top"] == [{"value": "home", "count": 3}]


def test_top_values_default_range_is_thirty_days_to_today(admin_client_api, events, monkeypatch):
    monkeypatch.setattr(aggregation.timezone, "now", lambda: at(DAY + timedelta(days=29), 12))

    body = admin_client_api.get(url("top"), {"key": "service_id"}).json()

    assert (body["date_from"], body["date_to"]) == ("2026-01-04", "2026-02-02")
    assert body["top"] == [{"value": "456", "count": 2}, {"value": "789", "count": 1}]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "key"),
        ({"key": "a-b"}, "key"),
        ({"key": "x" * 65}, "key"),
        ({"key": "page", "limit": 0}, "limit"),
        ({"key": "page", "limit": 101}, "limit"),
        ({"key": "page", "limit": "many"}, "limit"),
        ({"key": "page", "date_from": "2026-02-30"}, "date_from"),
        ({"key": "page", "date_to": "04/01/2026"}, "date_to"),
        ({"key": "page", "date_from": "2026-01-05", "date_to": "2026-01-04"}, "date_from"),
        # Days whose bounds a datetime cannot hold are a 400, not an OverflowError.
        ({"key": "page", "date_to": "9999-12-31"}, "date_to"),
        ({"key": "page", "date_to": "0001-01-05"}, "date_from"),
    ],
)
def test_top_values_bad_parameters_are_400_naming_them(admin_client_api, params, field):
    response = admin_client_api.get(url("top"), params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


# --- CSV export ----------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_export_streams_csv_with_the_seed_columns(
    admin_client_api, events, user, django_assert_max_num_queries
):
    with django_assert_max_num_queries(1):
        response = admin_client_api.get(url("export"), {"date": "2026-01-04"})
        rows = read_csv(response)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="events-2026-01-04.csv"'
    assert rows[0] == [
        "id",
        "created_at",
        "event_type",
        "user_id",
        "anonymous_id",
        "source",
        "ip_address",
        "payload",
    ]
    assert len(rows) == 9
    booking = events[5]
    assert rows[3] == [
        str(booking.uuid),
        "2026-01-04T13:00:00Z",
        "booking_created",
        str(user.pk),
        "",
        "web",
        "203.0.113.0",
        '{"n":1,"service_id":"456"}',
    ]
    # Newest first; anonymous events have empty user_id and ip_address.
    assert rows[1][2:] == ["service_search", "", "a-3", "web", "", '{"service_id":"456"}']
    assert json.loads(rows[-1][7]) == {"page": "home"}


def test_export_filters_by_event_type_and_limit(admin_client_api, events):
    response = admin_client_api.get(url("export"), {"event_type": "booking_created", "limit": 2})
    rows = read_csv(response)

    assert (
        response["Content-Disposition"] == 'attachment; filename="events-all-booking_created.csv"'
    )
    assert [row[1] for row in rows[1:]] == [
        "2026-01-04T14:00:00Z",
        "2026-01-04T13:00:00Z",
    ]


def test_export_of_a_day_without_events_is_the_header_only(admin_client_api, events):
    response = admin_client_api.get(url("export"), {"date": "2025-06-01"})

    assert read_csv(response) == [list(reports.EXPORT_COLUMNS)]


def test_export_accepts_a_csv_accept_header(admin_client_api, events):
    response = admin_client_api.get(url("export"), {"limit": 1}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    assert len(read_csv(response)) == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date": "2026-1-4x"}, "date"),
        ({"date": "9999-12-31"}, "date"),
        ({"limit": 0}, "limit"),
        ({"limit": 1_000_001}, "limit"),
        ({"event_type": "bad type!"}, "event_type"),
    ],
)
def test_export_bad_parameters_are_400_naming_them(admin_client_api, params, field):
    response = admin_client_api.get(url("export"), params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize("name", ["daily-summary", "active-users"])
def test_day_out_of_range_is_400(admin_client_api, name):
    response = admin_client_api.get(url(name), {"date": "9999-12-31"})

    assert response.status_code == 400
    assert response.json() == {"date": ["Date out of range."]}


# --- dashboard -------------------------------------------------------------------------------


def test_dashboard_returns_build_dashboard(admin_client_api, events):
    response = admin_client_api.get(url("dashboard"), {"days": 30})

    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(build_dashboard(30)))
    assert admin_client_api.get(url("dashboard")).json()["days"] == 7


@pytest.mark.parametrize("days", ["0", "366", "week"])
def test_dashboard_bad_days_is_400(admin_client_api, days):
    response = admin_client_api.get(url("dashboard"), {"days": days})

    assert response.status_code == 400
    assert list(response.json()) == ["days"]


# --- query counts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("daily-summary", {"date": "2026-01-04"}),
        ("active-users", {"date": "2026-01-04"}),
        ("top", {"key": "page", "date_from": "2026-01-01", "date_to": "2026-01-04"}),
        ("export", {"date": "2026-01-04"}),
        ("dashboard", {"days": 7}),
    ],
)
def test_query_count_does_not_grow_with_the_data(
    admin_client_api, events, user_factory, name, params
):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = admin_client_api.get(url(name), params)
            if isinstance(response, StreamingHttpResponse):
                b"".join(response.streaming_content)
        assert response.status_code == 200
        return len(queries)

    before = count_queries()
    Event = get_event_model()
    Event.objects.bulk_create(
        Event(
            event_type=f"type_{n % 7}",
            user=user_factory(),
            anonymous_id=f"x-{n}",
            data={"page": f"p{n % 3}"},
            created_at=at(DAY, n % 24),
        )
        for n in range(30)
    )

    assert count_queries() == before


# --- permissions ---------------------------------------------------------------------------


ENDPOINTS = ["daily-summary", "active-users", "top", "export", "dashboard"]


@pytest.mark.parametrize("name", ENDPOINTS)
def test_non_admins_are_refused(auth_client, api_client, name):
    assert auth_client.get(url(name), {"key": "page"}).status_code == 403
    assert api_client.get(url(name), {"key": "page"}).status_code in (401, 403)


@pytest.mark.parametrize("name", ENDPOINTS)
def test_permission_classes_are_read_on_each_request(auth_client, engagement_settings, name):
    engagement_settings.update(
        REPORT_PERMISSION_CLASSES=["rest_framework.permissions.IsAuthenticated"]
    )

    assert auth_client.get(url(name), {"key": "page"}).status_code == 200
