"""``manage.py engagement_report``: the engagement report as files, stdout, zip or S3.

    python manage.py engagement_report --start 2024-01-01 --end 2024-01-31 --format csv --zip
    python manage.py engagement_report --stdout | jq .other_metrics

A thin wrapper over ``django_engagement.services.engagement_report`` (sections) and
``services.report_files`` (files, zip, S3); progress goes to stderr so
``--stdout`` output can be piped. See docs/guide/engagement_report.md.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...services.aggregation import day_bounds
from ...services.report_files import (
    FORMATS,
    ReportUploadError,
    check_s3_upload,
    spooled_zip,
    stream_report_json,
    upload_report_archive,
    write_report_files,
    write_zip,
)

DATE_FORMAT = "%Y-%m-%d"
DEFAULT_DAYS = 30


def parse_day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, DATE_FORMAT).date()
    except ValueError:
        raise CommandError(f"{flag}: invalid date {value!r}, expected YYYY-MM-DD") from None


class StdoutFlag(argparse.Action):
    """``--stdout``: sets ``to_stdout`` and also notes the flag under ``stdout_flag``.

    ``call_command("engagement_report", "--stdout", stdout=stream)`` maps the
    ``stdout`` keyword onto this flag's dest and overwrites it with the stream;
    ``stdout_flag`` survives, so both the flag and the stream are honoured.
    """

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, True)
        namespace.stdout_flag = True


class Command(BaseCommand):
    help = (
        "Write the engagement report (new users, targets, user activity, other metrics, "
        "timeline, participation, retention cohorts) for a date range."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", help="first day, YYYY-MM-DD (default: 30 days before --end)")
        parser.add_argument("--end", help="last day, inclusive, YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--format", choices=FORMATS, default="json", help="file format (default: json)"
        )
        parser.add_argument(
            "--stdout",
            # Not dest="stdout": BaseCommand.execute() takes options["stdout"] as a stream.
            dest="to_stdout",
            action=StdoutFlag,
            help="print the consolidated JSON to stdout instead of writing files",
        )
        parser.add_argument(
            "--output-dir", help="directory for the files (default: a new temporary directory)"
        )
        parser.add_argument("--zip", action="store_true", help="also write a zip archive")
        parser.add_argument(
            "--upload-s3",
            action="store_true",
            help="upload the archive (or an in-memory zip of the files) to S3",
        )
        parser.add_argument(
            "--s3-prefix",
            default="engagement-reports/",
            help="S3 key prefix (default: engagement-reports/)",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        # call_command(..., stdout=stream) maps the keyword onto the --stdout flag's
        # dest; hand a stream back to BaseCommand as the output stream (see StdoutFlag).
        if not isinstance(options.get("to_stdout", False), bool):
            options["stdout"] = options["to_stdout"]
            options["to_stdout"] = options.pop("stdout_flag", False)
        return super().execute(*args, **options)

    def handle(self, *args: Any, **options: Any) -> None:
        end = parse_day(options["end"], "--end") or timezone.localdate()
        try:
            start = parse_day(options["start"], "--start") or end - timedelta(days=DEFAULT_DAYS)
            day_bounds(start)
            day_bounds(end)
        except OverflowError:
            raise CommandError("--start/--end reach past the supported dates.") from None
        if start > end:
            raise CommandError(
                f"--start {start} is after --end {end}; expected YYYY-MM-DD with start <= end"
            )
        self.verbosity = options["verbosity"]
        if options["to_stdout"]:
            self.print_json(start, end, options)
            return
        if options["upload_s3"]:
            try:
                check_s3_upload()
            except ReportUploadError as exc:
                raise CommandError(str(exc)) from None

        directory = Path(options["output_dir"] or tempfile.mkdtemp(prefix="engagement_report_"))
        try:
            paths = write_report_files(start, end, directory, options["format"], self.progress)
            archive = directory / f"engagement_report_{start}_{end}.zip"
            if options["zip"]:
                write_zip(archive, paths)
        except OSError as exc:
            raise CommandError(f"cannot write the report to {directory}: {exc}") from None
        self.say(f"Wrote {len(paths)} files to {directory}")
        if options["zip"]:
            self.say(f"Archive: {archive}")
        if options["upload_s3"]:
            key = self.s3_key(options["s3_prefix"], archive.name)
            with archive.open("rb") if options["zip"] else spooled_zip(paths) as fileobj:
                try:
                    url = upload_report_archive(fileobj, key)
                except ReportUploadError as exc:
                    raise CommandError(f"{exc} (the report files are in {directory})") from None
            self.say(self.style.SUCCESS(f"Uploaded to {url}"))

    def say(self, message: str) -> None:
        """A summary line on stdout; ``--verbosity 0`` prints nothing (errors still raise)."""
        if self.verbosity >= 1:
            self.stdout.write(message)

    def print_json(self, start: date, end: date, options: dict[str, Any]) -> None:
        """Stream the consolidated JSON to stdout; nothing else is printed there."""
        conflicts = [
            flag
            for flag, given in (
                ("--format csv", options["format"] == "csv"),
                ("--output-dir", options["output_dir"]),
                ("--zip", options["zip"]),
                ("--upload-s3", options["upload_s3"]),
            )
            if given
        ]
        if conflicts:
            raise CommandError(
                f"--stdout prints the consolidated JSON only; drop {', '.join(conflicts)}"
            )
        ending, self.stdout.ending = self.stdout.ending, ""
        try:
            stream_report_json(start, end, self.stdout, self.progress)  # type: ignore[arg-type]  # OutputWrapper proxies a text stream
        finally:
            self.stdout.ending = ending

    def progress(self, section: str, rows: int, seconds: float) -> None:
        if self.verbosity >= 1:
            noun = "row" if rows == 1 else "rows"
            self.stderr.write(f"{section}: {rows:,} {noun} in {seconds:.2f}s", style_func=str)

    @staticmethod
    def s3_key(prefix: str, name: str) -> str:
        """``prefix`` as a folder (one trailing slash, no leading one) followed by ``name``."""
        prefix = prefix.strip("/")
        return f"{prefix}/{name}" if prefix else name
