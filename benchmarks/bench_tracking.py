"""Event recording, feed fan-out, feed reads and mark-read, each beside its raw-SQL floor.

    DATABASE_URL=postgres://... python benchmarks/run.py tracking        # full size
    python benchmarks/run.py tracking --scale 0.1                       # SQLite, quick look

Rows (sizes x scale):

- ``record_event`` one call per event (N=2,000), floor: one ``cursor.execute`` INSERT per
  row (both commit per event).
- ``record_events`` in batches of 500 (N=50,000), floor: ``bulk_create`` of the same rows
  in batches of 500, one transaction per batch.
- ``notify`` a users queryset of 10,000 and 50,000 users, floor: the same
  ``INSERT ... SELECT`` written by hand.
- the first page of 20 unread items ``with_targets()`` and serialised, for a user holding
  10,000 of 1,000,000 feed rows (p50 of 50 runs), floor: the raw ``SELECT ... LIMIT 20``.
- ``mark_read`` of 10,000 unread items, floor: a plain ``UPDATE``.

Bulk data is generated inside the database (recursive CTE ``INSERT ... SELECT``). The
suite empties the event and feed tables first and removes its own users after.
"""

from __future__ import annotations

import statistics
import time

from common import Row, measure
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction

from django_engagement import notify, record_event, record_events
from django_engagement.api.serializers import serialize_feed_item
from django_engagement.conf import DEFAULTS
from django_engagement.models import get_event_model, get_feed_model
from tests.testapp.models import Course

PREFIX = "trkbench_"
BATCH = 500


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _series(count: int) -> str:
    """A CTE ``s(n)`` of 0..count-1 that PostgreSQL and SQLite both run."""
    if connection.vendor == "postgresql":
        return f"WITH s(n) AS (SELECT generate_series(0, {count - 1}))"
    return f"WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < {count - 1})"


def _seconds_ago(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"NOW() - ({expr}) * INTERVAL '1 second'"
    return f"strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || ({expr}) || ' seconds')"


def _json_empty() -> str:
    return "'{}'::jsonb" if connection.vendor == "postgresql" else "'{}'"


def _bool(value: bool) -> str:
    return ("TRUE" if value else "FALSE") if connection.vendor == "postgresql" else str(int(value))


def _reset() -> None:
    with connection.cursor() as cursor:
        for model in (get_feed_model(), get_event_model()):
            cursor.execute(f"DELETE FROM {_q(model._meta.db_table)}")
    get_user_model().objects.filter(username__startswith=PREFIX).delete()
    Course.objects.filter(title__startswith=PREFIX).delete()


def _make_users(count: int) -> list[int]:
    User = get_user_model()
    table = _q(User._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_series(count)} INSERT INTO {table} (password, is_superuser, username, first_name,"
            " last_name, email, is_staff, is_active, date_joined, display_name)"
            f" SELECT '', {_bool(False)}, '{PREFIX}' || n, '', '', '', {_bool(False)},"
            f" {_bool(True)}, {_seconds_ago('0')}, '' FROM s"
        )
    return list(
        User.objects.filter(username__startswith=PREFIX).order_by("pk").values_list("pk", flat=True)
    )


def _make_feed(total: int, hot_user: int, hot_items: int, user_ids: list[int], courses) -> None:
    """``total`` feed rows: ``hot_items`` for ``hot_user`` (half unread), the rest spread."""
    Feed = get_feed_model()
    first, span = user_ids[1], len(user_ids) - 1
    ct = ContentType.objects.get_for_model(Course).pk
    base = courses[0]
    columns = (
        "target_content_type_id, target_object_id, user_id, activity_type, title, description,"
        " data, is_read, created_at"
    )
    user_expr = f"CASE WHEN n < {hot_items} THEN {hot_user} ELSE {first} + (n % {span}) END"
    with connection.cursor() as cursor:
        cursor.execute(
            f"{_series(total)} INSERT INTO {_q(Feed._meta.db_table)} ({columns})"
            f" SELECT {ct}, CAST({base} + (n % {len(courses)}) AS VARCHAR(64)), {user_expr},"
            f" 'fast_join', 'Item ' || n, '', {_json_empty()}, (n % 2 = 1), {_seconds_ago('n')}"
            " FROM s"
        )


def build_feed_table(size, hot: int, user_ids: list[int], prefix: str) -> tuple[int, int, float]:
    """The feed-page data set: 1,000,000 rows (scaled) over 100 courses, 10,000 of them
    ``hot``'s. Returns (rows, hot user's rows, seconds to build)."""
    courses = Course.objects.bulk_create([Course(title=f"{prefix}{i}") for i in range(100)])
    course_ids = sorted(course.pk for course in courses)
    total, hot_items = size(1_000_000, 20_000), size(10_000, 200)
    seconds = measure(lambda: _make_feed(total, hot, hot_items, user_ids, course_ids))[0]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_q(get_feed_model()._meta.db_table)}")
    return total, hot_items, seconds


def _event_columns():
    Event = get_event_model()
    fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
    return Event, fields


def _raw_single_inserts(count: int, user_id: int) -> float:
    Event, fields = _event_columns()
    sql = (
        f"INSERT INTO {_q(Event._meta.db_table)} ({', '.join(_q(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
    )

    def run() -> None:
        with connection.cursor() as cursor:
            for n in range(count):
                event = Event(event_type="page_view", user_id=user_id, data={"n": n})
                cursor.execute(
                    sql, [f.get_db_prep_save(f.pre_save(event, True), connection) for f in fields]
                )

    return measure(run)[0]


def _p50(func, runs: int = 50) -> float:
    func()  # warm caches (content types, statement plans)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def run(scale: float) -> list[Row]:
    from django.test.utils import override_settings

    size = lambda n, low=10: max(low, int(n * scale))  # noqa: E731
    rows: list[Row] = []
    Event, Feed = get_event_model(), get_feed_model()
    quiet = {"TRACK": dict.fromkeys(DEFAULTS["TRACK"], False)}
    with override_settings(ENGAGEMENT=quiet):
        _reset()
        big_notify = size(50_000, 100)
        user_ids = _make_users(max(big_notify, 2_000) + 1)
        hot = user_ids[0]

        # record_event, one call per event
        n = size(2_000)
        seconds = measure(
            lambda: [record_event("page_view", user=hot, data={"n": i}) for i in range(n)]
        )[0]
        rows.append(
            Row("record_event (one call each)", n, seconds, _raw_single_inserts(n, hot), "ev/s")
        )

        # record_events in batches
        n = size(50_000, BATCH)
        specs = [{"event_type": "page_view", "user": hot, "data": {"n": i}} for i in range(n)]
        seconds = measure(
            lambda: [record_events(specs[i : i + BATCH]) for i in range(0, n, BATCH)]
        )[0]

        def floor_bulk() -> None:
            for i in range(0, n, BATCH):
                with transaction.atomic():
                    Event.objects.bulk_create(
                        [
                            Event(event_type="page_view", user_id=hot, data=spec["data"])
                            for spec in specs[i : i + BATCH]
                        ]
                    )

        rows.append(
            Row(f"record_events (batches of {BATCH})", n, seconds, measure(floor_bulk)[0], "ev/s")
        )

        # notify: one INSERT ... SELECT
        User = get_user_model()
        for count in (size(10_000, 100), big_notify):
            recipients = User.objects.filter(pk__gte=user_ids[1], pk__lte=user_ids[count])
            seconds = measure(lambda r=recipients: notify(r, "event", title="Hello"))[0]
            with connection.cursor() as cursor:
                sql, params = recipients.values("pk").query.sql_with_params()
                start = time.perf_counter()
                cursor.execute(
                    f"INSERT INTO {_q(Feed._meta.db_table)} (user_id, activity_type, title,"
                    " description, data, is_read, created_at, target_object_id)"
                    f" SELECT sub.pk, 'event', 'Hello', '', {_json_empty()}, {_bool(False)},"
                    f" {_seconds_ago('0')}, '' FROM ({sql}) sub",
                    params,
                )
                floor = time.perf_counter() - start
            rows.append(
                Row(f"notify queryset of {count:,} users", count, seconds, floor, "items/s")
            )

        # feed page: 20 unread with targets for a user with 10,000 of 1,000,000 rows
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {_q(Feed._meta.db_table)}")
        total, hot_items, build = build_feed_table(size, hot, user_ids, PREFIX)

        def queryset_page() -> list:
            return list(Feed.objects.for_user(hot).unread().with_targets()[:20])

        def page() -> list:
            return [serialize_feed_item(item) for item in queryset_page()]

        def raw_page() -> list:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT * FROM {_q(Feed._meta.db_table)} WHERE user_id = %s"
                    f" AND is_read = {_bool(False)} ORDER BY created_at DESC, id DESC LIMIT 20",
                    [hot],
                )
                return cursor.fetchall()

        assert len(page()) == 20
        note = f"p50 of 50; user has {hot_items:,} items; table built in {build:.1f}s"
        rows.append(
            Row(
                f"feed page queryset (20 unread + targets) {total:,} rows",
                20,
                _p50(queryset_page),
                _p50(raw_page),
                "items/s",
                "2 queries: the items, then their targets (content types cached)",
            )
        )
        rows.append(
            Row(
                f"feed page (20 unread, targets) in {total:,} rows",
                20,
                _p50(page),
                _p50(raw_page),
                "items/s",
                f"serialised; {note}",
            )
        )

        # mark_read of every unread item of the hot user
        unread_sql = (
            f"UPDATE {_q(Feed._meta.db_table)} SET is_read = {_bool(False)}, read_at = NULL"
            " WHERE user_id = %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(unread_sql, [hot])
        seconds, changed = measure(lambda: Feed.objects.for_user(hot).mark_read())
        with connection.cursor() as cursor:
            cursor.execute(unread_sql, [hot])
            start = time.perf_counter()
            cursor.execute(
                f"UPDATE {_q(Feed._meta.db_table)} SET is_read = {_bool(True)},"
                f" read_at = {_seconds_ago('0')} WHERE user_id = %s AND is_read = {_bool(False)}",
                [hot],
            )
            floor = time.perf_counter() - start
        rows.append(Row(f"mark_read all ({changed:,} unread)", changed, seconds, floor, "items/s"))
        _reset()
    return rows
