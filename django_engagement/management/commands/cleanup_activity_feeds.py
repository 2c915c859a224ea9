"""``manage.py cleanup_activity_feeds``: apply the feed retention policy.

::

    manage.py cleanup_activity_feeds --dry-run
    manage.py cleanup_activity_feeds --activity-type reminder --older-than-days 60
    manage.py cleanup_activity_feeds --archive-to /var/backups/engagement --batch-size 5000

A thin wrapper over ``django_engagement.services.retention.apply_retention``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services.archive import ArchiveError
from ...services.retention import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, apply_retention
from ..progress import Progress


class Command(BaseCommand):
    help = (
        "Delete activity feed items older than their retention (ENGAGEMENT['FEED_RETENTION'], "
        "FEED_RETENTION_DEFAULT for other types), in batches, optionally archiving them first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count expired items per type; delete nothing."
        )
        parser.add_argument("--activity-type", help="Only this activity type.")
        parser.add_argument(
            "--older-than-days",
            type=int,
            help="Expire items older than this many days, whatever their type's retention.",
        )
        parser.add_argument(
            "--archive-to",
            metavar="PATH",
            help="Write deleted rows as gzipped JSON Lines first: a directory (one new file per "
            "run), a new file name ending in .gz, or s3://bucket/prefix. Checked by --dry-run.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows per delete statement and transaction (1-{MAX_BATCH_SIZE}, "
            f"default {DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        if options["older_than_days"] is not None and options["older_than_days"] < 0:
            raise CommandError("--older-than-days must be 0 or more.")
        if not 1 <= options["batch_size"] <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        try:
            with Progress(self.stdout, verbosity) as progress:
                result = apply_retention(
                    dry_run=options["dry_run"],
                    activity_type=options["activity_type"],
                    older_than_days=options["older_than_days"],
                    archive_to=options["archive_to"],
                    batch_size=options["batch_size"],
                    on_batch=progress.update,
                )
        except (ValueError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from exc
        except OverflowError:  # now - days: raised before anything is deleted
            raise CommandError("--older-than-days reaches past the supported dates.") from None
        except ArchiveError as exc:
            if options["dry_run"]:
                raise CommandError(f"{exc}; the real run would stop here.") from exc
            raise CommandError(f"{exc}; rows not archived were not deleted.") from exc
        if verbosity < 1:
            return
        verb = "would delete" if result.dry_run else "deleted"
        for activity_type, count in result.counts.items():
            cutoff = result.cutoffs.get(activity_type, result.cutoffs.get("*"))
            self.stdout.write(
                f"  {activity_type}: {verb} {count:,} (created before {cutoff:%Y-%m-%d %H:%M %Z})"
            )
        summary = f"{verb.capitalize()} {result.total:,} activity feed items."
        if result.archive:
            summary += f" Archived to {result.archive}"
        self.stdout.write(self.style.SUCCESS(summary))
