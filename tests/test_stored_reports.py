"""Stored reports (issue 15, item 1): the service, the generate_reports command, the
reports/saved/ API, and the lifecycle with a real Celery worker on Redis."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from datetime import date
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.management import CommandError, call_command
from django.db import connections
from django.urls import reverse

from django_engagement.models import Report, get_event_model
from django_engagement.services import stored_reports
from django_engagement.services.engagement_report import build_engagement_report
from django_engagement.services.stored_reports import (
    ReportRequestError,
    ReportSpec,
    due_reports,
    generate_report,
    resolve_report,
)
from tests import test_api_reports
from tests.conftest import require_service
from tests.helpers import celery_worker_thread, redis_available, wait_for
from tests.test_api_reports import SUMMARY

REDIS_URL = "redis://127.0.0.1:6379/14"

#: The seeded events of the report tests (Jan 3 and 4, 2026), as a fixture here too.
events = test_api_reports.events

pytestmark = [pytest.mark.usefixtures("no_tracking")]

#: The ISO week 2026-W01 (Mon 2025-12-29 .. Sun 2026-01-04) of the ``events`` fixture.
WEEKLY = {
    "date_from": "2025-12-29",
    "date_to": "2026-01-04",
    "total_events": 10,
    "unique_users": 2,
    "unique_anonymous": 3,
    "events_by_type": {"page_view": 6, "booking_created": 3, "service_search": 1},
    "events_per_day": [
        {"date": "2025-12-29", "count": 0},
        {"date": "2025-12-30", "count": 0},
        {"date": "2025-12-31", "count": 0},
        {"date": "2026-01-01", "count": 0},
        {"date": "2026-01-02", "count": 0},
        {"date": "2026-01-03", "count": 2},
        {"date": "2026-01-04", "count": 8},
    ],
    "top_targets": [],
}


def weekly(alice, bob) -> dict[str, Any]:
    """``WEEKLY`` with its top users (their ids depend on the users the test made)."""
    top = [
        {"user_id": alice.pk, "username": "alice", "count": 5},
        {"user_id": bob.pk, "username": "bob", "count": 1},
    ]
    return {**WEEKLY, "top_users": top}


def saved_url(name: str = "list", *args: Any) -> str:
    return reverse(f"django_engagement:engagement-reports-saved-{name}", args=args)


# -- periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report_type", "day", "period", "title"),
    [
        (
            "daily_summary",
            date(2026, 1, 4),
            ("2026-01-04", "2026-01-04"),
            "Daily summary 2026-01-04",
        ),
        (
            "weekly_summary",
            date(2026, 1, 1),
            ("2025-12-29", "2026-01-04"),
            "Weekly summary 2026-W01",
        ),
        (
            "monthly_summary",
            date(2024, 2, 10),
            ("2024-02-01", "2024-02-29"),
            "Monthly summary 2024-02",
        ),
        (
            "engagement_report",
            date(2026, 1, 4),
            ("2026-01-04", "2026-01-04"),
            "Engagement report 2026-01-04",
        ),
    ],
)
def test_a_date_picks_the_period_it_falls_in(report_type, day, period, title):
    spec = resolve_report(report_type, day=day)

    assert (spec.period_start.isoformat(), spec.period_end.isoformat()) == period
    assert spec.title == title
    assert spec.parameters == {}


def test_a_range_is_taken_as_given():
    spec = resolve_report("weekly_summary", start=date(2026, 1, 2), end=date(2026, 1, 5))

    assert (spec.period_start, spec.period_end) == (date(2026, 1, 2), date(2026, 1, 5))
    assert spec.title == "Weekly summary 2026-01-02 to 2026-01-05"


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        ("2026-03-03", [("daily_summary", "2026-03-02", "2026-03-02")]),
        (  # a Monday
            "2026-03-02",
            [
                ("daily_summary", "2026-03-01", "2026-03-01"),
                ("weekly_summary", "2026-02-23", "2026-03-01"),
            ],
        ),
        (  # a Sunday, the 1st
            "2026-03-01",
            [
                ("daily_summary", "2026-02-28", "2026-02-28"),
                ("monthly_summary", "2026-02-01", "2026-02-28"),
            ],
        ),
        (  # a Monday, the 1st
            "2027-02-01",
            [
                ("daily_summary", "2027-01-31", "2027-01-31"),
                ("weekly_summary", "2027-01-25", "2027-01-31"),
                ("monthly_summary", "2027-01-01", "2027-01-31"),
            ],
        ),
    ],
)
def test_the_schedule_owes_yesterday_last_week_on_mondays_last_month_on_the_first(on, expected):
    specs = due_reports(date.fromisoformat(on))

    assert [
        (s.report_type, s.period_start.isoformat(), s.period_end.isoformat()) for s in specs
    ] == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"report_type": "hourly"}, "report_type", "report_type must be one of"),
        (
            {"report_type": "daily_summary", "start": date(2026, 1, 1), "end": date(2026, 1, 2)},
            "start",
            "daily_summary covers one day",
        ),
        (
            {"report_type": "weekly_summary", "day": date(2026, 1, 1), "start": date(2026, 1, 1)},
            "date",
            "not both",
        ),
        ({"report_type": "weekly_summary", "start": date(2026, 1, 1)}, "end", "both start and end"),
        (
            {"report_type": "weekly_summary", "start": date(2026, 1, 2), "end": date(2026, 1, 1)},
            "start",
            "on or before end",
        ),
        (
            {"report_type": "monthly_summary", "start": date(2024, 1, 1), "end": date(2025, 1, 1)},
            "end",
            "at most 366 days",
        ),
        ({"report_type": "daily_summary", "day": date(9999, 12, 31)}, "date", "supported calendar"),
        ({"report_type": "user_activity", "day": date(2026, 1, 1)}, "user_id", "needs a user_id"),
        ({"report_type": "user_activity", "user_id": "x1"}, "user_id", "not a valid user id"),
        ({"report_type": "user_activity", "user_id": 999}, "user_id", "No user with id 999"),
        ({"report_type": "user_activity", "user_id": 2**70}, "user_id", "No user with id"),
        ({"report_type": "daily_summary", "user_id": 1}, "user_id", "user_activity only"),
    ],
)
def test_bad_requests_name_the_argument(kwargs, field, message):
    with pytest.raises(ReportRequestError, match=message) as caught:
        resolve_report(kwargs.pop("report_type"), **kwargs)
    assert caught.value.field == field


# -- generating ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_daily_summary_is_the_reports_daily_summary(events, user):
    outcome = generate_report("daily_summary", day=date(2026, 1, 4), created_by=user)
    report = outcome.report

    assert (outcome.ran, outcome.queued) == (True, False)
    assert (report.status, report.error, report.file) == ("done", "", "")
    assert report.result == SUMMARY
    assert report.created_by == user
    assert report.title == "Daily summary 2026-01-04"


@pytest.mark.django_db
def test_weekly_and_monthly_summaries(events, user, other_user):
    week = generate_report("weekly_summary", day=date(2026, 1, 4)).report
    monthly = generate_report("monthly_summary", day=date(2026, 1, 15)).report

    assert week.result == weekly(user, other_user)
    assert (monthly.period_start, monthly.period_end) == (date(2026, 1, 1), date(2026, 1, 31))
    assert monthly.result["total_events"] == 10
    assert monthly.result["events_by_type"] == WEEKLY["events_by_type"]
    assert len(monthly.result["events_per_day"]) == 31
    assert monthly.result["events_per_day"][2:4] == [
        {"date": "2026-01-03", "count": 2},
        {"date": "2026-01-04", "count": 8},
    ]


@pytest.mark.django_db
def test_user_activity_of_one_user(events, user):
    report = generate_report(
        "user_activity", start=date(2026, 1, 1), end=date(2026, 1, 31), user_id=str(user.pk)
    ).report

    assert report.parameters == {"user_id": user.pk}
    assert report.title == f"User activity of user {user.pk}, 2026-01-01 to 2026-01-31"
    assert report.result == {
        "user_id": user.pk,
        "username": "alice",
        "date_from": "2026-01-01",
        "date_to": "2026-01-31",
        "total_events": 5,
        "active_days": 2,
        "events_by_type": {"page_view": 3, "booking_created": 2},
        "events_per_day": [
            {"date": "2026-01-03", "count": 2},
            {"date": "2026-01-04", "count": 3},
        ],
        "first_event_at": "2026-01-03T09:00:00Z",
        "last_event_at": "2026-01-04T13:00:00Z",
    }


@pytest.mark.django_db
def test_engagement_report_is_the_consolidated_report(events):
    report = generate_report(
        "engagement_report", start=date(2026, 1, 3), end=date(2026, 1, 4)
    ).report
    report.refresh_from_db()

    expected = json.loads(json.dumps(build_engagement_report(date(2026, 1, 3), date(2026, 1, 4))))
    assert report.result == expected
    assert report.result["other_metrics"]["active_users"] == 2


@pytest.mark.django_db
def test_engagement_report_goes_to_the_report_storage(settings, engagement_settings, events):
    settings.STORAGES = {
        **settings.STORAGES,
        "reports": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    engagement_settings.update(REPORT_STORAGE="reports")

    report = generate_report("engagement_report", day=date(2026, 1, 4)).report

    assert report.status == "done"
    assert (
        report.file == f"engagement-reports/engagement_report-2026-01-04-2026-01-04-{report.pk}.zip"
    )
    files = report.result["files"]
    assert report.result["period"] == {
        "start": "2026-01-04",
        "end": "2026-01-04",
        "time_zone": "UTC",
    }
    with storages["reports"].open(report.file) as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    assert sorted(archive.namelist()) == sorted(files)
    other = json.loads(archive.read("other_metrics.json"))
    assert other["events_by_type"] == SUMMARY["events_by_type"]
    assert stored_reports.report_file_url(report) == storages["reports"].url(report.file)


@pytest.mark.django_db
def test_the_same_request_returns_the_stored_report(events, django_assert_num_queries):
    first = generate_report("daily_summary", day=date(2026, 1, 4))
    with django_assert_num_queries(1):  # get_or_create's SELECT
        again = generate_report("daily_summary", day=date(2026, 1, 4))

    assert again.report.pk == first.report.pk
    assert (again.ran, again.queued) == (False, False)
    assert Report.objects.count() == 1


@pytest.mark.django_db
def test_force_regenerates_in_place(events, user):
    first = generate_report("daily_summary", day=date(2026, 1, 4)).report
    get_event_model().objects.filter(user=user).delete()

    forced = generate_report("daily_summary", day=date(2026, 1, 4), force=True)

    assert forced.ran is True
    assert forced.report.pk == first.pk
    assert forced.report.result["total_events"] == SUMMARY["total_events"] - 3
    assert Report.objects.count() == 1


@pytest.mark.django_db
def test_other_parameters_are_another_report(events, user, other_user):
    a = generate_report("user_activity", day=date(2026, 1, 4), user_id=user.pk).report
    b = generate_report("user_activity", day=date(2026, 1, 4), user_id=other_user.pk).report

    assert a.pk != b.pk
    assert (a.result["total_events"], b.result["total_events"]) == (3, 1)


@pytest.mark.django_db
def test_a_failure_leaves_a_failed_row_with_the_error_and_no_result(monkeypatch, events):
    done = generate_report("daily_summary", day=date(2026, 1, 4)).report

    def boom(report):
        raise RuntimeError("the read replica went away\nmid-query")

    monkeypatch.setitem(stored_reports.BUILDERS, "daily_summary", boom)
    failed = generate_report("daily_summary", day=date(2026, 1, 4), force=True).report

    assert failed.pk == done.pk
    assert failed.status == "failed"
    assert failed.error == "RuntimeError: the read replica went away mid-query"
    assert (failed.result, failed.file) == (None, "")

    monkeypatch.undo()
    retried = generate_report("daily_summary", day=date(2026, 1, 4))  # no force needed
    assert (retried.ran, retried.report.status, retried.report.error) == (True, "done", "")
    assert retried.report.result == SUMMARY


@pytest.mark.django_db
def test_a_failure_after_the_upload_keeps_no_file(
    settings, engagement_settings, monkeypatch, events
):
    settings.STORAGES = {
        **settings.STORAGES,
        "reports": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    engagement_settings.update(REPORT_STORAGE="reports")
    storage = storages["reports"]
    done = generate_report("engagement_report", day=date(2026, 1, 4)).report
    assert storage.listdir("engagement-reports")[1] == [done.file.rpartition("/")[2]]
    build = stored_reports.BUILDERS["engagement_report"]

    def unstorable(report):
        result, name = build(report)
        return {"not JSON": object()}, name  # the final UPDATE fails after the upload

    monkeypatch.setitem(stored_reports.BUILDERS, "engagement_report", unstorable)
    report = generate_report("engagement_report", day=date(2026, 1, 4), force=True).report

    assert (report.status, report.file, report.result) == ("failed", "", None)
    assert report.error.startswith("TypeError: Object of type object is not JSON serializable")
    assert storage.listdir("engagement-reports")[1] == []  # neither the new nor the old file


@pytest.mark.django_db
def test_run_report_runs_a_pending_report_once(events):
    outcome = generate_report("daily_summary", day=date(2026, 1, 4), asynchronous=True)
    assert (outcome.queued, outcome.report.status) == (True, "pending")

    first = stored_reports.run_report(outcome.report.pk)
    modified = first.modified
    second = stored_reports.run_report(outcome.report.pk)  # a redelivered task

    assert first.status == second.status == "done"
    assert second.modified == modified


@pytest.mark.django_db
def test_async_hand_off_goes_through_the_signal_after_commit(
    engagement_settings,
    eager_app,
    events,
    django_capture_on_commit_callbacks,
):
    engagement_settings.update(ASYNC_REPORTS=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = generate_report("daily_summary", day=date(2026, 1, 4))
    assert (outcome.queued, Report.objects.get().status) == (True, "pending")

    for callback in callbacks:
        callback()  # eager Celery: the task runs here

    report = Report.objects.get()
    assert (report.status, report.result) == ("done", SUMMARY)


@pytest.mark.django_db
def test_without_a_receiver_the_report_stays_pending_and_says_so(
    engagement_settings,
    events,
    caplog,
    django_capture_on_commit_callbacks,
):
    from django_engagement import tasks
    from django_engagement.signals import report_requested

    engagement_settings.update(ASYNC_REPORTS=True)
    uid = "django_engagement.queue_report"
    assert report_requested.disconnect(dispatch_uid=uid)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            generate_report("daily_summary", day=date(2026, 1, 4))
    finally:
        report_requested.connect(tasks.queue_report, dispatch_uid=uid)

    assert Report.objects.get().status == "pending"
    assert "Nothing listens to report_requested" in caplog.text


# -- the command ---------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("generate_reports", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_command_generates_and_emails(events, mailoutbox):
    output = run(
        "--report-type",
        "daily_summary",
        "--date",
        "2026-01-04",
        "--email-recipients",
        "ops@example.com, lead@example.com",
    )
    report = Report.objects.get()

    assert output == f"Daily summary 2026-01-04: done (generated, id {report.pk}), emailed\n"
    assert [m.to for m in mailoutbox] == [["ops@example.com"], ["lead@example.com"]]
    message = mailoutbox[0]
    assert message.subject == "Daily summary 2026-01-04"
    assert "Events: 8\nUnique users: 2\nAnonymous visitors: 3\n" in message.body
    assert "- page_view: 5\n- booking_created: 2\n- service_search: 1" in message.body
    [(name, content, mimetype)] = message.attachments
    assert (name, mimetype) == ("daily_summary-2026-01-04-2026-01-04.json", "application/json")
    assert json.loads(content) == SUMMARY

    again = run("--report-type", "daily_summary", "--date", "2026-01-04")
    assert again == f"Daily summary 2026-01-04: done (already stored, id {report.pk})\n"


@pytest.mark.django_db
def test_command_auto_schedule(events, user, other_user, mailoutbox):
    output = run("--auto-schedule", "--date", "2026-01-05", "--email-recipients", "ops@example.com")
    reports = {r.report_type: r for r in Report.objects.all()}

    assert output.splitlines() == [
        f"Daily summary 2026-01-04: done (generated, id {reports['daily_summary'].pk}), emailed",
        f"Weekly summary 2026-W01: done (generated, id {reports['weekly_summary'].pk}), emailed",
    ]
    assert reports["weekly_summary"].result == weekly(user, other_user)
    assert [m.subject for m in mailoutbox] == [
        "Daily summary 2026-01-04",
        "Weekly summary 2026-W01",
    ]

    mailoutbox.clear()
    run("--auto-schedule", "--date", "2026-01-05", "--email-recipients", "ops@example.com")
    assert mailoutbox == []  # done already: neither generated nor emailed again
    run("--auto-schedule", "--date", "2026-01-05", "--force", "--email-recipients", "a@example.com")
    assert len(mailoutbox) == 2
    assert Report.objects.count() == 2


@pytest.mark.django_db
def test_command_user_activity(events, user):
    output = run(
        "--report-type", "user_activity", "--user-id", str(user.pk), "--start", "2026-01-01",
        "--end", "2026-01-31",
    )  # fmt: skip
    assert output.startswith(f"User activity of user {user.pk}, 2026-01-01 to 2026-01-31: done")
    assert Report.objects.get().result["total_events"] == 5


@pytest.mark.django_db
def test_command_failure_is_a_command_error(monkeypatch, events):
    def boom(report):
        raise RuntimeError("boom")

    monkeypatch.setitem(stored_reports.BUILDERS, "daily_summary", boom)
    with pytest.raises(CommandError, match="^Daily summary 2026-01-04 failed: RuntimeError: boom$"):
        run("--report-type", "daily_summary", "--date", "2026-01-04", "--verbosity", "0")
    assert Report.objects.get().status == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Give --report-type, or --auto-schedule."),
        (["--report-type", "daily_summary", "--date", "2026-02-30"], "is not a date"),
        (["--report-type", "user_activity"], "user_activity needs a user_id."),
        (["--report-type", "user_activity", "--user-id", "999"], "No user with id 999."),
        (["--report-type", "weekly_summary", "--start", "2026-01-01"], "Give both start and end."),
        (["--auto-schedule", "--report-type", "daily_summary"], "--auto-schedule picks"),
        (["--auto-schedule", "--email-recipients", "nobody"], "'nobody' is not an email address."),
        (["--report-type", "daily_summary", "--date", "9999-12-31"], "supported calendar"),
    ],
)
def test_command_bad_input_is_one_line(args, message):
    with pytest.raises(CommandError, match=message) as caught:
        run(*args)
    assert "\n" not in str(caught.value)
    assert Report.objects.count() == 0


# -- the API -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_generate_runs_inline_201_then_200(admin_client_api, admin_user, events):
    body = {"report_type": "daily_summary", "date": "2026-01-04"}
    response = admin_client_api.post(saved_url("generate"), body, format="json")

    report = Report.objects.get()
    detail = f"http://testserver{saved_url('detail', report.pk)}"
    assert response.status_code == 201
    assert response["Location"] == detail
    data = response.json()
    assert {k: data[k] for k in ("id", "url", "report_type", "status", "result", "created_by")} == {
        "id": report.pk,
        "url": detail,
        "report_type": "daily_summary",
        "status": "done",
        "result": SUMMARY,
        "created_by": admin_user.pk,
    }
    assert (data["period_start"], data["period_end"], data["file_url"]) == (
        "2026-01-04",
        "2026-01-04",
        None,
    )

    again = admin_client_api.post(saved_url("generate"), body, format="json")
    assert (again.status_code, again.json()["id"]) == (200, report.pk)


@pytest.mark.django_db
def test_generate_async_is_202_with_the_url(
    admin_client_api,
    engagement_settings,
    eager_app,
    user,
    other_user,
    events,
    django_capture_on_commit_callbacks,
):
    engagement_settings.update(ASYNC_REPORTS=True)
    body = {"report_type": "weekly_summary", "start": "2025-12-29", "end": "2026-01-04"}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client_api.post(saved_url("generate"), body, format="json")

    report = Report.objects.get()
    assert response.status_code == 202
    assert response["Location"] == f"http://testserver{saved_url('detail', report.pk)}"
    assert (response.json()["status"], response.json()["result"]) == ("pending", None)

    for callback in callbacks:
        callback()
    detail = admin_client_api.get(response["Location"])
    assert (detail.json()["status"], detail.json()["result"]) == ("done", weekly(user, other_user))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"report_type": ["This field is required."]}),
        ({"report_type": "hourly"}, {"report_type": ['"hourly" is not a valid choice.']}),
        ({"report_type": "daily_summary", "date": "2026-13-01"}, {"date"}),
        (
            {"report_type": "daily_summary", "date": "2026-01-04", "extra": 1},
            {"extra": ["Unknown field."]},
        ),
        (
            {"report_type": "daily_summary", "start": "2026-01-01", "end": "2026-01-02"},
            {"start": ["daily_summary covers one day: give a date, not a start and an end."]},
        ),
        (
            {"report_type": "weekly_summary", "start": "2026-01-05", "end": "2026-01-01"},
            {"start": ["start must be on or before end."]},
        ),
        (
            {"report_type": "user_activity", "date": "2026-01-04"},
            {"user_id": ["user_activity needs a user_id."]},
        ),
        ({"report_type": "user_activity", "user_id": 999}, {"user_id"}),
        ({"report_type": "user_activity", "user_id": 2**64}, {"user_id"}),
        ([{"report_type": "daily_summary"}], {"non_field_errors"}),
        (
            {"report_type": "user_activity", "user_id": "1"},
            {"user_id": ["A user id is an integer."]},
        ),
        (
            {"report_type": "daily_summary", "user_id": "admin"},
            {"user_id": ["user_id applies to user_activity only."]},
        ),
        ({"report_type": "daily_summary", "force": "maybe"}, {"force"}),
        ({"report_type": "daily_summary", "date": "9999-12-31"}, {"date": ["Date out of range."]}),
    ],
)
def test_generate_bad_input_is_400_naming_the_field(admin_client_api, admin_user, body, errors):
    if isinstance(body, dict) and body.get("user_id") == "admin":
        body = {**body, "user_id": admin_user.pk}
    response = admin_client_api.post(saved_url("generate"), body, format="json")

    assert response.status_code == 400
    assert (response.json() if isinstance(errors, dict) else set(response.json())) == errors
    assert Report.objects.count() == 0


@pytest.mark.django_db
def test_generate_without_a_date_is_the_last_complete_period(admin_client_api, monkeypatch):
    monkeypatch.setattr(stored_reports, "today", lambda: date(2026, 3, 2))
    response = admin_client_api.post(
        saved_url("generate"), {"report_type": "monthly_summary"}, format="json"
    )
    assert response.status_code == 201
    assert (response.json()["period_start"], response.json()["period_end"]) == (
        "2026-02-01",
        "2026-02-28",
    )


def make_reports(count: int) -> list[Report]:
    return Report.objects.bulk_create(
        [
            Report(
                report_type="daily_summary",
                title=f"Daily summary day {n}",
                period_start=date(2026, 1, 1 + n),
                period_end=date(2026, 1, 1 + n),
                parameters_key=ReportSpec(
                    "daily_summary", date(2026, 1, 1), date(2026, 1, 1)
                ).parameters_key,
                status="done" if n % 2 else "failed",
                result={"n": n},
            )
            for n in range(count)
        ]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 25])
def test_list_costs_two_queries_whatever_the_number(
    admin_client_api, count, django_assert_num_queries
):
    make_reports(count)
    with django_assert_num_queries(2):  # COUNT(*) and the page
        response = admin_client_api.get(saved_url())

    data = response.json()
    assert response.status_code == 200
    assert data["count"] == count
    assert len(data["results"]) == min(count, 20)
    assert "result" not in data["results"][0]


@pytest.mark.django_db
def test_list_filters_newest_first(admin_client_api):
    made = make_reports(4)
    response = admin_client_api.get(saved_url(), {"status": "done", "report_type": "daily_summary"})

    assert [row["id"] for row in response.json()["results"]] == [made[3].pk, made[1].pk]
    bad = admin_client_api.get(saved_url(), {"status": "lost"})
    assert (bad.status_code, list(bad.json())) == (400, ["status"])
    twice = admin_client_api.get(f"{saved_url()}?status=done&status=failed")
    assert (twice.status_code, twice.json()) == (400, {"status": ["Send one value."]})
    page = admin_client_api.get(saved_url(), {"page_size": "x"})
    assert page.status_code == 400


@pytest.mark.django_db
def test_detail_and_404(admin_client_api):
    [report] = make_reports(1)
    response = admin_client_api.get(saved_url("detail", report.pk))

    assert (response.status_code, response.json()["result"]) == (200, {"n": 0})
    missing = admin_client_api.get(saved_url("detail", report.pk + 1))
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "No Report matches the given query."},
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "name", "args"),
    [("get", "list", ()), ("get", "detail", (1,)), ("post", "generate", ())],
)
def test_normal_users_get_403(auth_client, method, name, args):
    response = getattr(auth_client, method)(saved_url(name, *args), {}, format="json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_report_permission_classes_open_it(engagement_settings, auth_client):
    engagement_settings.update(
        REPORT_PERMISSION_CLASSES=["rest_framework.permissions.IsAuthenticated"]
    )
    assert auth_client.get(saved_url()).status_code == 200


# -- a real worker -------------------------------------------------------------------------


@pytest.fixture
def redis_worker():
    """A real worker thread on Redis db 14, consuming a private queue."""
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    if connections["default"].vendor == "sqlite" and connections["default"].is_in_memory_db():
        pytest.skip("a real worker needs PostgreSQL or a SQLite file, not :memory:")
    with celery_worker_thread(REDIS_URL) as worker:
        yield worker


@pytest.mark.django_db(transaction=True)
def test_real_worker_lifecycle_pending_running_done_and_failed(
    redis_worker,
    engagement_settings,
    monkeypatch,
    events,
):
    engagement_settings.update(ASYNC_REPORTS=True)
    entered, release = threading.Event(), threading.Event()
    daily = stored_reports.BUILDERS["daily_summary"]

    def gated(report):
        entered.set()
        assert release.wait(20)
        return daily(report)

    def boom(report):
        raise RuntimeError("no such table")

    monkeypatch.setitem(stored_reports.BUILDERS, "daily_summary", gated)
    monkeypatch.setitem(stored_reports.BUILDERS, "weekly_summary", boom)

    outcome = generate_report("daily_summary", day=date(2026, 1, 4))
    assert (outcome.queued, outcome.report.status) == (True, "pending")
    assert entered.wait(20)
    assert Report.objects.get(pk=outcome.report.pk).status == "running"
    release.set()
    assert wait_for(lambda: Report.objects.get(pk=outcome.report.pk).status == "done")
    assert Report.objects.get(pk=outcome.report.pk).result == SUMMARY

    failing = generate_report("weekly_summary", day=date(2026, 1, 4))
    assert failing.report.status == "pending"
    assert wait_for(lambda: Report.objects.get(pk=failing.report.pk).status == "failed")
    failed = Report.objects.get(pk=failing.report.pk)
    assert (failed.error, failed.result) == ("RuntimeError: no such table", None)


@pytest.mark.django_db
def test_beat_task_generates_and_emails_what_is_due(eager_app, events, mailoutbox):
    from django_engagement.tasks import generate_due_reports_task

    result = generate_due_reports_task.delay(
        email_recipients=["ops@example.com"], date="2026-01-05"
    ).get()

    assert result == ["Daily summary 2026-01-04: done", "Weekly summary 2026-W01: done"]
    assert [m.subject for m in mailoutbox] == [
        "Daily summary 2026-01-04",
        "Weekly summary 2026-W01",
    ]


@pytest.mark.django_db
def test_admin_lists_stored_reports_read_only(client, admin_user, events):
    report = generate_report("daily_summary", day=date(2026, 1, 4)).report
    client.force_login(admin_user)

    listing = client.get(reverse("admin:django_engagement_report_changelist"), {"status": "done"})
    page = client.get(reverse("admin:django_engagement_report_change", args=[report.pk]))

    assert listing.status_code == page.status_code == 200
    assert "Daily summary 2026-01-04" in listing.content.decode()
    assert client.get(reverse("admin:django_engagement_report_add")).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_make_one_report_and_run_it_once(events, monkeypatch):
    if connections["default"].vendor == "sqlite" and connections["default"].is_in_memory_db():
        pytest.skip("two connections at once need PostgreSQL or a SQLite file, not :memory:")
    runs: list[int] = []
    daily = stored_reports.BUILDERS["daily_summary"]

    def slow(report):
        runs.append(report.pk)
        time.sleep(0.3)  # the other request arrives while this one runs
        return daily(report)

    monkeypatch.setitem(stored_reports.BUILDERS, "daily_summary", slow)
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def request() -> None:
        try:
            barrier.wait(10)
            outcomes.append(generate_report("daily_summary", day=date(2026, 1, 4)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    [report] = Report.objects.all()
    assert len(outcomes) == 2
    assert {outcome.report.pk for outcome in outcomes} == {report.pk}
    assert runs == [report.pk]
    assert (report.status, report.result) == ("done", SUMMARY)


@pytest.mark.django_db
def test_the_task_of_a_deleted_report_ends_quietly(eager_app, events):
    from django_engagement.tasks import generate_report_task

    outcome = generate_report("daily_summary", day=date(2026, 1, 4), asynchronous=True)
    Report.objects.all().delete()

    assert generate_report_task.delay(outcome.report.pk).get() == "deleted"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("period", "queries"),
    [
        ({"report_type": "weekly_summary", "day": date(2026, 1, 4)}, 18),
        ({"report_type": "monthly_summary", "day": date(2026, 1, 4)}, 18),
        (
            {"report_type": "monthly_summary", "start": date(2025, 6, 1), "end": date(2026, 5, 31)},
            17,
        ),
    ],
)
def test_generating_costs_the_same_queries_whatever_the_period(
    events, period, queries, django_assert_num_queries
):
    # The report row: get_or_create (SELECT, SAVEPOINT, INSERT, RELEASE), the claim and
    # a SELECT; the analytics core: 8 queries, plus one when the window is exactly one
    # ISO week or month (its stored period total is looked up first); the result:
    # SAVEPOINT, UPDATE, RELEASE and the refresh. A year costs what a week costs.
    with django_assert_num_queries(queries):
        report = generate_report(**period).report
    assert report.result["total_events"] == 10
