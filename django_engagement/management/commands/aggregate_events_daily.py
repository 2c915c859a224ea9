"""``manage.py aggregate_events_daily``: (re)compute event aggregates per hour, day,
ISO week or month.

::

    manage.py aggregate_events_daily                         # yesterday (TIME_ZONE)
    manage.py aggregate_events_daily --date 2026-01-04
    manage.py aggregate_events_daily --date 2026-01-04 --days-back 7   # Dec 29 .. Jan 4
    manage.py aggregate_events_daily --period month --date 2026-01-31  # January
    manage.py aggregate_events_daily --period hour --date 2026-03-29   # its 23 hours

Idempotent: a period re-run replaces its rows. ``--period week|month`` aggregates each
week or month the days touch, once. A thin wrapper over
``django_engagement.services.aggregation.aggregate_period``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services.aggregation import (
    PERIODS,
    aggregate_period,
    day_bounds,
    period_days,
    periods_touching,
    yesterday,
)

# Ten years: one run never walks back centuries (``--days-back 100000`` reached 1753),
# one aggregation per day, each a query. Older days: run again with an earlier --date.
MAX_DAYS_BACK = 3660


class Command(BaseCommand):
    help = (
        "Aggregate events per period (hour, day, ISO week, month) x event type x source "
        "into EventAggregateDaily (days) or EventPeriodAggregate (the others)."
    )

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
        parser.add_argument(
            "--period",
            choices=PERIODS,
            default="day",
            help=(
                "hour: every hour of each day; day (default); week: each ISO week the "
                "days touch; month: each month the days touch."
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
        period = options["period"]
        try:
            first = last - timedelta(days=days_back - 1)
            for day in period_days(period, first) + period_days(period, last):
                day_bounds(day)
        except OverflowError:
            raise CommandError("--date and --days-back reach past the supported dates.") from None
        days = [first + timedelta(days=offset) for offset in range(days_back)]
        targets = periods_touching(period, days)
        for day in targets:
            result = aggregate_period(period, day)
            if options["verbosity"] >= 1:
                span = (
                    str(result.first_day)
                    if result.first_day == result.last_day
                    else f"{result.first_day}..{result.last_day}"
                )
                hours = f" ({result.periods} hours)" if period == "hour" else ""
                self.stdout.write(
                    f"{span}{hours}: {result.events:,} events in {result.rows} rows"
                    f" ({result.removed} stale rows removed)"
                )
        if options["verbosity"] >= 1:
            unit = {"hour": "day(s) of hours", "day": "day(s)"}.get(period, f"{period}(s)")
            self.stdout.write(self.style.SUCCESS(f"Aggregated {len(targets)} {unit}."))
