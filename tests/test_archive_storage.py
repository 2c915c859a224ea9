"""Retention archives through Django's STORAGES (``--archive-to storage://alias/prefix``).

On a FileSystemStorage alias everywhere, and on django-storages' S3 backend against
moto's server on loopback (the ``s3`` fixture sets the ``AWS_*`` settings it reads).
"""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command

from django_engagement.models import get_feed_model
from django_engagement.services.archive import (
    ArchiveError,
    open_archive,
    read_archive,
    restore_archive,
)
from django_engagement.services.retention import apply_retention
from tests.conftest import S3_BUCKET

pytestmark = pytest.mark.django_db


def storages_with(settings, **aliases: dict) -> None:
    settings.STORAGES = {**settings.STORAGES, **aliases}


@pytest.fixture
def archive_dir(settings, tmp_path):
    """An ``archives`` alias: a FileSystemStorage rooted in a temporary directory."""
    storages_with(
        settings,
        archives={
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    )
    return tmp_path


def test_each_batch_is_one_file_under_a_run_prefix(archive_dir, expired_items):
    result = apply_retention(archive_to="storage://archives/feed", batch_size=2)

    assert result.archive.startswith("storage://archives/feed/activity-feed-")
    (run,) = (archive_dir / "feed").iterdir()
    parts = sorted(path.name for path in run.iterdir())
    assert parts == ["part-00001.jsonl.gz", "part-00002.jsonl.gz", "part-00003.jsonl.gz"]
    sizes = [len(gzip.decompress((run / part).read_bytes()).splitlines()) for part in parts]
    assert sizes == [2, 2, 1]
    assert get_feed_model().objects.get().title == "recent"


def test_a_storage_run_reads_and_restores(archive_dir, expired_items):
    archived = sorted(item.pk for item in expired_items[:5])
    result = apply_retention(archive_to="storage://archives/", batch_size=3)

    assert sorted(row["id"] for row in read_archive(result.archive)) == archived
    assert restore_archive(result.archive) == 5
    assert restore_archive(result.archive) == 0  # primary keys kept: nothing twice
    assert get_feed_model().objects.count() == 6


def test_command_archives_to_a_storage(archive_dir, expired_items):
    out = io.StringIO()
    call_command("cleanup_activity_feeds", "--archive-to", "storage://archives/nightly", stdout=out)

    assert "Deleted 5 activity feed items. Archived to storage://archives/nightly/" in (
        out.getvalue()
    )
    assert get_feed_model().objects.count() == 1


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real"])
def test_an_unknown_alias_is_one_line_and_deletes_nothing(archive_dir, expired_items, dry_run):
    args = ["--archive-to", "storage://nowhere/x"] + (["--dry-run"] if dry_run else [])
    with pytest.raises(CommandError) as excinfo:
        call_command("cleanup_activity_feeds", *args)

    assert str(excinfo.value) == (
        "storage://nowhere/ names no storage: add 'nowhere' to settings.STORAGES."
    )
    assert get_feed_model().objects.count() == 6


def test_no_alias_is_a_clear_error(archive_dir):
    with pytest.raises(ValueError, match=r"names no storage alias; use storage://alias/prefix"):
        open_archive("storage:///x", name="activity-feed")


def test_a_failing_write_keeps_the_rows(archive_dir, expired_items, monkeypatch):
    def full_disk(self, name, content, max_length=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "save", full_disk)
    with pytest.raises(CommandError) as excinfo:
        call_command("cleanup_activity_feeds", "--archive-to", "storage://archives/x")

    assert "No space left on device" in str(excinfo.value)
    assert str(excinfo.value).endswith("rows not archived were not deleted.")
    assert get_feed_model().objects.count() == 6


def test_a_mistyped_prefix_is_not_an_empty_archive(archive_dir):
    (archive_dir / "empty").mkdir()
    with pytest.raises(ArchiveError, match=r"no archive parts \(\*\.jsonl\.gz\) under"):
        list(read_archive("storage://archives/empty/"))


def test_s3_storage_backend_against_moto(s3, settings, expired_items):
    """django-storages' S3Storage reads the same AWS_* settings as ``s3://`` targets."""
    storages_with(settings, offsite={"BACKEND": "storages.backends.s3.S3Storage"})

    result = apply_retention(archive_to="storage://offsite/feed", batch_size=2)

    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=S3_BUCKET)["Contents"])
    run = result.archive.removeprefix("storage://offsite/")
    assert keys == [f"{run}part-0000{n}.jsonl.gz" for n in (1, 2, 3)]
    rows = [
        json.loads(line)
        for key in keys
        for line in gzip.decompress(
            s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read()
        ).splitlines()
    ]
    assert sorted(row["id"] for row in rows) == sorted(item.pk for item in expired_items[:5])
    assert restore_archive(result.archive) == 5
    assert get_feed_model().objects.count() == 6
