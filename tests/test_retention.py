"""apply_retention, the archive it writes and the cleanup_activity_feeds command."""

from __future__ import annotations

import gzip
import os
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_engagement.conf import DEFAULT_FEED_RETENTION
from django_engagement.models import get_feed_model
from django_engagement.services import retention
from django_engagement.services.archive import read_archive, restore_archive
from django_engagement.services.retention import apply_retention
from django_engagement.signals import retention_applied
from tests.conftest import FROZEN_NOW as NOW
from tests.helpers import command_output

SECOND = timedelta(seconds=1)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "frozen_now")]


@pytest.fixture
def make_items(user):
    Feed = get_feed_model()

    def make(activity_type: str, *ages: timedelta, **fields) -> list:
        items = [
            Feed(
                user=fields.get("user", user),
                activity_type=activity_type,
                title=f"{activity_type} {index}",
                data={"n": index, "nested": {"x": [1, 2]}},
                created_at=NOW - age,
            )
            for index, age in enumerate(ages)
        ]
        return Feed.objects.bulk_create(items)

    return make


def around_cutoff(days: int) -> tuple[timedelta, timedelta, timedelta]:
    """Ages one second past the cutoff (expired), exactly on it and one second inside (kept)."""
    cutoff = timedelta(days=days)
    return cutoff + SECOND, cutoff, cutoff - SECOND


@pytest.fixture
def policy_rows(make_items):
    """For every type of the default table plus an unlisted one: 1 expired, 2 kept."""
    for activity_type, days in DEFAULT_FEED_RETENTION.items():
        make_items(activity_type, *around_cutoff(days))
    make_items("custom_type", *around_cutoff(180))


def remaining_types() -> dict[str, int]:
    Feed = get_feed_model()
    counts: dict[str, int] = {}
    for activity_type in Feed.objects.values_list("activity_type", flat=True):
        counts[activity_type] = counts.get(activity_type, 0) + 1
    return counts


def test_each_type_expires_strictly_before_its_cutoff(policy_rows):
    result = apply_retention()

    expected = dict.fromkeys([*DEFAULT_FEED_RETENTION, "custom_type"], 1)
    assert result.deleted == dict(sorted(expected.items()))
    assert result.counts == result.deleted
    assert result.total == 8
    assert result.dry_run is False and result.archive is None
    assert result.cutoffs["reminder"] == NOW - timedelta(days=30)
    assert result.cutoffs["*"] == NOW - timedelta(days=180)
    # The rows on and inside each cutoff survive.
    assert remaining_types() == dict.fromkeys(expected, 2)


def test_dry_run_counts_per_type_and_deletes_nothing(policy_rows, make_items):
    make_items("milestone", timedelta(days=400), timedelta(days=500))

    result = apply_retention(dry_run=True)

    assert result.dry_run is True
    assert result.deleted == {}
    assert result.counts["milestone"] == 3
    assert result.counts["custom_type"] == 1
    assert result.total == 10
    assert get_feed_model().objects.count() == 26


def test_types_without_expired_rows_are_listed_with_zero(make_items):
    make_items("milestone", timedelta(days=10))

    result = apply_retention()

    assert result.deleted == dict.fromkeys(sorted(DEFAULT_FEED_RETENTION), 0)


def test_activity_type_limits_the_run(policy_rows):
    result = apply_retention(activity_type="reminder")

    assert result.deleted == {"reminder": 1}
    assert list(result.cutoffs) == ["reminder"]
    assert get_feed_model().objects.count() == 23


def test_activity_type_only_present_in_the_table_uses_the_default(make_items):
    make_items("custom_type", *around_cutoff(180))

    assert apply_retention(activity_type="custom_type").deleted == {"custom_type": 1}


def test_unknown_activity_type_lists_the_known_ones(make_items):
    make_items("custom_type", timedelta(days=1))

    with pytest.raises(ValueError) as excinfo:
        apply_retention(activity_type="nope")

    message = str(excinfo.value)
    assert message.startswith(
        "Unknown activity type 'nope'; known types: content_available, custom_type, "
    )
    assert "reminder" in message and "milestone" in message


def test_older_than_days_overrides_every_type(make_items):
    make_items("milestone", *around_cutoff(7))
    make_items("custom_type", *around_cutoff(7))

    result = apply_retention(older_than_days=7)

    assert result.deleted["milestone"] == 1
    assert result.deleted["custom_type"] == 1
    assert result.cutoffs["*"] == NOW - timedelta(days=7)
    assert get_feed_model().objects.count() == 4


def test_feed_retention_setting_is_honoured(engagement_settings, make_items):
    engagement_settings.update(FEED_RETENTION={"milestone": 5}, FEED_RETENTION_DEFAULT=10)
    make_items("milestone", *around_cutoff(5))
    make_items("reminder", *around_cutoff(10))

    result = apply_retention()

    assert result.deleted == {"reminder": 1, "milestone": 1}
    assert set(result.cutoffs) == {"milestone", "*"}


def test_deletes_in_bounded_batches(make_items):
    make_items("milestone", *[timedelta(days=400 + n) for n in range(5)])
    make_items("custom_type", *[timedelta(days=200 + n) for n in range(3)])

    with CaptureQueriesContext(connection) as queries:
        result = apply_retention(batch_size=2)

    deletes = [q["sql"] for q in queries if "DELETE FROM" in q["sql"]]
    if connection.vendor == "postgresql":
        # Ranges of time, each as two DELETEs: the read rows, then the unread ones that
        # lower the counters. Only a policy's first range is found by a probe.
        assert deletes and all('"created_at" >=' in sql and '"is_read"' in sql for sql in deletes)
        unread_deletes = [sql for sql in deletes if "counted AS" in sql]
        assert len(unread_deletes) * 2 == len(deletes)
        probes = [q["sql"] for q in queries if "OFFSET 1" in q["sql"] and "LIMIT 1" in q["sql"]]
        assert len(probes) == 2  # milestone and custom_type; the empty policies need none
    else:
        # milestone 2+2+1, custom_type 2+1: DELETE ... WHERE id IN (<at most 2 ids>).
        assert len(deletes) == 5
        assert all(re.search(r"\bIN \(\d+(, \d+)?\)", sql) for sql in deletes)
    assert result.deleted["milestone"] == 5 and result.deleted["custom_type"] == 3
    assert get_feed_model().objects.count() == 0


def test_batches_stay_near_the_batch_size(make_items):
    """100 expired rows an hour apart in batches of 10: every row goes, no batch holds
    more than twice the batch size (PostgreSQL sizes its time ranges from the last one),
    and elsewhere each batch is exactly 10."""
    make_items("milestone", *[timedelta(days=400, hours=n) for n in range(100)])
    done: list[int] = []

    result = apply_retention(batch_size=10, on_batch=lambda label, rows: done.append(rows))

    sizes = [b - a for a, b in zip([0, *done], done, strict=False)]
    assert result.deleted["milestone"] == 100 and sum(sizes) == 100
    assert get_feed_model().objects.count() == 0
    if connection.vendor == "postgresql":
        assert max(sizes) <= 20 and len(sizes) <= 15
    else:
        assert sizes == [10] * 10


def test_archived_batches_delete_by_id(tmp_path, make_items):
    make_items("milestone", *[timedelta(days=400 + n) for n in range(5)])

    with CaptureQueriesContext(connection) as queries:
        apply_retention(batch_size=2, archive_to=str(tmp_path))

    # On PostgreSQL each DELETE leads a statement that also lowers the unread counters.
    starts = ("DELETE", "WITH changed AS (DELETE")
    deletes = [q["sql"] for q in queries if q["sql"].startswith(starts)]
    assert len(deletes) == 3
    assert all(" IN (" in sql or " = ANY(" in sql for sql in deletes)


@pytest.mark.parametrize("archived", [False, True])
def test_batches_walk_forward_through_rows_of_one_time(tmp_path, make_items, archived):
    """Batches of 2 over 5 rows of one second and 3 older: every row goes, each once, and
    on PostgreSQL every batch after the first starts at the time the last one reached
    (not at the oldest row again, past entries it deleted that VACUUM has not yet removed)."""
    same = timedelta(days=500)
    make_items("milestone", *[same] * 5, *[same + timedelta(days=n) for n in (1, 2, 3)])
    archive = {"archive_to": str(tmp_path / "run.jsonl.gz")} if archived else {}

    with CaptureQueriesContext(connection) as queries:
        result = apply_retention(batch_size=2, **archive)

    assert result.deleted["milestone"] == 8
    assert get_feed_model().objects.count() == 0
    if archived:
        assert sorted(row["title"] for row in read_archive(tmp_path / "run.jsonl.gz")) == sorted(
            f"milestone {n}" for n in range(8)
        )
    if connection.vendor == "postgresql":
        # Each batch's statement reads its range after the range the last one reached.
        selects = [
            q["sql"]
            for q in queries
            if "\"activity_type\" = 'milestone'" in q["sql"] and "LIMIT" in q["sql"]
        ]
        assert selects  # the archive reads its batches, the in-place DELETE probes its range
        assert '"created_at" >' not in selects[0]
        assert all('"created_at" >' in sql for sql in selects[1:])


def test_invalid_arguments_raise_value_error():
    with pytest.raises(ValueError, match="batch_size"):
        apply_retention(batch_size=0)
    with pytest.raises(ValueError, match="older_than_days"):
        apply_retention(older_than_days=-1)


def test_retention_applied_is_sent_after_commit(policy_rows, django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, **kwargs):
        received.append((sender, kwargs))

    retention_applied.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = apply_retention(dry_run=True)
    finally:
        retention_applied.disconnect(receiver)

    assert len(received) == 1
    sender, kwargs = received[0]
    assert sender is get_feed_model()
    assert kwargs["result"] is result and kwargs["dry_run"] is True


def test_archive_holds_exactly_the_deleted_rows(tmp_path, make_items):
    expired = make_items("milestone", *[timedelta(days=400 + n) for n in range(5)])
    make_items("milestone", timedelta(days=1))
    originals = {
        row["id"]: row
        for row in get_feed_model().objects.filter(pk__in=[i.pk for i in expired]).values()
    }

    result = apply_retention(archive_to=str(tmp_path), batch_size=2)

    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("activity-feed-")
    assert result.archive == str(files[0])
    rows = list(read_archive(files[0]))
    assert sorted(row["id"] for row in rows) == sorted(originals)
    first = next(row for row in rows if row["id"] == expired[0].pk)
    assert first["data"] == {"n": 0, "nested": {"x": [1, 2]}}
    assert first["created_at"] == (NOW - timedelta(days=400)).isoformat()
    assert get_feed_model().objects.count() == 1


def test_restore_brings_the_archived_rows_back_unchanged(tmp_path, make_items, other_user):
    make_items("milestone", *[timedelta(days=400 + n) for n in range(3)])
    make_items("reminder", timedelta(days=31), user=other_user)
    before = list(get_feed_model().objects.order_by("pk").values())

    result = apply_retention(archive_to=str(tmp_path / "run.jsonl.gz"))
    assert get_feed_model().objects.count() == 0

    assert restore_archive(result.archive) == 4
    assert list(get_feed_model().objects.order_by("pk").values()) == before
    # Restoring again inserts nothing: rows keep their primary keys.
    assert restore_archive(result.archive) == 0


def test_restore_skips_deleted_users(tmp_path, make_items, other_user):
    make_items("milestone", timedelta(days=400))
    make_items("milestone", timedelta(days=400), user=other_user)
    result = apply_retention(archive_to=str(tmp_path))
    other_user.delete()

    assert restore_archive(result.archive) == 1
    assert get_feed_model().objects.get().user_id != other_user.pk


def test_crash_mid_run_never_deletes_unarchived_rows(tmp_path, make_items, monkeypatch):
    all_ids = {
        item.pk for item in make_items("milestone", *[timedelta(days=400 + n) for n in range(5)])
    }
    real_delete = retention._delete_batch
    calls = []

    def failing_delete(model, ids):
        calls.append(list(ids))
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return real_delete(model, ids)

    monkeypatch.setattr(retention, "_delete_batch", failing_delete)

    with pytest.raises(RuntimeError, match="simulated crash"):
        apply_retention(archive_to=str(tmp_path), batch_size=2)

    archive = next(tmp_path.iterdir())
    archived = {row["id"] for row in read_archive(archive)}
    remaining = set(get_feed_model().objects.values_list("pk", flat=True))
    deleted = set(calls[0])
    # Archived = batch 1 (deleted) + batch 2 (archived, then the crash rolled it back).
    assert archived == deleted | set(calls[1])
    assert len(archived) == 4
    assert remaining == all_ids - deleted
    assert len(remaining) == 3


def test_archive_to_an_existing_file_is_refused(tmp_path, make_items):
    make_items("milestone", timedelta(days=400))
    target = tmp_path / "taken.jsonl.gz"
    target.write_bytes(gzip.compress(b""))

    with pytest.raises(ValueError, match="already exists"):
        apply_retention(archive_to=str(target))
    assert get_feed_model().objects.count() == 1


# --- cleanup_activity_feeds -------------------------------------------------------------


def run(*args, tty=False):
    return command_output("cleanup_activity_feeds", *args, tty=tty)


def test_command_dry_run_prints_a_per_type_summary(policy_rows):
    output = run("--dry-run")

    assert "  reminder: would delete 1 (created before 2026-01-30 12:00 UTC)" in output
    assert "  custom_type: would delete 1 (created before 2025-09-02 12:00 UTC)" in output
    assert output.rstrip().endswith("Would delete 8 activity feed items.")
    assert get_feed_model().objects.count() == 24


def test_command_deletes_and_archives(policy_rows, tmp_path):
    output = run("--archive-to", str(tmp_path), "--batch-size", "3")

    archive = next(tmp_path.iterdir())
    assert f"Deleted 8 activity feed items. Archived to {archive}" in output
    assert len(list(read_archive(archive))) == 8
    assert get_feed_model().objects.count() == 16


def test_command_activity_type_and_older_than_days(make_items):
    make_items("milestone", *around_cutoff(3))

    output = run("--activity-type", "milestone", "--older-than-days", "3")

    assert "  milestone: deleted 1 (created before 2026-02-26 12:00 UTC)" in output
    assert get_feed_model().objects.count() == 2


def test_command_progress_only_on_a_terminal(make_items):
    make_items("milestone", *[timedelta(days=400 + n) for n in range(3)])
    make_items("milestone", *[timedelta(days=400 + n) for n in range(3)])

    assert "\r" not in run("--batch-size", "2", "--dry-run")
    output = run("--batch-size", "2", tty=True)
    assert "\r\033[Kmilestone: 2 rows" in output
    assert "\r\033[Kmilestone: 6 rows" in output
    assert "deleted 6" in output


def test_command_verbosity_zero_prints_nothing(make_items):
    make_items("milestone", timedelta(days=400))

    assert run("--verbosity", "0", tty=True) == ""
    assert get_feed_model().objects.count() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--activity-type", "nope"], "Unknown activity type 'nope'; known types: "),
        (["--older-than-days", "-1"], "--older-than-days must be 0 or more."),
        (["--batch-size", "0"], "--batch-size must be between 1 and 20000."),
        (["--batch-size", "x"], "argument --batch-size: invalid int value: 'x'"),
        (["--archive-to", "s3://"], "'s3://' names no bucket; use s3://bucket/prefix."),
    ],
)
def test_command_errors_are_one_line(args, message, make_items):
    make_items("milestone", timedelta(days=400))

    with pytest.raises(CommandError) as excinfo:
        run(*args)

    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert get_feed_model().objects.count() == 1


def test_command_existing_archive_file_is_a_command_error(tmp_path, make_items):
    make_items("milestone", timedelta(days=400))
    target = tmp_path / "taken.jsonl.gz"
    target.write_bytes(b"")

    with pytest.raises(CommandError, match="already exists"):
        run("--archive-to", str(target))


def bad_archive_targets(tmp_path):
    """Each unusable --archive-to PATH and the start of its message."""
    (tmp_path / "notes.txt").write_text("not a directory")
    (tmp_path / "taken.jsonl.gz").write_bytes(b"")
    (tmp_path / "dir.jsonl.gz").mkdir()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return [
        ("notes.txt", "archive target '{p}' is a file; use a directory or a new file name"),
        ("archive.jsonl", "archive target '{p}' looks like a file name; use a directory or a"),
        ("taken.jsonl.gz", "archive file '{p}' already exists."),
        ("dir.jsonl.gz", "archive file '{p}' is a directory; name a new .gz file."),
        ("notes.txt/sub/a.jsonl.gz", "cannot create archive '{p}': '{tmp}/notes.txt' is not a"),
        ("locked/new", "cannot create archive '{p}': '{tmp}/locked' is not writable."),
    ]


@pytest.mark.parametrize("extra", [[], ["--dry-run"]], ids=["real", "dry-run"])
def test_command_validates_the_archive_target_in_both_modes(tmp_path, make_items, extra):
    make_items("milestone", timedelta(days=400))
    if os.geteuid() == 0:  # root writes anywhere: the permission case cannot fail
        cases = bad_archive_targets(tmp_path)[:-1]
    else:
        cases = bad_archive_targets(tmp_path)
    before = sorted(tmp_path.rglob("*"))

    for name, message in cases:
        path = str(tmp_path / name)
        with pytest.raises(CommandError) as excinfo:
            run("--archive-to", path, *extra)
        assert str(excinfo.value).startswith(message.format(p=path, tmp=tmp_path)), name
        assert "\n" not in str(excinfo.value)

    assert sorted(tmp_path.rglob("*")) == before  # nothing created, no directory made
    assert get_feed_model().objects.count() == 1


def test_command_dry_run_accepts_a_new_archive_file_and_creates_nothing(tmp_path, make_items):
    make_items("milestone", timedelta(days=400))

    for target in (tmp_path / "new" / "run.jsonl.gz", tmp_path / "new-dir", tmp_path):
        output = run("--dry-run", "--archive-to", str(target))
        assert output.rstrip().endswith("Would delete 1 activity feed items.")
    assert list(tmp_path.iterdir()) == []

    output = run("--archive-to", str(tmp_path / "new" / "run.jsonl.gz"))
    assert f"Archived to {tmp_path / 'new' / 'run.jsonl.gz'}" in output
    assert (tmp_path / "new" / "run.jsonl.gz").is_file()  # the file itself, not a directory
    assert len(list(read_archive(tmp_path / "new" / "run.jsonl.gz"))) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("extra", [[], ["--dry-run"]])
def test_command_older_than_days_past_the_calendar_is_a_command_error(extra):
    with pytest.raises(CommandError, match=r"^--older-than-days reaches past the supported"):
        command_output("cleanup_activity_feeds", "--older-than-days", "1000000000", *extra)
