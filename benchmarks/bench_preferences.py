"""One ``notify()`` to 50,000 users with notification preferences and flood limit on vs off.

    DATABASE_URL=postgres://... python benchmarks/run.py preferences
    python benchmarks/run.py preferences --scale 0.1          # SQLite, 5,000 users

Rows measured (N = 50,000 x scale recipients):

- ``notify`` with no preference rows, no mutes, no ``FEED_RATE_LIMIT`` (off);
- ``notify`` with preferences on: N/5 users with rows (a tenth opted out of the type, a
  tenth with a daily digest, so the email outbox is written too), N/20 muted targets,
  and a ``FEED_RATE_LIMIT`` on the type;
- the floor: one raw ``INSERT INTO feed ... SELECT ... FROM users`` of the same rows.

Goal on PostgreSQL: preferences on within 1.5x of off.
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


def run(scale: float) -> list[Row]:
    count = max(100, int(USERS * scale))
    _setup(count)
    target = get_user_model().objects.filter(username__startswith=PREFIX).first()
    rows = []
    _clear_feed()
    with transaction.atomic():
        seconds, created = measure(lambda: _floor(target))
    rows.append(Row("raw INSERT ... SELECT (floor)", created, seconds))
    floor = seconds
    _clear_feed()
    with transaction.atomic():
        seconds, created = measure(
            lambda: notify(_recipients(), TYPE, title="Hello", target=target)
        )
    off = seconds
    rows.append(Row("notify, preferences off", created, seconds, floor))
    _clear_feed()
    _add_preferences(target)
    with override_settings(ENGAGEMENT={"FEED_RATE_LIMIT": {TYPE: 30}}), transaction.atomic():
        seconds, created = measure(
            lambda: notify(_recipients(), TYPE, title="Hello", target=target)
        )
    rows.append(
        Row(
            "notify, preferences + mutes + rate limit on",
            created,
            seconds,
            floor,
            note=f"{seconds / off:.2f}x of off; {FeedEmail.objects.count():,} emails queued",
        )
    )
    _clear_feed()
    NotificationPreference.objects.filter(activity_type=TYPE).delete()
    TargetMute.objects.all().delete()
    _recipients().delete()
    return rows
