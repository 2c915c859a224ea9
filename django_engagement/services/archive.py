"""Crash-safe archives of deleted rows: gzipped JSON Lines, locally or on S3.

Usage::

    from django_engagement.services.archive import open_archive, restore_archive

    with open_archive("/var/backups/engagement", name="activity-feed") as archive:
        archive.write(rows)          # durable (fsynced / uploaded) when it returns
    restore_archive(archive.location)

A local archive is one file per run. Each ``write()`` appends one complete gzip
member and fsyncs it, so the file is readable by ``gzip.open`` even if the
process dies half-way (gzip readers concatenate members). A write that fails (a
full disk) cuts the file back to the end of the last complete member, so the
archive stays readable. S3 objects cannot be appended to, so an
``s3://bucket/prefix`` archive is one key prefix per run with one
``part-NNNNN.jsonl.gz`` object per write, each uploaded before it returns.
``storage://alias/prefix`` does the same through a Django storage of
``settings.STORAGES`` (django-storages' S3 backend, a network file system, ...).

``read_archive`` and ``restore_archive`` read a file or an ``s3://``/``storage://`` run prefix
member by member: every row of every complete member is yielded (restored), and
a member cut short (a crash mid-write, a file copied in part) is reported after
that with ``TruncatedArchiveError``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..models import get_event_model, get_feed_model

# Speed matters more than the last few percent of size: archiving runs inside
# the delete loop and level 6 is about twice as slow as level 1 on JSON rows.
COMPRESS_LEVEL = 3

S3_SCHEME = "s3://"
STORAGE_SCHEME = "storage://"


class ArchiveError(Exception):
    """Writing the archive failed; the batch being archived was not deleted.

    Also raised when an ``s3://`` archive cannot be listed or read.
    """


@dataclass(frozen=True)
class ArchiveDamage:
    """One file (or S3 part) whose tail is not a complete gzip member.

    ``valid_bytes``: where its last complete member ends (everything before was read);
    ``size``: how many bytes it has; ``reason``: what was found after ``valid_bytes``.
    """

    location: str
    valid_bytes: int
    size: int
    reason: str


class TruncatedArchiveError(EOFError):
    """An archive ends inside a gzip member: a write or a copy cut short.

    Raised only after every row of every complete member was yielded by
    ``read_archive`` (``rows``) or inserted by ``restore_archive`` (``restored``).
    The rows of the cut member are lost from the archive, but the retention run that
    was writing them stopped before deleting them. ``damaged`` lists each file or S3
    part concerned. An ``EOFError``, as ``gzip`` raises for a cut file.
    """

    def __init__(self, damaged: list[ArchiveDamage], rows: int) -> None:
        super().__init__(damaged, rows)  # args rebuild it when pickled (a Celery result)
        self.damaged = damaged
        self.rows = rows
        self.restored: int | None = None

    def __str__(self) -> str:
        parts = "; ".join(
            f"{d.location} {d.reason} after byte {d.valid_bytes:,} of {d.size:,}"
            for d in self.damaged
        )
        done = f"{self.rows:,} rows of complete members were read"
        if self.restored is not None:
            done += f" and {self.restored:,} of them newly restored"
        return f"incomplete archive: {parts}; all {done}"


def _json_default(value: Any) -> Any:
    # Full precision on purpose: DjangoJSONEncoder truncates microseconds,
    # which would make restored rows differ from the originals.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# One encoder for every row: json.dumps() with options builds a new one per call.
_ENCODER = json.JSONEncoder(default=_json_default, separators=(",", ":"))


class RawJSON(str):
    """A value that already is JSON text (a JSON column read as text) and is written
    as is: decoding it only to encode it again would double the archive's CPU cost."""


def _encode_row(row: dict[str, Any] | RawJSON) -> str:
    if isinstance(row, RawJSON):  # a whole row the database already wrote as JSON
        return row
    raw = {key: value for key, value in row.items() if isinstance(value, RawJSON)}
    if not raw:
        return _ENCODER.encode(row)
    plain = _ENCODER.encode({key: value for key, value in row.items() if key not in raw})
    spliced = ",".join(f"{_ENCODER.encode(key)}:{value}" for key, value in raw.items())
    return f"{plain[:-1]},{spliced}}}" if len(plain) > 2 else f"{{{spliced}}}"


def encode_rows(rows: Iterable[dict[str, Any] | RawJSON]) -> bytes:
    """One gzip member holding ``rows`` as JSON Lines."""
    lines = "".join(f"{_encode_row(row)}\n" for row in rows)
    return gzip.compress(lines.encode(), compresslevel=COMPRESS_LEVEL)


def _create(path: Path) -> IO[bytes]:
    # "x": never overwrite an earlier run's archive. Unbuffered: after a failed write
    # no buffered bytes may reach the file later (at close) behind the cut-back end.
    return path.open("xb", buffering=0)


class LocalArchive:
    """Appends gzip members to one new file; every write is fsynced before returning.

    A failed write (``ENOSPC``, ``EIO``) truncates the file back to where the member
    began and fsyncs that, so the file always ends with a complete member.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = _create(path)
        self.location = str(path)
        self.rows_written = 0
        self.size = 0

    def write(self, rows: list[dict[str, Any] | RawJSON]) -> None:
        member = memoryview(encode_rows(rows))
        start = self.size
        try:
            while member:  # a raw write may be partial (a disk filling up)
                member = member[self._file.write(member) :]
            os.fsync(self._file.fileno())
        except OSError as exc:
            message = f"cannot write {self.location!r}: {exc.strerror or exc}"
            raise ArchiveError(message + self._cut_back(start)) from exc
        self.size = self._file.tell()
        self.rows_written += len(rows)

    def _cut_back(self, size: int) -> str:
        """Drop a partly written member; the suffix of the error message saying how."""
        try:
            os.ftruncate(self._file.fileno(), size)
            self._file.seek(size)
            os.fsync(self._file.fileno())
        except OSError as exc:
            return (
                f"; could not cut it back to its last complete batch ({exc.strerror or exc}):"
                " readers report the incomplete tail"
            )
        return f"; cut back to its last complete batch ({size:,} bytes)"

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LocalArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _PartsArchive:
    """One complete ``part-NNNNN.jsonl.gz`` per write under ``location``: for stores that
    cannot append (S3, Django storages). A part is stored before ``write`` returns."""

    def __init__(self, location: str, prefix: str) -> None:
        self._prefix = prefix
        self._parts = 0
        self.location = location
        self.rows_written = 0

    def _put(self, name: str, body: bytes) -> None:
        raise NotImplementedError

    def write(self, rows: list[dict[str, Any] | RawJSON]) -> None:
        self._parts += 1
        self._put(f"{self._prefix}/part-{self._parts:05d}.jsonl.gz", encode_rows(rows))
        self.rows_written += len(rows)

    def close(self) -> None:
        """Nothing to flush: every part is complete once ``write`` returns."""

    def __enter__(self) -> _PartsArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class S3Archive(_PartsArchive):
    """One object per write under ``s3://bucket/<prefix>/<run>/``; uploaded before returning."""

    def __init__(self, bucket: str, prefix: str) -> None:
        super().__init__(f"{S3_SCHEME}{bucket}/{prefix}/", prefix)
        self._client = s3_client()
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors = (BotoCoreError, ClientError)
        self._bucket = bucket
        # Fail before anything is deleted when the bucket is missing or unreachable.
        self._call(self._client.head_bucket, Bucket=bucket)

    def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except self._errors as exc:
            raise ArchiveError(f"S3 error on {self.location}: {exc}") from exc

    def _put(self, name: str, body: bytes) -> None:
        self._call(
            self._client.put_object,
            Bucket=self._bucket,
            Key=name,
            Body=body,
            ContentType="application/gzip",
        )


def archive_storage(alias: str) -> Storage:
    """The Django storage ``alias`` of ``settings.STORAGES``; a one-line error when missing."""
    try:
        return storages[alias]
    except ImproperlyConfigured as exc:  # InvalidStorageError
        raise ImproperlyConfigured(
            f"storage://{alias}/ names no storage: add {alias!r} to settings.STORAGES."
        ) from exc


class StorageArchive(_PartsArchive):
    """One file per write under ``storage://alias/<prefix>/<run>/`` of a Django storage."""

    def __init__(self, alias: str, prefix: str) -> None:
        super().__init__(f"{STORAGE_SCHEME}{alias}/{prefix}/", prefix)
        self._storage = archive_storage(alias)

    def _put(self, name: str, body: bytes) -> None:
        try:
            saved = self._storage.save(name, ContentFile(body))
        except Exception as exc:  # each backend has its own errors (OSError, botocore's, ...)
            raise ArchiveError(f"storage error on {self.location}: {exc}") from exc
        if saved != name:  # the storage renamed it: another run wrote the same part
            raise ArchiveError(f"{self.location}: {name!r} already existed (saved as {saved!r}).")


Archive = LocalArchive | S3Archive | StorageArchive


def s3_client() -> Any:
    """A boto3 S3 client from the ``AWS_*`` settings (credentials may also come from the
    environment or an instance role, as boto3 does by default)."""
    try:
        import boto3
    except ImportError as exc:
        raise ImproperlyConfigured(
            "Archiving to s3:// needs boto3: pip install 'django-engagement[s3]'."
        ) from exc
    return boto3.client(
        "s3",
        region_name=getattr(settings, "AWS_S3_REGION_NAME", None),
        aws_access_key_id=getattr(settings, "AWS_ACCESS_KEY_ID", None),
        aws_secret_access_key=getattr(settings, "AWS_SECRET_ACCESS_KEY", None),
        endpoint_url=getattr(settings, "AWS_S3_ENDPOINT_URL", None),
    )


def _split_target(target: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` or ``storage://alias/prefix`` as ``(bucket or alias, prefix)``."""
    scheme = S3_SCHEME if target.startswith(S3_SCHEME) else STORAGE_SCHEME
    head, _, prefix = target[len(scheme) :].partition("/")
    if not head:
        what = "bucket" if scheme == S3_SCHEME else "storage alias"
        raise ValueError(f"{target!r} names no {what}; use {scheme}{what.split()[-1]}/prefix.")
    return head, prefix.strip("/")


def _remote_archive(target: str) -> type[S3Archive] | type[StorageArchive] | None:
    """The archive class of a remote ``target``, or None for a local path."""
    if target.startswith(S3_SCHEME):
        return S3Archive
    if target.startswith(STORAGE_SCHEME):
        return StorageArchive
    return None


def _writable_ancestor(path: Path, target: str) -> None:
    """The nearest existing ancestor of ``path`` must be a directory this process can write."""
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"cannot create archive {target!r}: {str(ancestor)!r} is not a directory.")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"cannot create archive {target!r}: {str(ancestor)!r} is not writable.")


def local_archive_file(target: str, *, name: str, stamp: str) -> Path:
    """The file a local ``target`` means, checked without creating anything.

    ``target`` ending in ``.gz`` is that file (it must not exist); anything else is a
    directory (existing, or created on the real run) that receives
    ``<name>-<stamp>.jsonl.gz``. An existing file or a missing path with another
    extension (``archive.jsonl``) is refused rather than turned into a directory.
    """
    path = Path(target)
    if path.suffix == ".gz":
        if path.is_dir():
            raise ValueError(f"archive file {target!r} is a directory; name a new .gz file.")
        if path.exists():
            raise ValueError(f"archive file {target!r} already exists.")
        _writable_ancestor(path.parent, target)
        return path
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"archive target {target!r} is a file; use a directory or a new file name "
            "ending in .gz."
        )
    if not path.exists() and path.suffix:
        raise ValueError(
            f"archive target {target!r} looks like a file name; use a directory or a file "
            "name ending in .gz."
        )
    _writable_ancestor(path, target)
    return path / f"{name}-{stamp}.jsonl.gz"


def check_archive_target(target: str, *, name: str) -> None:
    """Validate ``target`` as ``open_archive`` would, creating nothing (for dry runs).

    Raises the same one-line ``ValueError``/``ImproperlyConfigured``/``ArchiveError``;
    for S3 it asks for the bucket (``head_bucket``) like the real run does, for a
    storage it resolves the alias.
    """
    remote = _remote_archive(target)
    if remote is not None:
        remote(*_split_target(target))  # nothing written until write()
        return
    local_archive_file(target, name=name, stamp="check")


def open_archive(target: str, *, name: str) -> Archive:
    """Open a new archive for one run.

    ``target`` is a directory (a new ``<name>-<UTC timestamp>.jsonl.gz`` is created in
    it), a file path ending in ``.gz`` (must not exist yet), ``s3://bucket/prefix`` or
    ``storage://alias/prefix`` (``alias`` in ``settings.STORAGES``): a new run prefix
    ``<prefix>/<name>-<UTC timestamp>/`` there. Raises ``ValueError`` or
    ``ImproperlyConfigured`` with a one-line message.
    """
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S%fZ")
    remote = _remote_archive(target)
    if remote is not None:
        head, prefix = _split_target(target)
        run_prefix = "/".join(part for part in (prefix, f"{name}-{stamp}") if part)
        return remote(head, run_prefix)
    path = local_archive_file(target, name=name, stamp=stamp)
    try:
        return LocalArchive(path)
    except FileExistsError as exc:
        raise ValueError(f"archive file {str(path)!r} already exists.") from exc
    except OSError as exc:
        raise ValueError(f"cannot create archive {str(path)!r}: {exc.strerror}.") from exc


READ_CHUNK = 256 * 1024


def _members(stream: IO[bytes], location: str) -> Iterator[bytes | ArchiveDamage]:
    """The decompressed text of each complete gzip member of ``stream``, in order,
    then an ``ArchiveDamage`` if the stream does not end on a member boundary.

    A member is yielded only once its trailer (CRC and length) checked out, so a cut
    member never contributes a row. Memory: one member (one batch) at a time.
    """
    valid = fed = 0  # end of the last complete member; bytes fed to the current one
    decompressor = zlib.decompressobj(wbits=31)  # 31: gzip framing, checked trailer
    parts: list[bytes] = []
    while chunk := stream.read(READ_CHUNK):
        data = chunk
        while data:
            try:
                parts.append(decompressor.decompress(data))
            except zlib.error as exc:
                size = valid + fed + len(data) + _remaining(stream)
                yield ArchiveDamage(location, valid, size, f"has damaged gzip data ({exc})")
                return
            fed += len(data)
            if not decompressor.eof:
                break
            data = decompressor.unused_data
            valid += fed - len(data)
            member, parts = b"".join(parts), []
            yield member
            decompressor, fed = zlib.decompressobj(wbits=31), 0
    if fed:
        yield ArchiveDamage(location, valid, valid + fed, "ends inside a gzip member")


def _remaining(stream: IO[bytes]) -> int:
    return sum(len(chunk) for chunk in iter(lambda: stream.read(READ_CHUNK), b""))


def _sources(location: str) -> Iterator[tuple[str, IO[bytes]]]:
    """``(name, binary stream)`` of each file of an archive: the file itself, or the
    parts of an ``s3://``/``storage://`` run in key order (or one object of it)."""
    if location.startswith(STORAGE_SCHEME):
        yield from _storage_sources(location)
        return
    if not location.startswith(S3_SCHEME):
        with open(location, "rb") as stream:
            yield location, stream
        return
    client = s3_client()
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = location[len("s3://") :].partition("/")
    try:
        if prefix.endswith(".gz"):
            keys = [prefix]
        else:
            prefix = prefix.rstrip("/") + "/" if prefix else ""
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = sorted(
                item["Key"]
                for page in pages
                for item in page.get("Contents", [])
                if item["Key"].endswith(".jsonl.gz")
            )
            if not keys:  # a mistyped prefix must not look like an empty archive
                raise ArchiveError(f"no archive parts (*.jsonl.gz) under {location}")
        for key in keys:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield f"s3://{bucket}/{key}", body
            finally:
                body.close()
    except (BotoCoreError, ClientError) as exc:
        raise ArchiveError(f"S3 error reading {location}: {exc}") from exc


def _storage_sources(location: str) -> Iterator[tuple[str, IO[bytes]]]:
    """The parts of a ``storage://alias/prefix/`` run (or one file of it), in name order."""
    alias, prefix = _split_target(location)
    storage = archive_storage(alias)
    if prefix.endswith(".gz"):
        names = [prefix]
    else:
        try:
            _, files = storage.listdir(prefix)
        except Exception as exc:  # each backend has its own errors
            raise ArchiveError(f"storage error listing {location}: {exc}") from exc
        names = sorted(f"{prefix}/{file}" for file in files if file.endswith(".jsonl.gz"))
        if not names:  # a mistyped prefix must not look like an empty archive
            raise ArchiveError(f"no archive parts (*.jsonl.gz) under {location}")
    for name in names:
        try:
            stream = storage.open(name, "rb")
        except Exception as exc:
            raise ArchiveError(
                f"storage error reading {STORAGE_SCHEME}{alias}/{name}: {exc}"
            ) from exc
        with stream:
            yield f"{STORAGE_SCHEME}{alias}/{name}", stream


def read_archive(location: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the rows of an archive in write order: a local file, or ``s3://bucket/prefix/``
    (the ``archive`` of an S3 run: every part in key order).

    Every row of every complete gzip member is yielded; then, if a file or part ends
    inside a member, ``TruncatedArchiveError`` is raised (the rows before it were all
    yielded; the parts after a cut S3 part are still read).
    """
    damaged: list[ArchiveDamage] = []
    rows = 0
    for name, stream in _sources(os.fspath(location)):
        for member in _members(stream, name):
            if isinstance(member, ArchiveDamage):
                damaged.append(member)
                continue
            for line in io.BytesIO(member):  # one line at a time, not a list of them
                rows += 1
                yield json.loads(line)
    if damaged:
        raise TruncatedArchiveError(damaged, rows=rows)


def restore_archive(location: str | os.PathLike[str], *, batch_size: int = 2000) -> int:
    """Insert the feed rows of an archive (file or ``s3://`` run) back; returns how many
    were inserted.

    Rows keep their primary keys, so restoring twice inserts nothing the second
    time. Rows of users that no longer exist are skipped (a deleted user stays
    deleted), and ``event`` becomes NULL when that event has since been purged.
    An incomplete archive is restored up to its last complete member, then
    ``TruncatedArchiveError`` is raised with ``restored`` set.
    """
    Feed = get_feed_model()
    datetime_fields = [
        field.attname
        for field in Feed._meta.concrete_fields
        if field.get_internal_type() == "DateTimeField"
    ]
    user_model = Feed._meta.get_field("user").related_model
    restored = 0

    def flush(rows: list[dict[str, Any]]) -> int:
        users = set(
            user_model._default_manager.filter(pk__in={row["user_id"] for row in rows}).values_list(
                "pk", flat=True
            )
        )
        events = set(
            get_event_model()
            ._default_manager.filter(pk__in={row["event_id"] for row in rows} - {None})
            .values_list("pk", flat=True)
        )
        items = []
        for row in rows:
            if row["user_id"] not in users:
                continue
            if row["event_id"] not in events:
                row["event_id"] = None
            for name in datetime_fields:
                if row.get(name):
                    row[name] = parse_datetime(row[name])
            items.append(Feed(**row))
        with transaction.atomic():
            existing = set(
                Feed._default_manager.filter(pk__in=[item.pk for item in items]).values_list(
                    "pk", flat=True
                )
            )
            new = [item for item in items if item.pk not in existing]
            Feed._default_manager.bulk_create(new, ignore_conflicts=True)
        return len(new)

    batch: list[dict[str, Any]] = []
    try:
        for row in read_archive(location):
            batch.append(row)
            if len(batch) >= batch_size:
                restored += flush(batch)
                batch = []
    except TruncatedArchiveError as exc:
        # The rows buffered before the cut are complete: restore them, then report.
        exc.restored = restored + (flush(batch) if batch else 0)
        raise
    if batch:
        restored += flush(batch)
    return restored
