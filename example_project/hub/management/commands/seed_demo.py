"""``manage.py seed_demo``: fill the example project with realistic demo data.

Usage::

    python manage.py seed_demo                      # 300 users, ~30,000 events, 120 days
    python manage.py seed_demo --flush --seed 7     # start over with other random data
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub import demo


class Command(BaseCommand):
    help = "Create demo churches, fasts, users, events and feed items (bulk inserts, seconds)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=300, help="demo users (default 300)")
        parser.add_argument(
            "--events", type=int, default=30_000, help="events in total (default 30000)"
        )
        parser.add_argument(
            "--days", type=int, default=120, help="days of history up to now (default 120)"
        )
        parser.add_argument(
            "--seed", type=int, default=42, help="random seed; the same seed, the same data"
        )
        parser.add_argument("--flush", action="store_true", help="delete existing demo data first")

    def handle(self, *args, **options) -> None:
        for name, minimum in (("users", 1), ("events", 0), ("days", 1)):
            if options[name] < minimum:
                raise CommandError(f"--{name} must be at least {minimum}, got {options[name]}.")
        self.verbosity = options["verbosity"]
        if options["flush"]:
            demo.flush()
            self.info("Deleted the existing demo data.")
        if demo.ensure_admin():
            self.info("Created the superuser admin.")
        result = demo.seed(
            users=options["users"],
            events=options["events"],
            days=options["days"],
            seed=options["seed"],
            progress=self.progress if self.verbosity else None,
        )
        if result.skipped:
            self.info(
                f"Demo data already present ({result.users} users, {result.events} events); "
                "nothing written. Use --flush to recreate it."
            )
        else:
            self.info(
                self.style.SUCCESS(
                    f"Seeded {result.users} users, {result.churches} churches, "
                    f"{result.fasts} fasts, {result.memberships} memberships, "
                    f"{result.events} events and {result.feed_items} feed items "
                    f"in {result.seconds:.1f}s."
                )
            )
            if self.verbosity > 1:
                for event_type, count in result.event_types.items():
                    self.stdout.write(f"  {event_type:<24} {count:>8}")
        self.info(
            f"Log in at /admin/ as {demo.ADMIN_USERNAME} / {demo.ADMIN_PASSWORD} "
            f"(demo users: user001 ... / {demo.DEMO_PASSWORD})."
        )

    def info(self, message: str) -> None:
        if self.verbosity:
            self.stdout.write(message)

    def progress(self, label: str, done: int, total: int) -> None:
        """One updating line per step on a terminal; the final count otherwise."""
        if self.stdout.isatty():
            ending = "\n" if done >= total else ""
            self.stdout.write(f"\r  {label}: {done:,}/{total:,}", ending=ending)
            self.stdout.flush()
        elif done >= total:
            self.stdout.write(f"  {label}: {total:,}")
