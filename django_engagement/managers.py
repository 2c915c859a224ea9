"""QuerySets holding the package's reusable queries, exposed as managers.

Usage::

    Feed = get_feed_model()
    Feed.objects.for_user(request.user).unread()[:20]
    Feed.objects.for_user(request.user).mark_read(ids=[1, 2, 3])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from django.apps import apps
from django.core.exceptions import EmptyResultSet
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.sql import UpdateQuery
from django.utils import timezone

# Counter rows per multi-row upsert: two parameters each, well below SQLite's 32,766.
UPSERT_BATCH_SIZE = 5000


class EventQuerySet(models.QuerySet):
    def for_user(self, user) -> EventQuerySet:
        return self.filter(user=user)

    def of_type(self, *event_types: str) -> EventQuerySet:
        return self.filter(event_type__in=event_types)

    def between(self, start: datetime, end: datetime) -> EventQuerySet:
        """Events with ``start <= created_at < end`` (half-open, so days never overlap)."""
        return self.filter(created_at__gte=start, created_at__lt=end)

    def for_target(self, target: models.Model) -> EventQuerySet:
        from django.contrib.contenttypes.models import ContentType

        return self.filter(
            target_content_type=ContentType.objects.get_for_model(target),
            target_object_id=str(target.pk),
        )


class FeedQuerySet(models.QuerySet):
    def for_user(self, user) -> FeedQuerySet:
        return self.filter(user=user)

    def unread(self) -> FeedQuerySet:
        return self.filter(is_read=False)

    def read(self) -> FeedQuerySet:
        return self.filter(is_read=True)

    def older_than(self, cutoff: datetime) -> FeedQuerySet:
        return self.filter(created_at__lt=cutoff)

    def with_targets(self) -> FeedQuerySet:
        """Load the targets in one query per content type, never per item.

        Content types come from Django's per-process cache, not from a join: joining
        them costs more (a wider row and an object per item) than it saves.
        """
        return self.prefetch_related("target")

    def mark_read(self, ids: Iterable[int] | None = None) -> int:
        """Mark the unread items of this queryset (optionally only ``ids``) read.

        One UPDATE; returns how many rows changed. Scope it first with
        ``for_user()`` so nobody can touch another user's items. The unread
        counters of the users concerned drop by the rows changed, in the same
        statement (PostgreSQL) or transaction (SQLite).
        """
        queryset = self.unread()
        if ids is not None:
            queryset = queryset.filter(pk__in=list(ids))
        return queryset._update_counting({"is_read": True, "read_at": timezone.now()}, delta=-1)

    def mark_unread(self) -> int:
        """Mark the read items of this queryset unread again; one UPDATE, returns rows changed.

        The users' unread counters rise by the rows changed, in the same transaction.
        """
        return self.read()._update_counting({"is_read": False, "read_at": None}, delta=1)

    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update``; a change of ``is_read`` moves the unread counters too.

        ``is_read=True`` / ``False``: the rows already in that state are updated in
        one statement, then the rows that flip with their counters (one transaction).
        An expression for ``is_read`` is applied, then the users' counters recounted.
        """
        if "is_read" not in kwargs:
            return super().update(**kwargs)
        value = kwargs["is_read"]
        using = self._db or router.db_for_write(self.model)  # type: ignore[attr-defined]
        with transaction.atomic(using=using, savepoint=False):
            if isinstance(value, bool):
                # The rows already in that state first: after the flip, they would be all.
                same = models.QuerySet.update(self.filter(is_read=value), **kwargs)
                flipped = self.filter(is_read=not value)._update_counting(
                    kwargs, delta=-1 if value else 1
                )
                return same + flipped
            user_ids = list(self.order_by().values_list("user_id", flat=True).distinct())
            changed = super().update(**kwargs)
            unread_counters().using(using).rebuild(self.model, user_ids=user_ids)
            return changed

    update.alters_data = True  # type: ignore[attr-defined]

    def delete(self) -> tuple[int, dict[str, int]]:
        """``QuerySet.delete``, then a recount of the counters of the users concerned."""
        using = self._db or router.db_for_write(self.model)  # type: ignore[attr-defined]
        with transaction.atomic(using=using, savepoint=False):
            user_ids = list(self.order_by().values_list("user_id", flat=True).distinct())
            deleted = super().delete()
            unread_counters().using(using).rebuild(self.model, user_ids=user_ids)
            return deleted

    delete.alters_data = True  # type: ignore[attr-defined]
    delete.queryset_only = True  # type: ignore[attr-defined]

    def bulk_create(self, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        """``QuerySet.bulk_create``; the unread items created raise their users' counters.

        With ``ignore_conflicts``/``update_conflicts`` (which rows were written is
        not known) the users' counters are recounted instead.
        """
        objs = list(objs)
        using = self._db or router.db_for_write(self.model)  # type: ignore[attr-defined]
        with transaction.atomic(using=using, savepoint=False):
            created: list[Any] = super().bulk_create(objs, *args, **kwargs)
            counters = unread_counters().using(using)
            if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
                counters.rebuild(self.model, user_ids=sorted({obj.user_id for obj in objs}))
            else:
                counters.add(
                    Counter(obj.user_id for obj in created if not obj.is_read), using=using
                )
            return created

    def _update_counting(self, values: dict[str, Any], *, delta: int) -> int:
        """``UPDATE`` this queryset's rows with ``values``; each changed row moves its
        user's unread counter by ``delta`` (every row changed flips ``is_read``)."""
        using = self._db or router.db_for_write(self.model)  # type: ignore[attr-defined]
        query = cast(UpdateQuery, self.query.chain(UpdateQuery))
        query.add_update_values(values)
        query.annotations = {}
        compiler = query.get_compiler(using)
        compiler.pre_sql_setup()
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # ``pk__in=[]``: nothing to update
            return 0
        if not sql:
            return 0
        return unread_counters().counted(self.model, sql, params, delta=delta, using=using)


def unread_counters() -> UnreadCountQuerySet:
    """The unread counter rows (``FeedUnreadCount``), found through the app registry:
    the model's module imports this one, so this one cannot import it."""
    model = apps.get_model("django_engagement", "FeedUnreadCount")
    return cast(UnreadCountQuerySet, model._default_manager.all())


def _column(model: type[models.Model], name: str, connection: BaseDatabaseWrapper) -> str:
    column = getattr(model._meta.get_field(name), "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{model.__name__}.{name} has no column.")
    return connection.ops.quote_name(column)


class UnreadCountQuerySet(models.QuerySet):
    """Set-based upkeep of the per-user unread counters (``FeedUnreadCount``).

    Every change is an upsert ``unread = unread + delta`` in user order (two
    transactions never take the same counters in opposite orders), run in the
    transaction of the feed write it mirrors.
    """

    def _names(self, using: str) -> tuple[str, str, str]:
        connection = connections[using]
        return (
            connection.ops.quote_name(str(self.model._meta.db_table)),
            _column(self.model, "user", connection),
            _column(self.model, "unread", connection),
        )

    def _upsert_suffix(self, using: str) -> str:
        table, user, unread = self._names(using)
        return f"ON CONFLICT ({user}) DO UPDATE SET {unread} = {table}.{unread} + excluded.{unread}"

    def add(self, deltas: Mapping[Any, int], *, using: str | None = None) -> None:
        """Add ``deltas`` (user id -> change; negative subtracts) in multi-row upserts."""
        using = using or router.db_for_write(self.model)
        rows = sorted((user_id, delta) for user_id, delta in deltas.items() if delta)
        if not rows:
            return
        table, user, unread = self._names(using)
        with connections[using].cursor() as cursor:
            for start in range(0, len(rows), UPSERT_BATCH_SIZE):
                batch = rows[start : start + UPSERT_BATCH_SIZE]
                cursor.execute(
                    f"INSERT INTO {table} ({user}, {unread}) VALUES "
                    f"{', '.join(['(%s, %s)'] * len(batch))} {self._upsert_suffix(using)}",
                    [value for row in batch for value in row],
                )

    def counting_cte(
        self, source: str, *, user: str, delta: int, where: str = "", using: str
    ) -> str:
        """The body of a PostgreSQL CTE that moves counters by ``delta`` per row of the
        CTE ``source`` (grouped by its column ``user``, filtered by ``where``).

        For statements written as ``WITH changed AS (... RETURNING ...)``:
        ``WITH changed AS (...), counted AS (<this>) SELECT ... FROM changed``.
        """
        table, counter_user, unread = self._names(using)
        condition = f"WHERE {where} " if where else ""
        return (
            f"INSERT INTO {table} ({counter_user}, {unread}) "
            f"SELECT {user}, {int(delta)} * count(*) FROM {source} {condition}"
            f"GROUP BY {user} ORDER BY {user} {self._upsert_suffix(using)}"
        )

    def counted(
        self,
        feed: type[models.Model],
        sql: str,
        params: Sequence[Any],
        *,
        delta: int,
        unread_only: bool = False,
        using: str,
    ) -> int:
        """Run ``sql`` (an INSERT, UPDATE or DELETE of ``feed`` rows, without RETURNING),
        moving each changed row's user counter by ``delta``; returns the rows changed.

        ``unread_only``: only rows that are unread count (inserts and deletes).
        PostgreSQL does both in ONE statement (a data-modifying CTE; nothing comes
        back but the count); SQLite >= 3.35 reads the users through ``RETURNING``
        and upserts them in the same transaction; a database without ``RETURNING``
        recounts every counter after the statement (exact, but a full scan).
        """
        connection = connections[using]
        user = _column(feed, "user", connection)
        is_read = _column(feed, "is_read", connection)
        with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                counted = self.counting_cte(
                    "changed",
                    user="engagement_user",
                    delta=delta,
                    where="NOT engagement_is_read" if unread_only else "",
                    using=using,
                )
                cursor.execute(
                    f"WITH changed AS ({sql} RETURNING {user} AS engagement_user, "
                    f"{is_read} AS engagement_is_read), counted AS ({counted}) "
                    "SELECT count(*) FROM changed",
                    params,
                )
                return int(cursor.fetchone()[0])
            if connection.features.can_return_columns_from_insert:
                cursor.execute(f"{sql} RETURNING {user}, {is_read}", params)
                rows = cursor.fetchall()
                deltas: Counter[Any] = Counter()
                for user_id, read in rows:
                    if not (unread_only and read):
                        deltas[user_id] += delta
                self.add(deltas, using=using)
                return len(rows)
            cursor.execute(sql, params)
            changed = cursor.rowcount
            if changed:
                self.using(using).rebuild(feed)
            return changed

    def rebuild(self, feed: type[models.Model], *, user_ids: Sequence[Any] | None = None) -> int:
        """Recount the counters from ``feed``'s rows (every user, or ``user_ids``), set-based.

        Two statements in one transaction: an upsert of each user with unread items
        whose counter differs, then a reset to 0 of the counters whose user has none.
        Returns how many counters changed. On PostgreSQL the counter table is locked
        against writers first (``SHARE ROW EXCLUSIVE``): a feed write running
        meanwhile adds its change after the recount, on top of it, so none is lost.
        """
        using = self.db
        connection = connections[using]
        table, counter_user, unread = self._names(using)
        feed_table = connection.ops.quote_name(feed._meta.db_table)
        user = _column(feed, "user", connection)
        is_read = _column(feed, "is_read", connection)
        ids: list[Any] = []
        scope = ""
        if user_ids is not None:
            ids = list(user_ids)
            if not ids:
                return 0
            scope = f" AND {{column}} IN ({', '.join(['%s'] * len(ids))})"
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute(
                f"INSERT INTO {table} ({counter_user}, {unread}) "
                f"SELECT {user}, count(*) FROM {feed_table} "
                f"WHERE {is_read} = %s{scope.format(column=user)} "
                f"GROUP BY {user} ORDER BY {user} "
                f"ON CONFLICT ({counter_user}) DO UPDATE SET {unread} = excluded.{unread} "
                f"WHERE {table}.{unread} <> excluded.{unread}",
                [False, *ids],
            )
            changed = cursor.rowcount
            cursor.execute(
                f"UPDATE {table} SET {unread} = 0 WHERE {unread} <> 0"
                f"{scope.format(column=counter_user)} AND NOT EXISTS (SELECT 1 FROM {feed_table} "
                f"WHERE {feed_table}.{user} = {table}.{counter_user} AND {is_read} = %s)",
                [*ids, False],
            )
            return changed + cursor.rowcount


# Manager classes built once at import (what ``as_manager()`` builds), so type checkers see
# the queryset methods on ``Model.objects``.
EventManager = models.Manager.from_queryset(EventQuerySet)
FeedManager = models.Manager.from_queryset(FeedQuerySet)
UnreadCountManager = models.Manager.from_queryset(UnreadCountQuerySet)
