"""Writing, zipping and delivering the engagement report's files.

Usage::

    from django_engagement.services.report_files import write_report_files, write_zip

    paths = write_report_files(start, end, "/tmp/report", fmt="csv")
    write_zip("/tmp/report.zip", paths)

The sections themselves come from ``services.engagement_report``; this module only
streams them to files or a stream, zips them and uploads the archive.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import time as clock
import zipfile
from collections.abc import Callable, Iterable
from datetime import date
from functools import partial
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.core.serializers.json import DjangoJSONEncoder

from ..conf import engagement_settings
from .csv_writer import csv_writer
from .engagement_report import ReportSection, period_info, report_sections

__all__ = [
    "FORMATS",
    "ReportUploadError",
    "check_s3_upload",
    "report_storage",
    "s3_object_url",
    "spooled_zip",
    "stream_report_json",
    "upload_report_archive",
    "write_report_files",
    "write_zip",
]

Row = dict[str, Any]

# UUID user or target keys (and Decimal values) are written as strings.
_dumps = partial(json.dumps, cls=DjangoJSONEncoder)

# -- writers -------------------------------------------------------------------------------

Progress = Callable[[str, int, float], None]
FORMATS = ("json", "csv")


def write_report_files(
    start: date,
    end: date,
    directory: str | Path,
    fmt: str = "json",
    progress: Progress | None = None,
) -> list[Path]:
    """Write one file per section into ``directory`` (created if needed); return the paths.

    Rows are streamed from the database to the file one at a time. ``other_metrics``
    is always JSON. ``progress(section_name, rows, seconds)`` is called after each file.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    sections = report_sections(start, end)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for section in sections:
        began = clock.perf_counter()
        as_csv = fmt == "csv" and section.table
        path = directory / f"{section.name}.{'csv' if as_csv else 'json'}"
        with path.open("w", encoding="utf-8", newline="" if as_csv else None) as handle:
            if as_csv:
                count = _write_csv(section, handle)
            else:
                count = _write_json_section(section, handle)
                handle.write("\n")
        paths.append(path)
        if progress:
            progress(section.name, count, clock.perf_counter() - began)
    return paths


def stream_report_json(
    start: date, end: date, out: IO[str], progress: Progress | None = None
) -> None:
    """Write ``build_engagement_report(start, end)`` as JSON to ``out`` without holding it.

    The output parses to exactly the dict ``build_engagement_report`` returns.
    """
    sections = report_sections(start, end)
    out.write('{\n  "period": ' + _dumps(period_info(start, end)))
    for section in sections:
        began = clock.perf_counter()
        out.write(f",\n  {_dumps(section.name)}: ")
        count = _write_json_section(section, out, indent="  ")
        if progress:
            progress(section.name, count, clock.perf_counter() - began)
    out.write("\n}\n")


def _write_json_section(section: ReportSection, out: IO[str], indent: str = "") -> int:
    """A table as a JSON array with one row per line; an object section as one object."""
    if not section.table:
        out.write(_dumps(section.data(), indent=2).replace("\n", f"\n{indent}"))
        return 1
    count = 0
    out.write("[")
    for row in section.rows():
        out.write(f"{',' if count else ''}\n{indent}  {_dumps(row)}")
        count += 1
    out.write(f"\n{indent}]" if count else "]")
    return count


def _write_csv(section: ReportSection, out: IO[str]) -> int:
    """A table as CSV with the section's columns; formula cells neutralised by ``csv_writer``."""
    columns = section.csv_columns()
    writer = csv_writer(out)
    writer.writerow(columns)
    count = 0
    for row in section.rows():
        flat = section.csv_row(row)
        # A user without items of some type gets 0 in that type_* column.
        writer.writerow([flat.get(column, 0) for column in columns])
        count += 1
    return count


# -- archives and S3 -------------------------------------------------------------------------


class ReportUploadError(Exception):
    """The archive could not be uploaded (settings, boto3, or the store refused it)."""


def write_zip(target: str | Path | IO[bytes], files: Iterable[Path]) -> None:
    """Deflate ``files`` (by base name) into ``target``, a path or a binary file object."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, arcname=path.name)


def s3_settings() -> Row:
    """The AWS_* S3 settings, validated; raises ``ReportUploadError`` naming what is missing.

    Only the bucket (and a region, unless ``AWS_S3_ENDPOINT_URL`` is set) is required:
    without access keys boto3 uses its usual credential chain (env, IAM role).
    """
    config = {
        name: getattr(settings, name, None) or None
        for name in (
            "AWS_STORAGE_BUCKET_NAME",
            "AWS_S3_REGION_NAME",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_S3_ENDPOINT_URL",
        )
    }
    required = ["AWS_STORAGE_BUCKET_NAME"]
    if not config["AWS_S3_ENDPOINT_URL"]:
        required.append("AWS_S3_REGION_NAME")
    missing = [name for name in required if not config[name]]
    if missing:
        raise ReportUploadError(f"S3 upload needs the setting(s) {', '.join(missing)}")
    return config


def check_s3_upload() -> Row:
    """What an upload needs, checked before any work: the ``REPORT_STORAGE`` alias must
    be a key of ``settings.STORAGES``; without an alias, the ``AWS_*`` settings, boto3 and
    django-storages must be there. Raises ``ReportUploadError`` naming what is missing."""
    alias = engagement_settings.REPORT_STORAGE
    if alias:
        if alias not in settings.STORAGES:
            raise ReportUploadError(f"REPORT_STORAGE {alias!r} is not a key of settings.STORAGES")
        return {"alias": alias}
    config = s3_settings()
    for module, package in (("boto3", "boto3"), ("storages", "django-storages")):
        if importlib.util.find_spec(module) is None:
            raise ReportUploadError(
                f"S3 upload needs {package}: pip install 'django-engagement[s3]'"
            )
    return config


def s3_object_url(key: str, config: Row | None = None) -> str:
    """``https://<bucket>.s3.<region>.amazonaws.com/<key>``, or ``<endpoint>/<bucket>/<key>``."""
    config = config or s3_settings()
    bucket = config["AWS_STORAGE_BUCKET_NAME"]
    endpoint = config["AWS_S3_ENDPOINT_URL"]
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{key}"
    return f"https://{bucket}.s3.{config['AWS_S3_REGION_NAME']}.amazonaws.com/{key}"


def report_storage() -> tuple[Storage, Row]:
    """Where report archives go, and the checked settings: the ``REPORT_STORAGE`` alias
    of ``settings.STORAGES``, else django-storages' S3 backend built from the ``AWS_*``
    settings (the names ``--upload-s3`` has always read)."""
    config = check_s3_upload()
    if "alias" in config:
        return storages[config["alias"]], config
    from storages.backends.s3 import S3Storage  # the [s3] extra, checked just above

    storage = S3Storage(
        bucket_name=config["AWS_STORAGE_BUCKET_NAME"],
        region_name=config["AWS_S3_REGION_NAME"],
        access_key=config["AWS_ACCESS_KEY_ID"],
        secret_key=config["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=config["AWS_S3_ENDPOINT_URL"],
        file_overwrite=True,
    )
    return storage, config


def _delivery_errors() -> tuple[type[Exception], ...]:
    """What a storage raises when the store refuses a file (boto3's errors when present)."""
    try:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return (OSError,)
    return (OSError, Boto3Error, BotoCoreError, ClientError)


def upload_report_archive(fileobj: IO[bytes], key: str) -> str:
    """Save a zip archive under ``key`` in ``report_storage()``; return its URL.

    With an alias the URL is the storage's ``url()``; with the ``AWS_*`` settings it is
    ``s3_object_url(key)``.
    """
    storage, config = report_storage()
    where = (
        f"storage {config['alias']!r}"
        if "alias" in config
        else (f"s3://{config['AWS_STORAGE_BUCKET_NAME']}/{key}")
    )
    try:
        name = storage.save(key, File(fileobj, name=key))
    except _delivery_errors() as exc:
        message = " ".join(str(exc).split())
        label = "Upload" if "alias" in config else "S3 upload"
        raise ReportUploadError(f"{label} to {where} failed: {message}") from exc
    if "alias" in config:
        return storage.url(name)
    return s3_object_url(name, config)


def spooled_zip(files: Iterable[Path]) -> IO[bytes]:
    """A zip of ``files`` in memory (spilling to a temporary file past 32 MB), rewound."""
    buffer = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    write_zip(buffer, files)
    buffer.seek(0)
    return buffer
