"""Retention archives on S3 (``--archive-to s3://bucket/prefix``) against moto on loopback."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.management import CommandError, call_command

from django_engagement.models import get_feed_model
from django_engagement.services import retention
from django_engagement.services.archive import ArchiveError
from django_engagement.services.retention import apply_retention
from tests.conftest import S3_BUCKET as BUCKET

pytestmark = pytest.mark.django_db


def objects(client) -> dict[str, list[dict]]:
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        item["Key"]: [
            json.loads(line)
            for line in gzip.decompress(
                client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            ).splitlines()
        ]
        for item in listed
    }


def test_each_batch_is_one_object_under_a_run_prefix(s3, expired_items):
    result = apply_retention(archive_to=f"s3://{BUCKET}/feed/", batch_size=2)

    stored = objects(s3)
    prefix = result.archive.removeprefix(f"s3://{BUCKET}/")
    assert result.archive.startswith(f"s3://{BUCKET}/feed/activity-feed-")
    assert sorted(stored) == [f"{prefix}part-0000{n}.jsonl.gz" for n in (1, 2, 3)]
    assert [len(rows) for _, rows in sorted(stored.items())] == [2, 2, 1]
    archived_ids = sorted(row["id"] for rows in stored.values() for row in rows)
    assert archived_ids == sorted(item.pk for item in expired_items[:5])
    assert get_feed_model().objects.get().title == "recent"


def test_command_archives_to_s3(s3, expired_items):
    out = io.StringIO()
    call_command("cleanup_activity_feeds", "--archive-to", f"s3://{BUCKET}/nightly", stdout=out)

    (key,) = objects(s3)
    assert key.startswith("nightly/activity-feed-") and key.endswith("/part-00001.jsonl.gz")
    assert f"Deleted 5 activity feed items. Archived to s3://{BUCKET}/nightly/" in out.getvalue()


def test_missing_bucket_fails_before_anything_is_deleted(s3, expired_items):
    with pytest.raises(CommandError) as excinfo:
        call_command("cleanup_activity_feeds", "--archive-to", "s3://no-such-bucket/x")

    assert "s3://no-such-bucket/x/" in str(excinfo.value)
    assert str(excinfo.value).endswith("rows not archived were not deleted.")
    assert get_feed_model().objects.count() == 6


def test_dry_run_checks_the_bucket_too(s3, expired_items):
    with pytest.raises(CommandError) as excinfo:
        call_command("cleanup_activity_feeds", "--dry-run", "--archive-to", "s3://no-such-bucket/x")

    assert str(excinfo.value).startswith("S3 error on s3://no-such-bucket/x/: ")
    assert str(excinfo.value).endswith("; the real run would stop here.")
    out = io.StringIO()
    call_command(
        "cleanup_activity_feeds", "--dry-run", "--archive-to", f"s3://{BUCKET}/x", stdout=out
    )
    assert out.getvalue().rstrip().endswith("Would delete 5 activity feed items.")
    assert objects(s3) == {}
    assert get_feed_model().objects.count() == 6


def test_upload_failure_mid_run_keeps_the_unarchived_rows(s3, expired_items, monkeypatch):
    calls = []
    real_open = retention.open_archive

    def open_failing(target, *, name):
        archive = real_open(target, name=name)
        real_write = archive.write

        def write(rows):
            calls.append(len(rows))
            if len(calls) == 2:
                raise ArchiveError("simulated upload failure")
            real_write(rows)

        archive.write = write
        return archive

    monkeypatch.setattr(retention, "open_archive", open_failing)

    with pytest.raises(ArchiveError):
        apply_retention(archive_to=f"s3://{BUCKET}/feed", batch_size=2)

    archived = [row["id"] for rows in objects(s3).values() for row in rows]
    remaining = set(get_feed_model().objects.values_list("pk", flat=True))
    assert len(archived) == 2
    assert not set(archived) & remaining
    assert len(remaining) == 4


def test_restore_an_s3_run_as_the_guide_shows(s3, expired_items, tmp_path):
    """The restore recipe of docs/guide/retention.md, step by step."""
    from pathlib import Path

    from django_engagement.services.archive import restore_archive, s3_client

    before = list(get_feed_model().objects.order_by("pk").values())
    result = apply_retention(archive_to=f"s3://{BUCKET}/engagement/feed", batch_size=2)
    run_prefix = result.archive.removeprefix(f"s3://{BUCKET}/")
    assert get_feed_model().objects.count() == 1

    client = s3_client()
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=run_prefix)
    restored = 0
    for item in sorted(listing.get("Contents", []), key=lambda item: item["Key"]):
        part = Path(tmp_path) / Path(item["Key"]).name
        client.download_file(BUCKET, item["Key"], str(part))
        restored += restore_archive(part)

    assert restored == 5
    assert list(get_feed_model().objects.order_by("pk").values()) == before
