"""``manage.py send_feed_digests --period daily|weekly|immediately``: email queued feed items.

::

    manage.py send_feed_digests --period daily     # one digest per user, from cron or beat
    manage.py send_feed_digests --period weekly    # also the SUMMARY_RECIPIENTS summary

A thin wrapper over ``django_engagement.services.email.send_period``. Safe to
re-run, and after a kill: each item is claimed before it is sent, and sent once.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...services.email import PERIODS, send_period


class Command(BaseCommand):
    help = "Send the queued feed emails of one period (daily or weekly digests, or immediate)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", required=True, choices=PERIODS)

    def handle(self, *args: Any, **options: Any) -> None:
        result, summaries = send_period(options["period"])
        if options["verbosity"] >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Sent {result.messages:,} {options['period']} emails with "
                    f"{result.items:,} feed items, {summaries:,} summaries."
                )
            )
