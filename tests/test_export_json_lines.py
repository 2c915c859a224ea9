"""reports/export/ as JSON Lines (issue 15, item 4): ``?format=json`` (or ``jsonl``, or
``Accept: application/x-ndjson``), streamed, one event object a line."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.http import StreamingHttpResponse
from django.urls import reverse

from django_engagement.models import get_event_model
from django_engagement.services import json_lines
from django_engagement.services.json_lines import json_lines_chunks
from tests import test_api_reports
from tests.test_api_reports import at

#: The seeded events of the report tests (Jan 3 and 4, 2026), as a fixture here too.
events = test_api_reports.events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

URL = reverse("django_engagement:engagement-reports-export")


def lines(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode()
    assert body == "" or body.endswith("\n")
    return [json.loads(line) for line in body.splitlines()]


def test_format_json_streams_json_lines(
    admin_client_api, events, user, django_assert_max_num_queries
):
    with django_assert_max_num_queries(1):
        response = admin_client_api.get(URL, {"date": "2026-01-04", "format": "json"})
        records = lines(response)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"] == 'attachment; filename="events-2026-01-04.jsonl"'
    assert len(records) == 8
    booking = events[5]
    assert records[2] == {
        "id": str(booking.uuid),
        "created_at": "2026-01-04T13:00:00Z",
        "event_type": "booking_created",
        "user_id": user.pk,
        "anonymous_id": "",
        "source": "web",
        "ip_address": "203.0.113.0",
        "payload": {"n": 1, "service_id": "456"},
    }
    # Newest first; anonymous events have null user_id and ip_address.
    assert records[0] | {"id": None} == {
        "id": None,
        "created_at": "2026-01-04T23:59:00Z",
        "event_type": "service_search",
        "user_id": None,
        "anonymous_id": "a-3",
        "source": "web",
        "ip_address": None,
        "payload": {"service_id": "456"},
    }
    assert records[-1]["payload"] == {"page": "home"}


@pytest.mark.parametrize(
    ("query", "headers"),
    [({"format": "jsonl"}, {}), ({}, {"HTTP_ACCEPT": "application/x-ndjson"})],
)
def test_jsonl_and_the_accept_header_pick_json_lines_too(admin_client_api, events, query, headers):
    response = admin_client_api.get(URL, {"event_type": "booking_created", **query}, **headers)

    assert response["Content-Type"] == "application/x-ndjson"
    assert [r["created_at"] for r in lines(response)] == [
        "2026-01-04T14:00:00Z",
        "2026-01-04T13:00:00Z",
        "2026-01-03T09:00:00Z",
    ]


def test_csv_stays_the_default_and_format_csv_asks_for_it(admin_client_api, events):
    for query in ({"limit": 1}, {"limit": 1, "format": "csv"}):
        response = admin_client_api.get(URL, query)
        assert response["Content-Type"] == "text/csv; charset=utf-8"


def test_a_day_without_events_is_an_empty_body(admin_client_api, events):
    response = admin_client_api.get(URL, {"date": "2025-06-01", "format": "json"})

    assert (response.status_code, lines(response)) == (200, [])


@pytest.mark.parametrize(("value", "status"), [("xml", 400), ("", 400)])
def test_an_unknown_format_is_a_400_naming_it(admin_client_api, value, status):
    response = admin_client_api.get(URL, {"format": value})

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert list(response.json()) == ["format"]


def test_text_with_newlines_and_formula_characters_stays_one_line(admin_client_api, user):
    get_event_model().objects.create(
        event_type="note",
        user=user,
        anonymous_id="=cmd|' /C calc'!A0",
        data={"text": "two\nlines\r\nand \u2028 \u2029 \x85 separators"},
        created_at=at(date(2026, 1, 4), 9),
    )
    response = admin_client_api.get(URL, {"format": "json"})

    [record] = lines(response)
    # JSON is data, not a spreadsheet: no formula quote, the values exactly as stored.
    assert record["anonymous_id"] == "=cmd|' /C calc'!A0"
    assert record["payload"] == {"text": "two\nlines\r\nand \u2028 \u2029 \x85 separators"}


def test_records_stream_in_bounded_chunks(monkeypatch):
    monkeypatch.setattr(json_lines, "LINES_PER_CHUNK", 3)
    records = ({"n": n} for n in range(8))

    chunks = list(json_lines_chunks(records))

    assert [chunk.count("\n") for chunk in chunks] == [3, 3, 2]
    assert chunks[0] == '{"n":0}\n{"n":1}\n{"n":2}\n'
