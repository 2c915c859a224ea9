"""``manage.py aggregate_events_daily``: (re)compute daily event aggregates.

::

    manage.py aggregate_events_daily                         # yesterday (TIME_ZONE)
    manage.py aggregate_events_daily --date 2026-01-04
    manage.py aggregate_events_daily --date 2026-01-04 --days-back 7   # Dec 29 .. Jan 4

Idempotent: a day re-run replaces its rows. A thin wrapper over
``django_engagement.services.aggregation.aggregate_daily``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services.aggregation import aggregate_daily, day_bounds, yesterday

# Ten years: one run never walks back centuries (``--days-back 100000`` reached 1753),
# one aggregation per day, each a query. Older days: run again with an earlier --date.
MAX_DAYS_BACK = 3660


class Command(BaseCommand):
    help = "Aggregate events per day x event type x source into EventAggregateDaily."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date", help="Day to aggregate, YYYY-MM-DD (default: yesterday in TIME_ZONE)."
        )
        parser.add_argument(
            "--days-back",
            type=int,
            default=1,
            help=(
                "Aggregate this many days ending with --date, inclusive "
                f"(default 1, at most {MAX_DAYS_BACK:,})."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        last = yesterday()
        if options["date"]:
            try:
                last = datetime.strptime(options["date"], "%Y-%m-%d").date()
            except ValueError as exc:
                raise CommandError(
                    f"--date {options['date']!r} is not a date in YYYY-MM-DD format."
                ) from exc
        days_back = options["days_back"]
        if days_back < 1:
            raise CommandError("--days-back must be 1 or more.")
        if days_back > MAX_DAYS_BACK:
            raise CommandError(
                f"--days-back must be at most {MAX_DAYS_BACK:,} (ten years); "
                "for older days run again with an earlier --date."
            )
        try:
            day_bounds(last)
            day_bounds(last - timedelta(days=days_back - 1))
        except OverflowError:
            raise CommandError("--date and --days-back reach past the supported dates.") from None
        for offset in range(days_back - 1, -1, -1):
            result = aggregate_daily(last - timedelta(days=offset))
            if options["verbosity"] >= 1:
                self.stdout.write(
                    f"{result.date}: {result.events:,} events in {result.rows} rows"
                    f" ({result.removed} stale rows removed)"
                )
        if options["verbosity"] >= 1:
            self.stdout.write(self.style.SUCCESS(f"Aggregated {days_back} day(s)."))
