"""``manage.py purge_events``: delete events past ``EVENT_RETENTION_DAYS``.

::

    manage.py purge_events --dry-run
    manage.py purge_events --days 30

A thin wrapper over ``django_engagement.services.retention.purge_events``. Feed
items that pointed at a purged event stay, with their ``event`` set to NULL.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services.retention import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, purge_events
from ..progress import Progress


class Command(BaseCommand):
    help = "Delete events older than --days (default ENGAGEMENT['EVENT_RETENTION_DAYS'])."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, help="Delete events older than this many days (default: setting)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the events that would go; delete none."
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Events per delete statement and transaction (1-{MAX_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] is not None and options["days"] < 0:
            raise CommandError("--days must be 0 or more.")
        if not 1 <= options["batch_size"] <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}.")
        try:
            with Progress(self.stdout, options["verbosity"]) as progress:
                result = purge_events(
                    options["days"],
                    options["dry_run"],
                    batch_size=options["batch_size"],
                    on_batch=progress.update,
                )
        except OverflowError:  # now - days: raised before anything is deleted
            raise CommandError("--days reaches past the supported dates.") from None
        if options["verbosity"] < 1:
            return
        verb = "Would delete" if result.dry_run else "Deleted"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {result.events:,} events created before "
                f"{result.cutoff:%Y-%m-%d %H:%M %Z}; {result.feed_items_detached:,} feed items "
                f"{'would keep' if result.dry_run else 'kept'} without their event."
            )
        )
