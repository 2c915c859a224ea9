"""One ``notify()`` to 50,000 users with preferences, flood limit and grouping on vs off.

    DATABASE_URL=postgres://... python benchmarks/run.py preferences
    python benchmarks/run.py preferences --scale 0.1          # SQLite, 5,000 users

Rows measured (N = 50,000 x scale recipients):

- ``notify`` with no preference rows, no mutes, no ``FEED_RATE_LIMIT`` (off);
- ``notify`` with preferences on: N/5 users with rows (a tenth opted out of the type, a
  tenth with a daily digest, so the email outbox is written too), N/20 muted targets,
  and a ``FEED_RATE_LIMIT`` on the type;
- ``notify`` of a ``FEED_GROUPING`` type (no preference rows): the first, which starts
  a group per recipient, and a second, which folds into all of them;
- the same two with preferences, mutes and the rate limit on as well; a fold is also
  set beside a bare ``UPDATE`` of the same rows (what updating a row costs at all);
- the floor: one raw ``INSERT INTO feed ... SELECT ... FROM users`` of the same rows.

Goal on PostgreSQL: preferences and grouping on within 1.5x of off.
"""

from __future__ import annotations

from common import Row, measure
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from django_engagement import notify
from django_engagement.models import (
    FeedEmail,
    NotificationPreference,
    TargetMute,
    get_feed_model,
)

PREFIX = "prefbench_"
USERS = 50_000
TYPE = "bench_news"


def _setup(count: int) -> None:
    User = get_user_model()
    User.objects.filter(username__startswith=PREFIX).delete()
    User.objects.bulk_create(
        [User(username=f"{PREFIX}{n}", email=f"{PREFIX}{n}@example.com") for n in range(count)],
        batch_size=5000,
    )


def _analyze() -> None:
    """Fresh planner statistics, as autovacuum would have after a bulk load."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def _recipients():
    return get_user_model().objects.filter(username__startswith=PREFIX)


def _clear_feed() -> None:
    FeedEmail.objects.all().delete()
    get_feed_model()._default_manager.filter(activity_type=TYPE).delete()


def _add_preferences(target) -> None:
    ids = list(_recipients().order_by("pk").values_list("pk", flat=True))
    rows = []
    for position, pk in enumerate(ids[: len(ids) // 5]):
        if position % 2:
            rows.append(NotificationPreference(user_id=pk, activity_type=TYPE, in_feed=False))
        else:
            rows.append(NotificationPreference(user_id=pk, activity_type=TYPE, email="daily"))
    NotificationPreference.objects.bulk_create(rows, batch_size=5000)
    content_type = ContentType.objects.get_for_model(target)
    TargetMute.objects.bulk_create(
        [
            TargetMute(
                user_id=pk, target_content_type=content_type, target_object_id=str(target.pk)
            )
            for pk in ids[-len(ids) // 20 :]
        ],
        batch_size=5000,
    )


def _floor(target) -> int:
    Feed = get_feed_model()
    content_type = ContentType.objects.get_for_model(target)
    quote = connection.ops.quote_name
    user_table = quote(get_user_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Feed._meta.db_table)} (user_id, activity_type, title, "
            "description, data, is_read, created_at, target_content_type_id, target_object_id) "
            f"SELECT id, %s, %s, '', '{{}}', false, %s, %s, %s FROM {user_table} "
            "WHERE username LIKE %s",
            [TYPE, "Hello", timezone.now(), content_type.pk, str(target.pk), f"{PREFIX}%"],
        )
        return cursor.rowcount


def _notify(target, actor=None) -> int:
    return notify(_recipients(), TYPE, title="Hello", target=target, actor=actor)


def _best(func, before=None, repeat: int = 3) -> tuple[float, object]:
    """Fastest of ``repeat`` runs, each in a transaction rolled back (same data every time)."""
    best = None
    for _ in range(repeat):
        with transaction.atomic():
            if before is not None:
                before()
            seconds, result = measure(func)
            transaction.set_rollback(True)
        if best is None or seconds < best[0]:
            best = (seconds, result)
    assert best is not None
    return best


GROUPING = {TYPE: {"window": 3600, "title": "{actor} and {others} said hello"}}


def _grouped_rows(label: str, target, actor, floor: float, off: float, engagement: dict) -> list:
    with override_settings(ENGAGEMENT={**engagement, "FEED_GROUPING": GROUPING}):
        first, created = _best(lambda: _notify(target, actor))
        second, _ = _best(lambda: _notify(target, actor), before=lambda: _notify(target, actor))
        bare, _ = _best(_bare_update, before=lambda: _notify(target, actor))
    return [
        Row(f"{label}: new groups", created, first, floor, note=f"{first / off:.2f}x of off"),
        Row(
            f"{label}: folds",
            created,
            second,
            floor,
            note=f"{second / off:.2f}x of off, {second / bare:.2f}x of a bare UPDATE",
        ),
    ]


def _bare_update() -> int:
    """The floor of a fold: a raw UPDATE of the same rows that changes nothing."""
    table = connection.ops.quote_name(get_feed_model()._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET title = title WHERE activity_type = %s", [TYPE])
        return cursor.rowcount


def run(scale: float) -> list[Row]:
    count = max(100, int(USERS * scale))
    _setup(count)
    target = get_user_model().objects.filter(username__startswith=PREFIX).first()
    actor = get_user_model().objects.filter(username__startswith=PREFIX).last()
    _analyze()
    _clear_feed()
    floor, created = _best(lambda: _floor(target))
    rows = [Row("raw INSERT ... SELECT (floor)", created, floor)]
    off, created = _best(lambda: _notify(target))
    rows.append(Row("notify, preferences off", created, off, floor))
    rows += _grouped_rows("notify, grouping on", target, actor, floor, off, {})
    _add_preferences(target)
    _analyze()
    limit = {"FEED_RATE_LIMIT": {TYPE: 30}}
    with override_settings(ENGAGEMENT=limit):
        seconds, created = _best(lambda: _notify(target))
        with transaction.atomic():
            _notify(target)
            emails = FeedEmail.objects.count()
            transaction.set_rollback(True)
    rows.append(
        Row(
            "notify, preferences + mutes + rate limit on",
            created,
            seconds,
            floor,
            note=f"{seconds / off:.2f}x of off; {emails:,} emails queued",
        )
    )
    rows += _grouped_rows(
        "notify, preferences + limit + grouping", target, actor, floor, off, limit
    )
    _clear_feed()
    NotificationPreference.objects.filter(activity_type=TYPE).delete()
    TargetMute.objects.all().delete()
    _recipients().delete()
    return rows
