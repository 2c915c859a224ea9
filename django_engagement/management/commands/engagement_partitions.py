"""``manage.py engagement_partitions``: monthly range partitions on PostgreSQL.

::

    manage.py engagement_partitions convert --table all --months-ahead 3
    manage.py engagement_partitions create --months-ahead 3      # monthly, from cron
    manage.py engagement_partitions list
    manage.py engagement_partitions detach --table events --before 2026-01-01

A thin face over ``django_engagement.services.partitions``; docs/guide/scaling.md.
``detach`` drops whole months before ``--before`` (only months whose every row is
older); ``purge_events`` and ``cleanup_activity_feeds`` do the same on their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models

from ...models import get_event_model, get_feed_model
from ...services import partitions

TABLES = {"events": get_event_model, "feed": get_feed_model}


class Command(BaseCommand):
    help = "Convert the event/feed tables to monthly partitions, add or drop partitions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["convert", "create", "detach", "list"])
        parser.add_argument(
            "--table", choices=["events", "feed", "all"], default="all", help="Which table(s)."
        )
        parser.add_argument(
            "--months-ahead",
            type=int,
            default=partitions.DEFAULT_MONTHS_AHEAD,
            help="convert/create: months after the current one that get a partition.",
        )
        parser.add_argument(
            "--before", help="detach: drop whole months ending on or before this date (YYYY-MM-DD)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        names = list(TABLES) if options["table"] == "all" else [options["table"]]
        models_ = [TABLES[name]() for name in names]
        if not partitions.supported(models_[0]):
            raise CommandError("partitioning is PostgreSQL-only")
        if options["months_ahead"] < 0:
            raise CommandError("--months-ahead must be 0 or more.")
        before = self._before(options) if options["action"] == "detach" else None
        for model in models_:
            try:
                self._run(options["action"], model, options["months_ahead"], before)
            except partitions.PartitioningError as error:
                raise CommandError(str(error)) from None

    def _before(self, options: dict[str, Any]) -> datetime:
        if not options["before"]:
            raise CommandError("detach needs --before YYYY-MM-DD.")
        try:
            return datetime.strptime(options["before"], "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise CommandError(
                f"--before {options['before']!r} is not a YYYY-MM-DD date."
            ) from None

    def _run(
        self, action: str, model: type[models.Model], months_ahead: int, before: datetime | None
    ) -> None:
        table = model._meta.db_table
        if action == "convert":
            result = partitions.convert(model, months_ahead=months_ahead)
            self.stdout.write(
                f"{table}: {result.rows:,} rows into {len(result.partitions)} partitions"
            )
            for change in result.changed:
                self.stdout.write(f"  {change}")
        elif action == "create":
            created = partitions.create_partitions(model, months_ahead=months_ahead)
            self.stdout.write(f"{table}: created {', '.join(created) if created else 'none'}")
        elif action == "list":
            if not partitions.is_partitioned(model):
                self.stdout.write(f"{table}: not partitioned")
                return
            for partition in partitions.list_partitions(model, with_rows=True):
                bounds = (
                    "default"
                    if partition.is_default
                    else f"{partition.start:%Y-%m-%d} .. {partition.end:%Y-%m-%d}"
                )
                self.stdout.write(f"{partition.name}  {bounds}  ~{partition.rows:,} rows")
        else:
            assert before is not None
            partitions.require_partitioned(model)
            dropped = partitions.drop_expired_partitions(
                model, expired=models.Q(created_at__lt=before), before=before
            )
            for gone in dropped:
                self.stdout.write(f"{table}: dropped {gone.name} ({gone.rows:,} rows)")
            if not dropped:
                self.stdout.write(f"{table}: nothing to drop before {before:%Y-%m-%d}")
