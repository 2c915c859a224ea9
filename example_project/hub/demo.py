"""Realistic demo data for the example project, written with bulk inserts.

``seed(...)`` creates churches, fasts, users with profiles, memberships, events
and feed items in one transaction. Everything goes through ``bulk_create`` (and
the M2M ``through`` model), which sends no ``post_save``/``m2m_changed``
signals: the package's receivers stay quiet, so seeding 30,000 events takes
seconds instead of recording each one through the fan-out path. The same
``seed`` value gives the same data within the same hour (the history ends at
the start of the current hour).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from django_engagement.conf import engagement_settings
from django_engagement.models import EventAggregateDaily, get_event_model, get_feed_model
from django_engagement.services.feed import MILESTONE_EVENT

from .models import Church, Fast, Profile

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
DEMO_PASSWORD = "demo"
BATCH_SIZE = 2000

CHURCHES = ["St. Mark Cathedral", "St. Mary & St. Abraam", "St. George", "Archangel Michael"]
FASTS = [
    ("Great Lent", 55),
    ("Nativity Fast", 43),
    ("Apostles' Fast", 30),
    ("Fast of the Virgin Mary", 15),
    ("Jonah's Fast", 3),
    ("Wednesdays and Fridays", 90),
    ("Paramoun of the Nativity", 2),
    ("Paramoun of the Theophany", 2),
    ("Holy Week", 7),
    ("Fast of Nineveh", 3),
    ("Advent Retreat", 21),
    ("Dormition Fast", 14),
]
FIRST_NAMES = [
    "Mina", "Mary", "George", "Sarah", "Mark", "Martha", "Peter", "Irene", "John", "Marina",
    "Andrew", "Sophia", "Daniel", "Miriam", "Paul", "Hannah", "Thomas", "Anna", "David", "Ruth",
]  # fmt: skip
LAST_NAMES = [
    "Girgis", "Hanna", "Mikhail", "Boutros", "Youssef", "Shenouda", "Fahmy", "Tadros",
    "Ibrahim", "Awad", "Saad", "Naguib", "Wahba", "Khalil", "Botros", "Farag",
]  # fmt: skip
PAGES = ["/", "/fasts/", "/devotionals/", "/prayer-requests/", "/profile/", "/calendar/"]
USER_AGENTS = {
    "web": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "android": "FastingApp/3.2.1 (Android 14; Pixel 8)",
    "ios": "FastingApp/3.2.1 (iPhone; iOS 17.5)",
}
# Event types of the free-running activity, with their share of it.
ACTIVITY_MIX = [
    ("page_view", 0.50),
    ("anonymous_page_view", 0.07),
    ("user_logged_in", 0.18),
    ("devotional_viewed", 0.18),
    ("prayer_request_created", 0.07),
]
# Sundays and the evening before are busiest.
WEEKDAY_WEIGHT = [0.8, 0.7, 0.9, 0.8, 1.0, 1.3, 1.6]
MEMBERSHIPS_PER_USER = [(0, 0.08), (1, 0.37), (2, 0.30), (3, 0.17), (4, 0.08)]
LEAVE_PROBABILITY = 0.15
# How long users stay active after signing up, so retention cohorts decay week over week
# instead of all coming out at 100 %: some never come back after their first days, the
# rest stay each further week with this probability (about 4 weeks on average). The most
# active users are regulars who have been around since the launch and still are.
FIRST_WEEK_ONLY = 0.45
WEEKLY_RETENTION = 0.75
REGULARS = 3

Progress = Callable[[str, int, int], None]


@dataclass
class SeedResult:
    """What ``seed`` wrote (or found, when ``skipped``)."""

    users: int = 0
    churches: int = 0
    fasts: int = 0
    memberships: int = 0
    events: int = 0
    feed_items: int = 0
    seconds: float = 0.0
    skipped: bool = False
    event_types: dict[str, int] = field(default_factory=dict)


@dataclass
class _Milestone:
    fast: Fast
    at: datetime
    threshold: int
    user_ids: list[int]
    uuid: uuid.UUID


@dataclass
class _Membership:
    user_id: int
    profile_id: int
    fast: Fast
    joined_at: datetime
    left_at: datetime | None
    join_uuid: uuid.UUID | None = None
    leave_uuid: uuid.UUID | None = None


def has_demo_data() -> bool:
    return Fast.objects.exists() or get_event_model()._default_manager.exists()


def flush() -> None:
    """Delete the demo data: feed items, events, aggregates, hub rows and non-superusers."""
    with transaction.atomic():
        get_feed_model()._default_manager.all().delete()
        get_event_model()._default_manager.all().delete()
        EventAggregateDaily.objects.all().delete()
        Profile.objects.all().delete()
        Church.objects.all().delete()
        get_user_model()._default_manager.filter(is_superuser=False).delete()


def seed(
    *,
    users: int = 300,
    events: int = 30_000,
    days: int = 120,
    seed: int = 42,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SeedResult:
    """Fill the database with demo data unless some is already there.

    ``events`` is the total number of events; it is raised to the number of
    sign-up, join, leave and milestone events when those alone are more.
    """
    if has_demo_data():
        return SeedResult(skipped=True, **_counts())
    started = time.perf_counter()
    with transaction.atomic():
        result = _Seeder(
            users=users, events=events, days=days, seed=seed, now=now, progress=progress
        ).run()
    result.seconds = time.perf_counter() - started
    return result


def ensure_admin() -> bool:
    """Create the ``admin``/``admin`` superuser if missing; True when created."""
    User = get_user_model()
    if User._default_manager.filter(username=ADMIN_USERNAME).exists():
        return False
    # bulk_create sends no post_save, so the admin does not count as a demo sign-up.
    User._default_manager.bulk_create(
        [
            User(
                username=ADMIN_USERNAME,
                email="admin@example.com",
                is_staff=True,
                is_superuser=True,
                password=make_password(ADMIN_PASSWORD),
            )
        ]
    )
    return True


def _counts() -> dict[str, int]:
    return {
        "users": get_user_model()._default_manager.count(),
        "churches": Church.objects.count(),
        "fasts": Fast.objects.count(),
        "memberships": Profile.fasts.through.objects.count(),
        "events": get_event_model()._default_manager.count(),
        "feed_items": get_feed_model()._default_manager.count(),
    }


class _Seeder:
    def __init__(
        self,
        *,
        users: int,
        events: int,
        days: int,
        seed: int,
        now: datetime | None,
        progress: Progress | None,
    ) -> None:
        self.n_users = users
        self.n_events = events
        self.rng = random.Random(seed)
        self.uuid_rng = random.Random(seed + 1)
        self.now = now or timezone.now().replace(minute=0, second=0, microsecond=0)
        self.start = self.now - timedelta(days=days)
        self.progress = progress or (lambda label, done, total: None)
        self.Event = get_event_model()
        self.Feed = get_feed_model()
        self.fast_type = ContentType.objects.get_for_model(Fast)
        self.join_event = engagement_settings.JOIN_EVENT
        self.leave_event = engagement_settings.LEAVE_EVENT
        self.reached: list[_Milestone] = []
        self.active_until: dict[int, datetime] = {}
        self.activity_weight: dict[int, float] = {}

    def run(self) -> SeedResult:
        fasts = self.create_fasts()
        users = self.create_users()
        self.plan_lifetimes(users)
        memberships = self.create_memberships(users, fasts)
        type_counts = self.create_events(users, memberships, fasts)
        feed_items = self.create_feed(users, memberships, fasts)
        return SeedResult(
            users=len(users),
            churches=len(CHURCHES),
            fasts=len(fasts),
            memberships=sum(1 for m in memberships if m.left_at is None),
            events=sum(type_counts.values()),
            feed_items=feed_items,
            event_types=dict(sorted(type_counts.items())),
        )

    # Helpers ---------------------------------------------------------------

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.uuid_rng.getrandbits(128), version=4)

    def moment(self, low: datetime, high: datetime) -> datetime:
        """A time in [low, high], busier on weekends and in recent weeks."""
        span = max((high - low).total_seconds(), 1.0)
        total = max((self.now - self.start).total_seconds(), 1.0)
        while True:
            at = low + timedelta(seconds=self.rng.random() * span)
            growth = 0.6 + 0.4 * (at - self.start).total_seconds() / total
            if self.rng.random() * 1.6 <= WEEKDAY_WEIGHT[at.weekday()] * growth:
                return at

    def source(self) -> str:
        return self.rng.choices(["web", "android", "ios"], weights=[5, 3, 2])[0]

    def bulk(self, model, rows: list, label: str) -> list:
        created = []
        for offset in range(0, len(rows), BATCH_SIZE):
            created += model._default_manager.bulk_create(rows[offset : offset + BATCH_SIZE])
            self.progress(label, min(offset + BATCH_SIZE, len(rows)), len(rows))
        return created

    # Steps -----------------------------------------------------------------

    def create_fasts(self) -> list[Fast]:
        churches = Church.objects.bulk_create([Church(name=name) for name in CHURCHES])
        span = (self.now - self.start).days
        today = timezone.localdate(self.now)
        fasts = []
        for index, (name, length) in enumerate(FASTS):
            # Staggered over the period; the last few are still running or upcoming.
            starts_on = today - timedelta(days=span) + timedelta(days=index * (span + 30) // 12)
            fasts.append(
                Fast(
                    name=name,
                    church=churches[index % len(churches)],
                    starts_on=starts_on,
                    ends_on=starts_on + timedelta(days=length - 1),
                    description=f"{name}: {length} days of fasting and prayer.",
                )
            )
        fasts = Fast.objects.bulk_create(fasts)
        self.progress("Churches and fasts", len(fasts), len(fasts))
        return fasts

    def create_users(self) -> list:
        User = get_user_model()
        password = make_password(DEMO_PASSWORD)
        width = max(3, len(str(self.n_users)))
        total = (self.now - self.start).total_seconds()
        rows = []
        for number in range(1, self.n_users + 1):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            # A launch cohort in the first weeks, then steady growth.
            share = self.rng.random() ** 1.8 if self.rng.random() < 0.6 else self.rng.random()
            username = f"user{number:0{width}d}"
            rows.append(
                User(
                    username=username,
                    first_name=first,
                    last_name=last,
                    email=f"{username}@example.com",
                    password=password,
                    date_joined=self.start + timedelta(seconds=share * total),
                )
            )
        self.bulk(User, rows, "Users")
        users = list(
            User._default_manager.filter(username__in=[u.username for u in rows]).order_by("pk")
        )
        self.bulk(Profile, [Profile(user=user) for user in users], "Profiles")
        profile_ids = dict(Profile.objects.filter(user__in=users).values_list("user_id", "pk"))
        for user in users:
            user.profile_id = profile_ids[user.pk]
        return users

    def plan_lifetimes(self, users: list) -> None:
        """Each user's activity weight and last active moment (``active_until``).

        Weights follow a long tail (a few users do most); the heaviest go to the
        earliest sign-ups, who stay active until now. Everyone else churns: within
        days of signing up (``FIRST_WEEK_ONLY``), or after a geometric number of
        weeks (``WEEKLY_RETENTION``).
        """
        weights = [1 / (rank + 5) for rank in range(len(users))]
        self.rng.shuffle(weights)
        by_signup = sorted(users, key=lambda user: (user.date_joined, user.pk))
        heaviest = sorted(weights, reverse=True)[:REGULARS]
        for weight in heaviest:
            weights.remove(weight)
        others = [user for user in users if user not in by_signup[:REGULARS]]
        self.activity_weight = dict(zip((u.pk for u in others), weights, strict=True))
        for user, weight in zip(by_signup[:REGULARS], heaviest, strict=False):
            self.activity_weight[user.pk] = weight
            self.active_until[user.pk] = self.now
        for user in others:
            if self.rng.random() < FIRST_WEEK_ONLY:
                # Gone before their signup week (Monday to Sunday) is over.
                local = timezone.localtime(user.date_joined)
                week_end = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
                    days=7 - local.weekday()
                )
                lifetime = (week_end - local) * self.rng.uniform(0.05, 0.95)
            else:
                weeks = 1
                while self.rng.random() < WEEKLY_RETENTION:
                    weeks += 1
                lifetime = timedelta(weeks=weeks, days=self.rng.uniform(0, 7))
            self.active_until[user.pk] = min(user.date_joined + lifetime, self.now)

    def fast_window(self, fast: Fast) -> tuple[datetime, datetime]:
        """When people join a fast: from three weeks before it starts to its end (or now)."""
        tz = timezone.get_current_timezone()
        opens = datetime.combine(fast.starts_on - timedelta(days=21), datetime.min.time(), tz)
        closes = datetime.combine(fast.ends_on, datetime.max.time(), tz)
        return max(opens, self.start), min(closes, self.now)

    def create_memberships(self, users: list, fasts: list[Fast]) -> list[_Membership]:
        counts, weights = zip(*MEMBERSHIPS_PER_USER, strict=True)
        memberships = []
        for user in users:
            wanted = self.rng.choices(counts, weights=weights)[0]
            for fast in self.rng.sample(fasts, wanted):
                opens, closes = self.fast_window(fast)
                opens = max(opens, user.date_joined)
                closes = min(closes, self.active_until[user.pk])
                if opens >= closes:
                    continue
                joined_at = self.moment(opens, closes)
                left_at = None
                if self.rng.random() < LEAVE_PROBABILITY:
                    left_at = joined_at + (closes - joined_at) * self.rng.uniform(0.1, 0.9)
                memberships.append(_Membership(user.pk, user.profile_id, fast, joined_at, left_at))
        Through = Profile.fasts.through
        self.bulk(
            Through,
            [
                Through(profile_id=m.profile_id, fast_id=m.fast.pk)
                for m in memberships
                if m.left_at is None
            ],
            "Memberships",
        )
        return memberships

    def event(self, event_type: str, at: datetime, **fields):
        source = fields.pop("source", None) or self.source()
        fields.setdefault("uuid", self.uuid())
        return self.Event(
            event_type=event_type,
            source=source,
            created_at=at,
            user_agent=USER_AGENTS.get(source, ""),
            ip_address=f"198.51.100.{self.rng.randrange(1, 255)}",
            **fields,
        )

    def target(self, fast: Fast) -> dict:
        return {"target_content_type": self.fast_type, "target_object_id": str(fast.pk)}

    def create_events(self, users: list, memberships: list[_Membership], fasts: list[Fast]):
        rows = [
            self.event(
                "user_signed_up",
                user.date_joined,
                user=user,
                title="Signed up",
                data={"method": self.rng.choice(["email", "email", "google", "apple"])},
            )
            for user in users
        ]
        for m in memberships:
            m.join_uuid = self.uuid()
            rows.append(
                self.event(
                    self.join_event,
                    m.joined_at,
                    uuid=m.join_uuid,
                    user_id=m.user_id,
                    title=f"Joined {m.fast.name}",
                    data={"fast_id": m.fast.pk, "church": m.fast.church.name},
                    **self.target(m.fast),
                )
            )
            if m.left_at:
                m.leave_uuid = self.uuid()
                rows.append(
                    self.event(
                        self.leave_event,
                        m.left_at,
                        uuid=m.leave_uuid,
                        user_id=m.user_id,
                        title=f"Left {m.fast.name}",
                        data={"fast_id": m.fast.pk, "church": m.fast.church.name},
                        **self.target(m.fast),
                    )
                )
        by_fast: dict[int, list[_Membership]] = {}
        for m in memberships:
            by_fast.setdefault(m.fast.pk, []).append(m)
        self.reached = [
            ms for fast in fasts for ms in self.milestones(fast, by_fast.get(fast.pk, []))
        ]
        rows += [
            self.event(
                MILESTONE_EVENT,
                ms.at,
                uuid=ms.uuid,
                source="server",
                title=f"{ms.fast.name} reached {ms.threshold} participants",
                data={"threshold": ms.threshold, "count": ms.threshold},
                **self.target(ms.fast),
            )
            for ms in self.reached
        ]
        rows += self.activity(users, fasts, max(0, self.n_events - len(rows)))
        self.bulk(self.Event, rows, "Events")
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.event_type] = counts.get(row.event_type, 0) + 1
        return counts

    def activity(self, users: list, fasts: list[Fast], count: int) -> list:
        """Page views, logins, devotionals and prayer requests; a few users do most.

        A user acts only between signing up and ``active_until``; the weight scales
        with that span, so churned users are not crammed into their few days.
        """
        kinds, shares = zip(*ACTIVITY_MIX, strict=True)
        user_weights = [
            self.activity_weight[user.pk]
            * (1 + (self.active_until[user.pk] - user.date_joined).total_seconds() / 86400)
            for user in users
        ]
        rows = []
        for _ in range(count):
            kind = self.rng.choices(kinds, weights=shares)[0]
            if kind == "anonymous_page_view":
                at = self.moment(self.start, self.now)
                rows.append(
                    self.event(
                        "page_view",
                        at,
                        source="web",
                        anonymous_id=f"anon-{self.rng.randrange(16**8):08x}",
                        data={"path": self.rng.choice(PAGES)},
                    )
                )
                continue
            user = self.rng.choices(users, weights=user_weights)[0]
            at = self.moment(max(user.date_joined, self.start), self.active_until[user.pk])
            fields = {"user": user}
            if kind == "page_view":
                fast = self.rng.choice(fasts)
                if self.rng.random() < 0.4:
                    fields |= self.target(fast)
                    fields["data"] = {"path": f"/fasts/{fast.pk}/"}
                else:
                    fields["data"] = {"path": self.rng.choice(PAGES)}
            elif kind == "user_logged_in":
                fields["title"] = "Logged in"
                fields["data"] = {"method": "password"}
            elif kind == "devotional_viewed":
                number = self.rng.randrange(1, 120)
                fields["title"] = f"Devotional #{number}"
                fields["data"] = {"devotional_id": number, "seconds": self.rng.randrange(20, 600)}
            else:
                fields["title"] = "Prayer request"
                fields["data"] = {"anonymous": self.rng.random() < 0.3}
            rows.append(self.event(kind, at, **fields))
        return rows

    def feed_item(self, user_id: int, activity_type: str, at: datetime, title: str, **fields):
        # Older items are more likely to have been read.
        age_days = (self.now - at).days
        is_read = self.rng.random() < min(0.9, age_days / 30)
        return self.Feed(
            user_id=user_id,
            activity_type=activity_type,
            created_at=at,
            title=title,
            is_read=is_read,
            read_at=at + timedelta(hours=self.rng.randrange(1, 72)) if is_read else None,
            **fields,
        )

    def create_feed(self, users: list, memberships: list[_Membership], fasts: list[Fast]) -> int:
        event_ids = dict(
            self.Event._default_manager.filter(
                event_type__in=[self.join_event, self.leave_event, MILESTONE_EVENT]
            ).values_list("uuid", "pk")
        )
        rows = []
        for m in memberships:
            rows.append(
                self.feed_item(
                    m.user_id,
                    "fast_join",
                    m.joined_at,
                    f"You joined {m.fast.name}",
                    event_id=event_ids[m.join_uuid],
                    description=f"Welcome to {m.fast.name} at {m.fast.church.name}.",
                    data={"fast_id": m.fast.pk},
                    **self.target(m.fast),
                )
            )
            if m.left_at:
                rows.append(
                    self.feed_item(
                        m.user_id,
                        "fast_leave",
                        m.left_at,
                        f"You left {m.fast.name}",
                        event_id=event_ids[m.leave_uuid],
                        data={"fast_id": m.fast.pk},
                        **self.target(m.fast),
                    )
                )
        by_fast: dict[int, list[_Membership]] = {}
        for m in memberships:
            by_fast.setdefault(m.fast.pk, []).append(m)
        for ms in self.reached:
            rows += [
                self.feed_item(
                    user_id,
                    "milestone",
                    ms.at,
                    f"{ms.fast.name} reached {ms.threshold} participants",
                    event_id=event_ids[ms.uuid],
                    data={"fast_id": ms.fast.pk, "threshold": ms.threshold},
                    **self.target(ms.fast),
                )
                for user_id in ms.user_ids
            ]
        for fast in fasts:
            rows += self.reminders(fast, by_fast.get(fast.pk, []))
        rows += self.devotionals(users)
        self.bulk(self.Feed, rows, "Feed items")
        return len(rows)

    @staticmethod
    def participants(memberships: list[_Membership], at: datetime) -> list[_Membership]:
        return [
            m for m in memberships if m.joined_at <= at and (m.left_at is None or m.left_at > at)
        ]

    def milestones(self, fast: Fast, memberships: list[_Membership]) -> list[_Milestone]:
        """When the fast's participant count first reaches each ``MILESTONES`` threshold."""
        changes = sorted(
            [(m.joined_at, 1) for m in memberships]
            + [(m.left_at, -1) for m in memberships if m.left_at]
        )
        thresholds = sorted(engagement_settings.MILESTONES)
        reached, count = [], 0
        for at, step in changes:
            count += step
            if thresholds and count >= thresholds[0]:
                participants = [m.user_id for m in self.participants(memberships, at)]
                reached.append(_Milestone(fast, at, thresholds.pop(0), participants, self.uuid()))
        return reached

    def reminders(self, fast: Fast, memberships: list[_Membership]) -> list:
        """A weekly ``fast_reminder`` to the participants while the fast runs."""
        tz = timezone.get_current_timezone()
        day: date = fast.starts_on
        rows = []
        while day <= fast.ends_on:
            at = datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=6)
            if at > self.now:
                break
            if at >= self.start:
                for m in self.participants(memberships, at):
                    rows.append(
                        self.feed_item(
                            m.user_id,
                            "fast_reminder",
                            at,
                            f"{fast.name}: day {(day - fast.starts_on).days + 1}",
                            description="Keep going, and remember today's prayer.",
                            data={"fast_id": fast.pk},
                            **self.target(fast),
                        )
                    )
            day += timedelta(days=7)
        return rows

    def devotionals(self, users: list) -> list:
        """A weekly ``devotional_available`` item to a third of the users signed up by then."""
        rows = []
        at = self.start + timedelta(days=1, hours=5)
        number = 1
        while at <= self.now:
            for user in users:
                if user.date_joined <= at and self.rng.random() < 0.33:
                    rows.append(
                        self.feed_item(
                            user.pk,
                            "devotional_available",
                            at,
                            f"New devotional #{number}",
                            data={"devotional_id": number},
                        )
                    )
            at += timedelta(days=7)
            number += 1
        return rows
