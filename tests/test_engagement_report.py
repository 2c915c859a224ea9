"""engagement_report: every section on a known dataset, file shapes, flags and errors.

The period is 2024-03-01 (Fri) .. 2024-03-14 (Thu); ISO weeks start 02-26, 03-04, 03-11.
Data is inserted with bulk_create (explicit created_at/date_joined, no signals).
"""

from __future__ import annotations

import csv
import json
import uuid
import zipfile
from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from django_engagement.management.commands.engagement_report import Command
from django_engagement.models import get_event_model, get_feed_model
from django_engagement.services.engagement_report import build_engagement_report
from tests.testapp.models import Campaign, Club

START, END = date(2024, 3, 1), date(2024, 3, 14)
PERIOD = ["--start", "2024-03-01", "--end", "2024-03-14"]
# What --format csv writes (other_metrics stays JSON), sorted by name.
CSV_FILES = [
    "campaigns.csv",
    "new_users_over_time.csv",
    "other_metrics.json",
    "retention_cohorts.csv",
    "user_activity.csv",
    "user_activity_timeline.csv",
    "user_campaign_participation.csv",
]
C1 = uuid.UUID("00000000-0000-0000-0000-000000000001")
C2 = uuid.UUID("00000000-0000-0000-0000-000000000002")
C3 = uuid.UUID("00000000-0000-0000-0000-000000000003")
JOIN, LEAVE = "target_joined", "target_left"


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 3) -> datetime:
    return datetime(2024, month, day, hour, minute, second, tzinfo=UTC)


def make_users(*specs):
    """``(username, date_joined)`` pairs -> users in that order, without signup signals."""
    User = get_user_model()
    User._default_manager.bulk_create(
        User(username=name, email=f"{name}@example.com", date_joined=joined)
        for name, joined in specs
    )
    by_name = {u.username: u for u in User._default_manager.all()}
    return [by_name[name] for name, _ in specs]


def make_events(*specs):
    """``(user, event_type, created_at, target)`` tuples; user or target may be None."""
    Event = get_event_model()
    Event._default_manager.bulk_create(
        Event(
            event_type=event_type,
            user=user,
            anonymous_id="" if user else "anon-1",
            target_content_type=_campaign_type() if target else None,
            target_object_id=str(target.pk) if target else "",
            created_at=created_at,
        )
        for user, event_type, created_at, target in specs
    )


def _campaign_type():
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(Campaign)


def make_feed(*specs):
    """``(user, activity_type, created_at)`` tuples."""
    Feed = get_feed_model()
    Feed._default_manager.bulk_create(
        Feed(user=user, activity_type=kind, title=kind, created_at=created_at)
        for user, kind, created_at in specs
    )


@pytest.fixture
def data(db):
    alice, bob, carol, frank, dave, erin, late = make_users(
        ("alice", at(20, month=2)),
        ("bob", at(1, 10)),
        ("carol", at(1, 23, 30)),
        ("frank", at(2, 9)),
        ("dave", at(5)),
        ("erin", at(14, 23)),
        ("late", at(15, 0)),
    )
    st_mary, st_george = Club.objects.bulk_create([Club(name="St. Mary"), Club(name="St. George")])
    c1, c2, c3 = Campaign.objects.bulk_create(
        [
            Campaign(id=C1, name="Great Lent", club=st_mary),
            Campaign(id=C2, name="Advent"),
            Campaign(id=C3, name="Nativity", club=st_george),
        ]
    )
    Campaign.members.through.objects.bulk_create(
        [
            Campaign.members.through(campaign_id=C1, user_id=alice.pk),
            Campaign.members.through(campaign_id=C1, user_id=bob.pk),
            Campaign.members.through(campaign_id=C2, user_id=carol.pk),
        ]
    )
    make_events(
        (alice, JOIN, at(25, month=2), c1),  # before: still active, no event in period
        (alice, JOIN, at(10, month=2), c3),  # before, then left: not in participation
        (alice, LEAVE, at(12, month=2), c3),
        (alice, "page_view", at(28, month=2), None),
        (bob, JOIN, at(2, 10), c1),
        (carol, JOIN, at(3), c1),
        (carol, LEAVE, at(6, 9), c1),
        (carol, JOIN, at(6, 10), c2),
        (dave, JOIN, at(14, 23, 59, 59), c2),  # last second of the end day
        (dave, LEAVE, at(15, 0), c2),  # first second after the period
        (erin, JOIN, at(14, 23, 59, 30), c1),
        (bob, JOIN, at(4), c3),  # rejoin: join, leave, join
        (bob, LEAVE, at(5), c3),
        (bob, JOIN, at(7), c3),
        (bob, "page_view", at(8), None),
        (bob, "page_view", at(9), None),
        (dave, "comment", at(12), None),
        (None, "page_view", at(10), None),
        (erin, "page_view", at(20), None),
    )
    make_feed(
        (bob, "fast_join", at(2)),
        (bob, "comment", at(8)),
        (bob, "comment", at(9)),
        (bob, "comment", at(14, 23, 59, 59)),
        (bob, "comment", at(15, 0)),
        (carol, "fast_join", at(3)),
        (alice, "comment", at(28, month=2)),
    )
    return {u.username: u for u in (alice, bob, carol, frank, dave, erin, late)}


def expected_new_users():
    counts = {1: 2, 2: 1, 5: 1, 14: 1}
    return [{"date": f"2024-03-{d:02d}", "count": counts.get(d, 0)} for d in range(1, 15)]


def test_new_users_over_time_has_every_day_and_the_end_day(data):
    assert build_engagement_report(START, END)["new_users_over_time"] == expected_new_users()


def test_campaign_engagement(data):
    report = build_engagement_report(START, END)
    assert report["campaigns"] == [
        {
            "campaign_id": str(C1),
            "campaign_name": "Great Lent",
            "club_name": "St. Mary",
            "participants": 2,
            "joins_in_period": 3,
            "leaves_in_period": 1,
        },
        {
            "campaign_id": str(C2),
            "campaign_name": "Advent",
            "club_name": None,
            "participants": 1,
            "joins_in_period": 2,
            "leaves_in_period": 0,
        },
        {
            "campaign_id": str(C3),
            "campaign_name": "Nativity",
            "club_name": "St. George",
            "participants": 0,
            "joins_in_period": 2,
            "leaves_in_period": 1,
        },
    ]


def test_user_activity_counts_feed_items_by_type(data):
    bob, carol = data["bob"], data["carol"]
    assert build_engagement_report(START, END)["user_activity"] == [
        {
            "user_id": bob.pk,
            "username": "bob",
            "email": "bob@example.com",
            "total_items": 4,
            "by_type": {"comment": 3, "fast_join": 1},
        },
        {
            "user_id": carol.pk,
            "username": "carol",
            "email": "carol@example.com",
            "total_items": 1,
            "by_type": {"fast_join": 1},
        },
    ]


def test_username_follows_username_field(data, monkeypatch):
    monkeypatch.setattr(get_user_model(), "USERNAME_FIELD", "email")
    monkeypatch.setattr(get_user_model(), "EMAIL_FIELD", "first_name")
    first = build_engagement_report(START, END)["user_activity"][0]
    assert (first["username"], first["email"]) == ("bob@example.com", "")


def test_other_metrics(data):
    assert build_engagement_report(START, END)["other_metrics"] == {
        "events_by_type": {"comment": 1, "page_view": 3, JOIN: 7, LEAVE: 2},
        "active_users": 4,
        "top_campaigns_by_joins": [
            {"campaign_id": str(C1), "campaign": "Great Lent", "joins": 3},
            {"campaign_id": str(C2), "campaign": "Advent", "joins": 2},
            {"campaign_id": str(C3), "campaign": "Nativity", "joins": 2},
        ],
    }


def test_timeline_lists_user_events_in_order(data):
    timeline = build_engagement_report(START, END)["user_activity_timeline"]
    assert len(timeline) == 12  # 13 events in the period, one anonymous
    assert [(row["timestamp"], row["event_type"]) for row in timeline[:2]] == [
        ("2024-03-02T10:00:00Z", JOIN),
        ("2024-03-03T12:00:00Z", JOIN),
    ]
    event = get_event_model()._default_manager.get(event_type=JOIN, created_at=at(2, 10))
    assert timeline[0] == {
        "user_id": data["bob"].pk,
        "timestamp": "2024-03-02T10:00:00Z",
        "date": "2024-03-02",
        "event_type": JOIN,
        "source": "server",
        "target_type": "testapp.campaign",
        "target_id": str(C1),
        "event_id": str(event.uuid),
    }
    assert timeline[-1]["timestamp"] == "2024-03-14T23:59:59Z"
    page_view = next(row for row in timeline if row["event_type"] == "page_view")
    assert (page_view["target_type"], page_view["target_id"]) == (None, None)


def test_participation_from_join_leave_history(data):
    u = {name: user.pk for name, user in data.items()}
    rows = build_engagement_report(START, END)["user_campaign_participation"]
    assert rows == [
        {
            "user_id": u["alice"],
            "campaign_id": str(C1),
            "joined_at": "2024-02-25T12:00:00Z",
            "left_at": None,
            "status": "active",
        },
        {
            "user_id": u["bob"],
            "campaign_id": str(C1),
            "joined_at": "2024-03-02T10:00:00Z",
            "left_at": None,
            "status": "active",
        },
        {
            "user_id": u["bob"],
            "campaign_id": str(C3),
            "joined_at": "2024-03-07T12:00:00Z",
            "left_at": None,
            "status": "active",
        },
        {
            "user_id": u["carol"],
            "campaign_id": str(C1),
            "joined_at": "2024-03-03T12:00:00Z",
            "left_at": "2024-03-06T09:00:00Z",
            "status": "left",
        },
        {
            "user_id": u["carol"],
            "campaign_id": str(C2),
            "joined_at": "2024-03-06T10:00:00Z",
            "left_at": None,
            "status": "active",
        },
        {
            "user_id": u["dave"],
            "campaign_id": str(C2),
            "joined_at": "2024-03-14T23:59:59Z",
            "left_at": None,
            "status": "active",
        },
        {
            "user_id": u["erin"],
            "campaign_id": str(C1),
            "joined_at": "2024-03-14T23:59:30Z",
            "left_at": None,
            "status": "active",
        },
    ]


def test_participation_of_a_pair_that_left_in_the_period_after_joining_before(data):
    alice = data["alice"]
    make_events((alice, LEAVE, at(3), Campaign(pk=C1)))
    rows = build_engagement_report(START, END)["user_campaign_participation"]
    assert rows[0] == {
        "user_id": alice.pk,
        "campaign_id": str(C1),
        "joined_at": "2024-02-25T12:00:00Z",
        "left_at": "2024-03-03T12:00:00Z",
        "status": "left",
    }


def test_retention_cohorts(data):
    assert build_engagement_report(START, END)["retention_cohorts"] == [
        # bob, carol, frank; bob and carol act in later weeks; 6 + 3 + 0 events
        {
            "cohort_week": "2024-02-26",
            "cohort_size": 3,
            "active_users": 2,
            "retention_rate": 0.6667,
            "avg_activities": 3.0,
        },
        # dave signed up on 03-05 and acts in the week of 03-11
        {
            "cohort_week": "2024-03-04",
            "cohort_size": 1,
            "active_users": 1,
            "retention_rate": 1.0,
            "avg_activities": 2.0,
        },
        # erin's only event in the period is in her signup week
        {
            "cohort_week": "2024-03-11",
            "cohort_size": 1,
            "active_users": 0,
            "retention_rate": 0.0,
            "avg_activities": 1.0,
        },
    ]


def test_day_boundaries_follow_time_zone(data, settings):
    settings.TIME_ZONE = "Asia/Tokyo"  # UTC+9: carol's 03-01 23:30 UTC is 03-02 in Tokyo
    report = build_engagement_report(START, END)
    counts = {row["date"]: row["count"] for row in report["new_users_over_time"]}
    assert (counts["2024-03-01"], counts["2024-03-02"]) == (1, 2)
    # dave's join at 03-14 23:59:59 UTC is 03-15 in Tokyo: outside the period
    assert report["campaigns"][1]["joins_in_period"] == 1
    assert report["period"]["time_zone"] == "Asia/Tokyo"
    assert report["user_activity_timeline"][0]["timestamp"] == "2024-03-02T19:00:00+09:00"


def test_seed_names_with_fast_and_church_labels(data, engagement_settings, tmp_path):
    engagement_settings.update(TARGET_LABEL="fast", TARGET_GROUP_LABEL="church")
    report = build_engagement_report(START, END)
    assert list(report) == [
        "period",
        "new_users_over_time",
        "fasts",
        "user_activity",
        "other_metrics",
        "user_activity_timeline",
        "user_fast_participation",
        "retention_cohorts",
    ]
    assert list(report["fasts"][0]) == [
        "fast_id",
        "fast_name",
        "church_name",
        "participants",
        "joins_in_period",
        "leaves_in_period",
    ]
    assert report["other_metrics"]["top_fasts_by_joins"][0] == {
        "fast_id": str(C1),
        "fast": "Great Lent",
        "joins": 3,
    }
    assert list(report["user_fast_participation"][0])[:2] == ["user_id", "fast_id"]

    call_command("engagement_report", *PERIOD, "--output-dir", str(tmp_path), verbosity=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fasts.json",
        "new_users_over_time.json",
        "other_metrics.json",
        "retention_cohorts.json",
        "user_activity.json",
        "user_activity_timeline.json",
        "user_fast_participation.json",
    ]


def test_without_target_model_target_sections_are_left_out(data, settings):
    settings.ENGAGEMENT_TARGET_MODEL = None
    report = build_engagement_report(START, END)
    assert "campaigns" not in report
    assert "user_campaign_participation" not in report
    assert report["other_metrics"] == {
        "events_by_type": {"comment": 1, "page_view": 3, JOIN: 7, LEAVE: 2},
        "active_users": 4,
    }
    assert report["retention_cohorts"][0]["cohort_size"] == 3


def test_without_group_field_and_participants_path(data, engagement_settings):
    engagement_settings.update(TARGET_GROUP_FIELD=None, TARGET_PARTICIPANTS=None)
    first = build_engagement_report(START, END)["campaigns"][0]
    assert (first["club_name"], first["participants"], first["joins_in_period"]) == (None, None, 3)


def test_custom_join_and_leave_codes(data, engagement_settings):
    engagement_settings.update(JOIN_EVENT="page_view", LEAVE_EVENT="comment")
    assert build_engagement_report(START, END)["campaigns"][0]["joins_in_period"] == 0


def test_empty_database_gives_empty_sections(db):
    report = build_engagement_report(START, START)
    assert report["new_users_over_time"] == [{"date": "2024-03-01", "count": 0}]
    assert report["campaigns"] == report["user_activity"] == report["retention_cohorts"] == []
    assert report["other_metrics"] == {
        "events_by_type": {},
        "active_users": 0,
        "top_campaigns_by_joins": [],
    }


def test_start_after_end_is_a_value_error(db):
    with pytest.raises(ValueError, match="after"):
        build_engagement_report(END, START)


def _grow(n: int) -> None:
    users = make_users(*((f"bulk{n}-{i}", at(3 + i % 10)) for i in range(n)))
    campaigns = Campaign.objects.bulk_create(Campaign(name=f"c{n}-{i}") for i in range(n))
    pairs = list(zip(users, campaigns, strict=True))
    Campaign.members.through.objects.bulk_create(
        Campaign.members.through(campaign_id=c.pk, user_id=u.pk) for u, c in pairs
    )
    make_events(*((u, JOIN, at(4 + i % 10), c) for i, (u, c) in enumerate(pairs)))
    make_feed(*((u, f"kind{i % 3}", at(5)) for i, u in enumerate(users)))


def test_query_count_does_not_grow_with_users_or_targets(data, django_assert_max_num_queries):
    with django_assert_max_num_queries(12) as small:
        build_engagement_report(START, END)
    _grow(5)
    with django_assert_max_num_queries(len(small.captured_queries)):
        build_engagement_report(START, END)
    _grow(40)
    with django_assert_max_num_queries(len(small.captured_queries)):
        report = build_engagement_report(START, END)
    assert len(report["campaigns"]) == 48
    assert len(report["user_activity"]) == 47


# -- command: files -----------------------------------------------------------------------


def run(*args, **kwargs):
    """Run the command with its streams captured, flags given as strings.

    A command instance carries the streams: ``call_command(stdout=...)`` would
    collide with the ``--stdout`` flag (the command maps a stream there back).
    """
    out, err = StringIO(), StringIO()
    call_command(Command(stdout=out, stderr=err), *args, **kwargs)
    return out.getvalue(), err.getvalue()


def test_call_command_stdout_keyword_is_the_output_stream(data, tmp_path):
    out = StringIO()
    call_command("engagement_report", *PERIOD, "--output-dir", str(tmp_path), stdout=out)
    assert out.getvalue() == f"Wrote 7 files to {tmp_path}\n"


def test_call_command_stdout_flag_with_stdout_keyword(data):
    out = StringIO()
    call_command("engagement_report", *PERIOD, "--stdout", stdout=out, stderr=StringIO())
    assert json.loads(out.getvalue()) == json.loads(
        json.dumps(
            build_engagement_report(date.fromisoformat(PERIOD[1]), date.fromisoformat(PERIOD[3])),
            default=str,
        )
    )


def test_json_files_match_the_report(data, tmp_path):
    out, err = run(*PERIOD, "--output-dir", str(tmp_path))
    report = build_engagement_report(START, END)
    names = [key for key in report if key != "period"]
    for name in names:
        assert json.loads((tmp_path / f"{name}.json").read_text()) == report[name]
    assert out == f"Wrote 7 files to {tmp_path}\n"
    assert [line.split(":")[0] for line in err.splitlines()] == names
    assert "user_activity_timeline: 12 rows in " in err


def test_default_output_dir_is_a_new_temporary_directory(data):
    out, _ = run(*PERIOD, verbosity=1)
    directory = out.split(" files to ")[1].strip()
    assert "engagement_report_" in directory
    import pathlib

    assert len(list(pathlib.Path(directory).iterdir())) == 7


def test_csv_files_headers_and_type_columns(data, tmp_path):
    run(*PERIOD, "--format", "csv", "--output-dir", str(tmp_path), verbosity=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == CSV_FILES

    def read(name):
        with (tmp_path / name).open(newline="") as handle:
            return list(csv.reader(handle))

    bob, carol = data["bob"].pk, data["carol"].pk
    assert read("user_activity.csv") == [
        ["user_id", "username", "email", "total_items", "type_comment", "type_fast_join"],
        [str(bob), "bob", "bob@example.com", "4", "3", "1"],
        [str(carol), "carol", "carol@example.com", "1", "0", "1"],
    ]
    assert read("campaigns.csv")[:3] == [
        [
            "campaign_id",
            "campaign_name",
            "club_name",
            "participants",
            "joins_in_period",
            "leaves_in_period",
        ],
        [str(C1), "Great Lent", "St. Mary", "2", "3", "1"],
        [str(C2), "Advent", "", "1", "2", "0"],
    ]
    assert read("new_users_over_time.csv")[:2] == [["date", "count"], ["2024-03-01", "2"]]
    timeline = read("user_activity_timeline.csv")
    assert timeline[0] == [
        "user_id",
        "timestamp",
        "date",
        "event_type",
        "source",
        "target_type",
        "target_id",
        "event_id",
    ]
    assert len(timeline) == 13
    assert read("user_campaign_participation.csv")[:2] == [
        ["user_id", "campaign_id", "joined_at", "left_at", "status"],
        [str(data["alice"].pk), str(C1), "2024-02-25T12:00:00Z", "", "active"],
    ]
    assert read("retention_cohorts.csv")[:2] == [
        ["cohort_week", "cohort_size", "active_users", "retention_rate", "avg_activities"],
        ["2024-02-26", "3", "2", "0.6667", "3.0"],
    ]
    assert json.loads((tmp_path / "other_metrics.json").read_text())["active_users"] == 4


def test_zip_archive_lists_the_section_files(data, tmp_path):
    out, _ = run(*PERIOD, "--zip", "--format", "csv", "--output-dir", str(tmp_path), verbosity=1)
    archive = tmp_path / "engagement_report_2024-03-01_2024-03-14.zip"
    assert f"Archive: {archive}\n" in out
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == CSV_FILES
        assert zipped.read("user_activity.csv") == (tmp_path / "user_activity.csv").read_bytes()


def test_stdout_prints_only_the_consolidated_json(data):
    out, err = run(*PERIOD, "--stdout")
    assert json.loads(out) == build_engagement_report(START, END)
    assert "retention_cohorts: 3 rows" in err


def test_stdout_with_empty_sections_is_valid_json(db):
    out, _ = run("--start", "2024-03-01", "--end", "2024-03-01", "--stdout", verbosity=0)
    assert json.loads(out)["user_activity"] == []


@pytest.mark.parametrize("extra", [[], ["--zip"], ["--format", "csv", "--zip"]])
def test_verbosity_zero_is_silent(data, tmp_path, extra):
    out, err = run(*PERIOD, "--output-dir", str(tmp_path), *extra, verbosity=0)
    assert (out, err) == ("", "")
    assert len([p for p in tmp_path.iterdir() if p.suffix != ".zip"]) == 7  # still written


def test_default_range_is_the_last_30_days_including_today(db):
    from django.utils import timezone

    out, _ = run("--stdout", verbosity=0)
    today = timezone.localdate()
    period = json.loads(out)["period"]
    assert period["end"] == today.isoformat()
    assert (today - date.fromisoformat(period["start"])).days == 30


def test_start_only_and_end_only(db):
    out, _ = run("--end", "2024-03-14", "--stdout", verbosity=0)
    assert json.loads(out)["period"]["start"] == "2024-02-13"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2024-13-01"], "--start: invalid date '2024-13-01', expected YYYY-MM-DD"),
        (["--end", "14/03/2024"], "--end: invalid date '14/03/2024', expected YYYY-MM-DD"),
        (["--start", "20240301"], "expected YYYY-MM-DD"),
        (
            ["--start", "2024-03-15", "--end", "2024-03-14"],
            "--start 2024-03-15 is after --end 2024-03-14; expected YYYY-MM-DD",
        ),
        (["--stdout", "--zip"], "--stdout prints the consolidated JSON only; drop --zip"),
        (
            ["--stdout", "--format", "csv", "--upload-s3"],
            "drop --format csv, --upload-s3",
        ),
    ],
)
def test_bad_input_is_a_one_line_command_error(db, args, message):
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_output_dir_that_is_a_file_is_a_command_error(db, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError, match="cannot write the report to"):
        run(*PERIOD, "--output-dir", str(blocker), verbosity=0)


def test_service_is_exported_from_the_package():
    import django_engagement

    assert django_engagement.build_engagement_report is build_engagement_report


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--end", "9999-12-31"], ["--end", "0001-01-05"]])
def test_dates_past_the_calendar_are_a_command_error(args):
    with pytest.raises(CommandError, match=r"^--start/--end reach past the supported dates\.$"):
        call_command("engagement_report", *args, "--stdout", stdout=StringIO())
