"""``manage.py engagement_rebuild_unread_counts``: recount the unread badges from the feed.

::

    manage.py engagement_rebuild_unread_counts                 # every user
    manage.py engagement_rebuild_unread_counts --user-id 123
    manage.py engagement_rebuild_unread_counts --dry-run       # how many are out of step

The package's own writes keep the counters exact; run this after writes that go
around them (a host's ``Feed.objects.filter(...).update(is_read=True)``, raw SQL,
``QuerySet.delete()``). A thin wrapper over
``django_engagement.services.unread.rebuild_unread``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services.unread import rebuild_unread


class Command(BaseCommand):
    help = (
        "Recount every user's unread counter (the feed's unread badge) from the feed table, "
        "set-based; prints how many counters were out of step."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user-id", help="Only this user's counter (default: every user).")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count the counters that are out of step; change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = None
        if options["user_id"] is not None:
            User = get_user_model()
            try:
                users = [User._default_manager.get(pk=options["user_id"])]
            except (User.DoesNotExist, ValueError, TypeError, ValidationError):
                raise CommandError(f"No user with id {options['user_id']!r}.") from None
        changed = rebuild_unread(users=users, dry_run=options["dry_run"])
        if options["verbosity"] < 1:
            return
        verb = "would correct" if options["dry_run"] else "corrected"
        self.stdout.write(self.style.SUCCESS(f"{verb.capitalize()} {changed:,} unread counters."))
