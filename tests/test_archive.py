"""Archive integrity: a failed write (full disk) leaves a readable file, and a file or S3
part cut inside a member is read and restored up to its last complete member."""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import pickle
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from django_engagement.models import get_feed_model
from django_engagement.services import archive as archive_module
from django_engagement.services.archive import (
    ArchiveError,
    TruncatedArchiveError,
    open_archive,
    read_archive,
    restore_archive,
)
from django_engagement.services.retention import apply_retention
from tests.conftest import FROZEN_NOW as NOW
from tests.conftest import S3_BUCKET as BUCKET

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "frozen_now")]

BATCH = 40


def feed():
    return get_feed_model()._default_manager


@pytest.fixture
def make_expired(user):
    """``count`` expired milestone items (ids ascending with age order); ``noisy`` gives
    each a 1 KB description that gzip cannot shrink much, so a few batches fill 64 KB."""

    def make(count: int, *, noisy: bool = False) -> list[int]:
        Feed = get_feed_model()
        feed().bulk_create(
            Feed(
                user=user,
                activity_type="milestone",
                title=f"item {n}",
                description="".join(
                    hashlib.sha256(f"{n}-{k}".encode()).hexdigest() for k in range(16)
                )
                if noisy
                else "",
                data={"n": n},
                created_at=NOW - timedelta(days=800 - n),
            )
            for n in range(count)
        )
        return sorted(feed().values_list("pk", flat=True))

    return make


# -- disk full -----------------------------------------------------------------------------


class _FillingFile:
    """A real archive file on a disk that fills up during the third write: that write
    stores half its bytes (a short write, as the kernel does) and the next one fails
    with ENOSPC. The fallback when no tmpfs can be mounted."""

    def __init__(self, real: io.FileIO) -> None:
        self._real = real
        self._writes = 0

    def write(self, data: memoryview) -> int:
        self._writes += 1
        if self._writes == 3:
            return self._real.write(data[: len(data) // 2])
        if self._writes > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._real.write(data)

    def __getattr__(self, name: str):
        return getattr(self._real, name)


def _mount_tmpfs(directory: Path) -> bool:
    directory.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
            capture_output=True,
            check=False,
        )
    except OSError:
        return False
    return mounted.returncode == 0


@pytest.fixture(params=["tmpfs", "simulated"])
def full_disk(request, tmp_path, monkeypatch):
    """A directory whose disk fills up: a real 64 KB tmpfs (needs root, as in this
    project's CI), or a file that runs out of space on its third write."""
    directory = tmp_path / "disk"
    if request.param == "tmpfs":
        if not _mount_tmpfs(directory):
            pytest.skip("cannot mount a tmpfs here (not root?); the simulated case runs")
        yield request.param, directory
        subprocess.run(["umount", str(directory)], check=True)
    else:
        directory.mkdir()
        create = archive_module._create
        monkeypatch.setattr(archive_module, "_create", lambda path: _FillingFile(create(path)))
        yield request.param, directory


def test_disk_full_cuts_the_archive_back_to_its_last_complete_batch(full_disk, make_expired):
    _, directory = full_disk
    ids = make_expired(200, noisy=True)
    target = directory / "run.jsonl.gz"

    with pytest.raises(ArchiveError) as excinfo:
        apply_retention(archive_to=str(target), batch_size=BATCH)

    kept = set(feed().values_list("pk", flat=True))
    deleted = [pk for pk in ids if pk not in kept]
    size = target.stat().st_size
    assert str(excinfo.value) == (
        f"cannot write {str(target)!r}: No space left on device; "
        f"cut back to its last complete batch ({size:,} bytes)"
    )
    # A batch is a ~25.7 KB member: two fit in the 64 KB tmpfs, the third does not (the
    # simulated disk fills during the third write too). Those two batches were deleted,
    # the file holds exactly them, and every gzip reader (ours, the standard one) reads it.
    assert (len(deleted), len(kept)) == (2 * BATCH, 200 - 2 * BATCH)
    assert deleted == ids[: 2 * BATCH]
    assert [row["id"] for row in read_archive(target)] == deleted
    assert gzip.decompress(target.read_bytes()).count(b"\n") == len(deleted)
    assert restore_archive(target, batch_size=7) == len(deleted)
    assert feed().count() == len(ids)


def test_disk_full_is_a_one_line_command_error(full_disk, make_expired):
    _, directory = full_disk
    make_expired(200, noisy=True)
    target = directory / "run.jsonl.gz"

    with pytest.raises(CommandError) as excinfo:
        call_command(
            "cleanup_activity_feeds", "--archive-to", str(target), "--batch-size", str(BATCH)
        )

    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write {str(target)!r}: No space left on device; cut back")
    assert message.endswith("bytes); rows not archived were not deleted.")


def test_a_first_batch_that_does_not_fit_leaves_an_empty_readable_file(
    tmp_path, make_expired, monkeypatch
):
    create = archive_module._create

    def no_space(path):
        filling = _FillingFile(create(path))
        filling._writes = 2  # the first write is the short one
        return filling

    monkeypatch.setattr(archive_module, "_create", no_space)
    ids = make_expired(5)
    with pytest.raises(ArchiveError, match=r"cut back to its last complete batch \(0 bytes\)"):
        apply_retention(archive_to=str(tmp_path / "run.jsonl.gz"), batch_size=BATCH)

    assert (tmp_path / "run.jsonl.gz").read_bytes() == b""
    assert list(read_archive(tmp_path / "run.jsonl.gz")) == []
    assert sorted(feed().values_list("pk", flat=True)) == ids


# -- a file cut inside a member --------------------------------------------------------------


@pytest.fixture
def four_batches(tmp_path, make_expired):
    """An archive of 11 deleted rows in members of 3, 3, 3 and 2 rows, and the byte offset
    where each member ends (from the archive writer itself)."""
    ids = make_expired(11)
    rows = list(read_archive(apply_retention(archive_to=str(tmp_path / "a.gz")).archive))
    path = tmp_path / "run.jsonl.gz"
    ends = []
    with open_archive(str(path), name="unused") as archive:
        for start in range(0, len(rows), 3):
            archive.write(rows[start : start + 3])
            ends.append(archive.size)
    assert feed().count() == 0
    return path, ids, ends


def cut(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda ends: ends[2] + 5, id="in-the-header"),
        pytest.param(lambda ends: (ends[2] + ends[3]) // 2, id="in-the-data"),
        pytest.param(lambda ends: ends[3] - 1, id="in-the-trailer"),
    ],
)
@pytest.mark.parametrize("batch_size", [1, 2, 5, 2000])
def test_cut_in_the_last_member_restores_every_complete_row(four_batches, where, batch_size):
    path, ids, ends = four_batches
    size = where(ends)
    cut(path, size)

    with pytest.raises(TruncatedArchiveError) as excinfo:
        restore_archive(path, batch_size=batch_size)

    assert sorted(feed().values_list("pk", flat=True)) == ids[:9]
    error = excinfo.value
    assert (error.rows, error.restored) == (9, 9)
    assert [(d.location, d.valid_bytes, d.size) for d in error.damaged] == [
        (str(path), ends[2], size)
    ]
    assert str(error) == (
        f"incomplete archive: {path} ends inside a gzip member after byte {ends[2]:,} of "
        f"{size:,}; all 9 rows of complete members were read and 9 of them newly restored"
    )
    assert isinstance(error, EOFError)


def test_read_archive_yields_every_complete_row_before_reporting_the_cut(four_batches):
    path, ids, ends = four_batches
    cut(path, ends[3] - 3)
    seen = []

    with pytest.raises(TruncatedArchiveError, match="ends inside a gzip member") as excinfo:
        for row in read_archive(path):
            seen.append(row["id"])

    assert seen == ids[:9]
    assert excinfo.value.restored is None
    assert str(excinfo.value).endswith("all 9 rows of complete members were read")


def test_the_error_survives_pickling_with_its_counts(four_batches):
    path, _, ends = four_batches
    cut(path, ends[3] - 1)
    with pytest.raises(TruncatedArchiveError) as excinfo:
        restore_archive(path)

    copy = pickle.loads(pickle.dumps(excinfo.value))
    assert (copy.rows, copy.restored, copy.damaged) == (9, 9, excinfo.value.damaged)
    assert str(copy) == str(excinfo.value)


def test_a_cut_on_a_member_boundary_is_a_complete_archive(four_batches):
    path, ids, ends = four_batches
    cut(path, ends[1])

    assert [row["id"] for row in read_archive(path)] == ids[:6]
    assert restore_archive(path) == 6


def test_damaged_bytes_stop_the_read_after_the_members_before_them(four_batches):
    path, ids, ends = four_batches
    data = bytearray(path.read_bytes())
    middle = (ends[0] + ends[1]) // 2
    data[middle : middle + 4] = bytes(255 - b for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))

    with pytest.raises(TruncatedArchiveError, match="has damaged gzip data") as excinfo:
        restore_archive(path)

    assert excinfo.value.restored == 3
    assert excinfo.value.damaged[0].valid_bytes == ends[0]
    assert excinfo.value.damaged[0].size == ends[3]
    assert sorted(feed().values_list("pk", flat=True)) == ids[:3]


def test_restore_twice_after_a_cut_inserts_nothing_more(four_batches):
    path, ids, ends = four_batches
    cut(path, ends[3] - 1)
    with pytest.raises(TruncatedArchiveError):
        restore_archive(path)

    with pytest.raises(TruncatedArchiveError) as excinfo:
        restore_archive(path)
    assert (excinfo.value.rows, excinfo.value.restored) == (9, 0)


# -- S3 archives ---------------------------------------------------------------------------


def test_s3_run_is_read_and_restored_from_its_prefix(s3, make_expired):
    ids = make_expired(10)
    result = apply_retention(archive_to=f"s3://{BUCKET}/feed", batch_size=3)
    assert feed().count() == 0

    assert [row["id"] for row in read_archive(result.archive)] == ids
    assert restore_archive(result.archive, batch_size=4) == 10
    assert sorted(feed().values_list("pk", flat=True)) == ids


def test_s3_cut_part_is_reported_after_every_complete_part(s3, make_expired):
    ids = make_expired(10)
    result = apply_retention(archive_to=f"s3://{BUCKET}/feed", batch_size=3)
    prefix = result.archive.removeprefix(f"s3://{BUCKET}/")
    key = f"{prefix}part-00002.jsonl.gz"
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body[:-4])

    with pytest.raises(TruncatedArchiveError) as excinfo:
        restore_archive(result.archive, batch_size=4)

    # Parts 1, 3 and 4 (3 + 3 + 1 rows) are restored; part 2 is reported.
    assert sorted(feed().values_list("pk", flat=True)) == ids[:3] + ids[6:]
    assert (excinfo.value.rows, excinfo.value.restored) == (7, 7)
    assert [(d.location, d.valid_bytes, d.size) for d in excinfo.value.damaged] == [
        (f"s3://{BUCKET}/{key}", 0, len(body) - 4)
    ]


def test_one_s3_part_can_be_read_alone(s3, make_expired):
    ids = make_expired(5)
    result = apply_retention(archive_to=f"s3://{BUCKET}/feed/", batch_size=3)

    rows = read_archive(f"{result.archive}part-00002.jsonl.gz")
    assert [row["id"] for row in rows] == ids[3:]


def test_s3_read_errors_are_archive_errors(s3):
    with pytest.raises(ArchiveError, match="S3 error reading s3://no-such-bucket/x"):
        list(read_archive("s3://no-such-bucket/x"))
    with pytest.raises(ArchiveError, match=f"no archive parts .* under s3://{BUCKET}/typo/"):
        restore_archive(f"s3://{BUCKET}/typo/")
