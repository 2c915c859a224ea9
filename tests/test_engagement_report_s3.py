"""engagement_report --upload-s3 against a real S3-protocol server (moto) on loopback."""

from __future__ import annotations

import io
import sys
import zipfile
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from django_engagement.management.commands.engagement_report import Command
from django_engagement.services.report_files import s3_object_url
from tests.conftest import S3_BUCKET

PERIOD = ["--start", "2024-03-01", "--end", "2024-03-14"]
ARCHIVE = "engagement_report_2024-03-01_2024-03-14.zip"
SECTION_FILES = [
    "campaigns.json",
    "new_users_over_time.json",
    "other_metrics.json",
    "retention_cohorts.json",
    "user_activity.json",
    "user_activity_timeline.json",
    "user_campaign_participation.json",
]


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(Command(stdout=out, stderr=err), *args, verbosity=1)
    return out.getvalue()


def test_upload_the_zip_archive(db, s3, s3_endpoint, tmp_path):
    out = run(*PERIOD, "--zip", "--upload-s3", "--output-dir", str(tmp_path))
    key = f"engagement-reports/{ARCHIVE}"
    stored = s3.get_object(Bucket=S3_BUCKET, Key=key)
    assert stored["ContentType"] == "application/zip"
    assert stored["Body"].read() == (tmp_path / ARCHIVE).read_bytes()
    assert out.splitlines() == [
        f"Wrote 7 files to {tmp_path}",
        f"Archive: {tmp_path / ARCHIVE}",
        f"Uploaded to {s3_endpoint}/{S3_BUCKET}/{key}",
    ]


def test_upload_without_zip_sends_an_in_memory_archive(db, s3, tmp_path):
    out = run(
        *PERIOD,
        "--format",
        "csv",
        "--upload-s3",
        "--s3-prefix",
        "/monthly/2024-03",
        "--output-dir",
        str(tmp_path),
    )
    key = f"monthly/2024-03/{ARCHIVE}"
    stored = s3.get_object(Bucket=S3_BUCKET, Key=key)
    assert stored["ContentType"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(stored["Body"].read())) as archive:
        assert sorted(archive.namelist()) == sorted(
            name.replace(".json", ".csv") if name != "other_metrics.json" else name
            for name in SECTION_FILES
        )
    assert "Archive:" not in out
    assert not (tmp_path / ARCHIVE).exists()
    assert out.endswith(f"/{S3_BUCKET}/{key}\n")


def test_url_without_custom_endpoint(settings):
    settings.AWS_STORAGE_BUCKET_NAME = S3_BUCKET
    settings.AWS_S3_REGION_NAME = "eu-west-1"
    settings.AWS_S3_ENDPOINT_URL = None
    assert s3_object_url("engagement-reports/a.zip") == (
        f"https://{S3_BUCKET}.s3.eu-west-1.amazonaws.com/engagement-reports/a.zip"
    )


def test_refused_upload_keeps_the_files(db, s3, settings, tmp_path):
    settings.AWS_STORAGE_BUCKET_NAME = "no-such-bucket"
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            Command(stdout=out, stderr=StringIO()),
            *PERIOD,
            "--zip",
            "--upload-s3",
            "--output-dir",
            str(tmp_path),
            verbosity=1,
        )
    message = str(excinfo.value)
    assert message.startswith(
        f"S3 upload to s3://no-such-bucket/engagement-reports/{ARCHIVE} failed"
    )
    assert "NoSuchBucket" in message
    assert message.endswith(f"(the report files are in {tmp_path})")
    assert "\n" not in message
    assert out.getvalue().startswith(f"Wrote 7 files to {tmp_path}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*SECTION_FILES, ARCHIVE])


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("AWS_STORAGE_BUCKET_NAME", "AWS_STORAGE_BUCKET_NAME"),
        ("AWS_S3_ENDPOINT_URL", None),  # AWS itself: the region becomes required
    ],
)
def test_missing_settings_fail_before_any_work(db, settings, tmp_path, missing, named):
    settings.AWS_STORAGE_BUCKET_NAME = S3_BUCKET
    settings.AWS_S3_ENDPOINT_URL = "http://127.0.0.1:9"
    settings.AWS_S3_REGION_NAME = None
    delattr(settings, missing)
    with pytest.raises(CommandError) as excinfo:
        run(*PERIOD, "--upload-s3", "--output-dir", str(tmp_path))
    assert str(excinfo.value) == (f"S3 upload needs the setting(s) {named or 'AWS_S3_REGION_NAME'}")
    assert list(tmp_path.iterdir()) == []


def test_missing_boto3(db, settings, monkeypatch, tmp_path):
    settings.AWS_STORAGE_BUCKET_NAME = S3_BUCKET
    settings.AWS_S3_REGION_NAME = "us-east-1"
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(CommandError) as excinfo:
        run(*PERIOD, "--upload-s3", "--output-dir", str(tmp_path))
    assert str(excinfo.value) == "S3 upload needs boto3: pip install 'django-engagement[s3]'"


def test_report_storage_alias_on_s3(db, s3, s3_endpoint, settings, engagement_settings, tmp_path):
    """REPORT_STORAGE names a STORAGES entry: django-storages' S3 backend on moto."""
    settings.STORAGES = {
        **settings.STORAGES,
        "engagement-reports": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": S3_BUCKET,
                "endpoint_url": s3_endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "querystring_auth": False,
            },
        },
    }
    engagement_settings.update(REPORT_STORAGE="engagement-reports")

    out = run(*PERIOD, "--zip", "--upload-s3", "--output-dir", str(tmp_path))

    key = f"engagement-reports/{ARCHIVE}"
    stored = s3.get_object(Bucket=S3_BUCKET, Key=key)
    assert stored["Body"].read() == (tmp_path / ARCHIVE).read_bytes()
    assert out.splitlines()[-1] == f"Uploaded to {s3_endpoint}/{S3_BUCKET}/{key}"


def test_report_storage_alias_on_the_file_system(db, settings, engagement_settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "engagement-reports": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "store"), "base_url": "/reports/"},
        },
    }
    engagement_settings.update(REPORT_STORAGE="engagement-reports")

    out = run(*PERIOD, "--upload-s3", "--output-dir", str(tmp_path / "files"))

    stored = tmp_path / "store" / "engagement-reports" / ARCHIVE
    with zipfile.ZipFile(stored) as archive:
        assert sorted(archive.namelist()) == sorted(SECTION_FILES)
    assert out.splitlines()[-1] == f"Uploaded to /reports/engagement-reports/{ARCHIVE}"


def test_unknown_report_storage_alias_fails_before_any_work(db, engagement_settings, tmp_path):
    engagement_settings.update(REPORT_STORAGE="nowhere")

    with pytest.raises(CommandError) as excinfo:
        run(*PERIOD, "--upload-s3", "--output-dir", str(tmp_path))

    assert str(excinfo.value) == "REPORT_STORAGE 'nowhere' is not a key of settings.STORAGES"
    assert list(tmp_path.iterdir()) == []
