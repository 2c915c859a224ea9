"""``manage.py generate_reports``: generate stored reports now, or what the schedule owes.

::

    manage.py generate_reports --report-type daily_summary --date 2026-01-04
    manage.py generate_reports --report-type weekly_summary --date 2026-01-07   # its ISO week
    manage.py generate_reports --report-type user_activity --user-id 7 \\
        --start 2026-01-01 --end 2026-01-31
    manage.py generate_reports --auto-schedule --email-recipients ops@example.com

A thin wrapper over ``django_engagement.services.stored_reports``: reports run in this
process (never queued), and a report already done is kept unless ``--force``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from ...models import Report, ReportType
from ...services.email import send_report_email
from ...services.stored_reports import (
    Generated,
    generate_due_reports,
    generate_report,
    report_file_url,
)


def iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Generate stored reports (one type and period, or what the schedule owes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--report-type", choices=ReportType.values)
        parser.add_argument(
            "--date",
            help="The day the period falls in (its ISO week, its month); with "
            "--auto-schedule the day to evaluate the schedule for. Default: today.",
        )
        parser.add_argument("--start", help="First day of a ranged report (with --end).")
        parser.add_argument("--end", help="Last day of a ranged report (with --start).")
        parser.add_argument("--user-id", help="The user of a user_activity report.")
        parser.add_argument(
            "--email-recipients",
            action="append",
            default=[],
            help="Email each generated report to these addresses (comma-separated, repeatable).",
        )
        parser.add_argument(
            "--auto-schedule",
            action="store_true",
            help="Generate what is due: yesterday's daily summary, last ISO week's weekly "
            "summary on Mondays, last month's monthly summary on the 1st.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Regenerate reports that are already done."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        recipients = self.recipients(options["email_recipients"])
        day = iso_date(options["date"]) if options["date"] else None
        if options["auto_schedule"]:
            if options["report_type"] or options["start"] or options["end"] or options["user_id"]:
                raise CommandError(
                    "--auto-schedule picks the reports itself: leave out --report-type, "
                    "--start, --end and --user-id."
                )
            try:
                outcomes = generate_due_reports(
                    on=day, force=options["force"], email_recipients=recipients
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            emailed = {
                o.report.pk for o in outcomes if o.ran and o.report.status == Report.STATUS.done
            }
            self.summarise(outcomes, emailed if recipients else set(), options["verbosity"])
            return
        if not options["report_type"]:
            raise CommandError("Give --report-type, or --auto-schedule.")
        try:
            outcome = generate_report(
                options["report_type"],
                day=day,
                start=iso_date(options["start"]) if options["start"] else None,
                end=iso_date(options["end"]) if options["end"] else None,
                user_id=options["user_id"],
                force=options["force"],
                asynchronous=False,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        report = outcome.report
        emailed = set()
        if recipients and report.status == Report.STATUS.done:
            send_report_email(report, recipients, file_url=report_file_url(report))
            emailed.add(report.pk)
        self.summarise([outcome], emailed, options["verbosity"])
        if report.status == Report.STATUS.failed:
            raise CommandError(f"{report.title} failed: {report.error}")

    def recipients(self, values: list[str]) -> list[str]:
        addresses = [part.strip() for value in values for part in value.split(",") if part.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                raise CommandError(f"{address!r} is not an email address.") from None
        return addresses

    def summarise(self, outcomes: list[Generated], emailed: set[Any], verbosity: int) -> None:
        if verbosity < 1:
            return
        for outcome in outcomes:
            report = outcome.report
            how = "generated" if outcome.ran else "already stored"
            line = f"{report.title}: {report.status} ({how}, id {report.pk})"
            if report.status == Report.STATUS.failed:
                self.stdout.write(self.style.ERROR(f"{line}: {report.error}"))
                continue
            if report.pk in emailed:
                line += ", emailed"
            self.stdout.write(self.style.SUCCESS(line))
