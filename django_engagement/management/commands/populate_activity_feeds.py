"""``manage.py populate_activity_feeds``: build feed items from past events.

::

    manage.py populate_activity_feeds                    # every user, last 30 days
    manage.py populate_activity_feeds --user-id 123 --days-back 90
    manage.py populate_activity_feeds --dry-run
    manage.py populate_activity_feeds --flush-pending    # only the ASYNC_FEED outbox

A thin wrapper over ``django_engagement.services.feed.populate_feed``; safe to
re-run (items that exist are skipped), so a second run creates nothing.
``--flush-pending`` runs ``flush_pending_fan_out`` instead: the fan-out of every
event still in the outbox (the broker was down, a worker was killed), whatever its age.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services.feed import flush_pending_fan_out, populate_feed
from ..progress import Progress


class Command(BaseCommand):
    help = "Create activity feed items from past events according to ENGAGEMENT['FEED_RULES']."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user-id", help="Only this user's feed (default: every user).")
        parser.add_argument(
            "--days-back", type=int, default=30, help="Use events of this many days (default 30)."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the items that would be created."
        )
        parser.add_argument(
            "--flush-pending",
            action="store_true",
            help="Only finish the pending ASYNC_FEED fan-out (the outbox) of any age, "
            "in this process; --dry-run counts the pending events.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["flush_pending"]:
            self.flush_pending(options)
            return
        if options["days_back"] < 1:
            raise CommandError("--days-back must be at least 1.")
        user = None
        if options["user_id"] is not None:
            User = get_user_model()
            try:
                user = User._default_manager.get(pk=options["user_id"])
            except (User.DoesNotExist, ValueError, TypeError):
                raise CommandError(f"No user with id {options['user_id']!r}.") from None
        try:
            with Progress(self.stdout, options["verbosity"]) as progress:
                result = populate_feed(
                    user=user,
                    days_back=options["days_back"],
                    dry_run=options["dry_run"],
                    on_batch=progress.update,
                )
        except OverflowError:  # now - days_back: raised before anything is written
            raise CommandError("--days-back reaches past the supported dates.") from None
        if options["verbosity"] < 1:
            return
        verb = "Would create" if options["dry_run"] else "Created"
        scope = f" for user {user.get_username()}" if user is not None else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {result.created_count:,} activity feed items{scope} from events "
                f"between {result.start:%Y-%m-%d %H:%M} and {result.end:%Y-%m-%d %H:%M %Z}."
            )
        )

    def flush_pending(self, options: dict[str, Any]) -> None:
        """``--flush-pending``: the outbox sweeper, for every pending event."""
        if options["user_id"] is not None:
            raise CommandError("--flush-pending runs every pending fan-out; drop --user-id.")
        with Progress(self.stdout, options["verbosity"]) as progress:
            result = flush_pending_fan_out(dry_run=options["dry_run"], on_batch=progress.update)
        if options["verbosity"] < 1:
            return
        if options["dry_run"]:
            message = f"{result.events:,} events have pending feed fan-out."
        else:
            message = (
                f"Created {result.created_count:,} activity feed items from the pending "
                f"fan-out of {result.events:,} events."
            )
        self.stdout.write(self.style.SUCCESS(message))
