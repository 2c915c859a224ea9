"""The unread badge in O(1): a counter row per user, kept exact by every feed write.

Usage::

    from django_engagement.services.unread import unread_count, rebuild_unread

    unread_count(request.user)        # one primary-key read; 0 when the user has no row
    rebuild_unread()                  # recount every counter from the feed table

``FeedUnreadCount`` holds ``unread`` per user for the active feed model
(``get_feed_model()``). The package's writes move it in the transaction that
changes the items, set-based: fan-out and ``notify`` (the rows the ``INSERT ...
SELECT`` really inserted, per user), ``mark_read``/``mark_unread`` (the rows the
``UPDATE`` changed), retention (the unread rows each batch deleted) and partition
drops (the dropped month's unread rows, counted under its lock). On PostgreSQL
each of those is ONE statement: the write, with ``RETURNING`` feeding a grouped
upsert ``unread = unread + excluded.unread`` in a data-modifying CTE.

Writes that go around the package (``Feed.objects.filter(...).update(is_read=True)``,
raw SQL, ``QuerySet.delete()``) leave the counters behind: ``rebuild_unread`` (the
``engagement_rebuild_unread_counts`` command) puts them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from django.db import connections, models, router, transaction
from django.db.models import Subquery

from ..managers import UnreadCountQuerySet
from ..models import FeedUnreadCount, column_of, get_feed_model


def counters(using: str | None = None) -> UnreadCountQuerySet:
    """The counter rows on ``using`` (the feed's write database by default)."""
    database = using or router.db_for_write(get_feed_model())
    return cast(UnreadCountQuerySet, FeedUnreadCount._default_manager.using(database))


def _user_id(user: Any) -> Any:
    return getattr(user, "pk", user)


def unread_count(user: Any) -> int:
    """``user``'s unread items: one read of one row by primary key (no row: 0).

    An anonymous user (or one without a primary key) has 0, without a query.
    """
    if not getattr(user, "is_authenticated", True) or _user_id(user) is None:
        return 0
    # Raw SQL on purpose: the badge is polled, and building a queryset for one row by
    # primary key costs several times the read itself.
    connection = connections[router.db_for_read(FeedUnreadCount)]
    quote = connection.ops.quote_name
    pk = FeedUnreadCount._meta.pk
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('unread')} FROM {quote(FeedUnreadCount._meta.db_table)} "
            f"WHERE {quote(column_of(FeedUnreadCount))} = %s",
            [pk.get_db_prep_value(_user_id(user), connection)],
        )
        row = cursor.fetchone()
    return max(row[0], 0) if row else 0


def unread_subquery(user: Any) -> Subquery:
    """``user``'s counter as a scalar subquery (NULL without a row), for a query that
    reads the badge along with other numbers."""
    counter = FeedUnreadCount._default_manager.filter(pk=_user_id(user)).values("unread")
    return Subquery(counter[:1], output_field=models.IntegerField())


def unread_counts(user_ids: Sequence[Any]) -> dict[Any, int]:
    """The unread counts of ``user_ids`` (0 for those without a row): one query."""
    rows = FeedUnreadCount._default_manager.filter(pk__in=list(user_ids)).values_list(
        "pk", "unread"
    )
    return dict.fromkeys(user_ids, 0) | {user_id: max(unread, 0) for user_id, unread in rows}


def add_unread(rows_per_user: Mapping[Any, int], *, using: str | None = None) -> None:
    """Raise each user's counter by their count (multi-row upserts, in user order).

    For a write path that learns its per-user numbers itself; call it in the
    transaction of that write.
    """
    queryset = counters(using)
    queryset.add(rows_per_user, using=queryset.db)


def subtract_unread(rows_per_user: Mapping[Any, int], *, using: str | None = None) -> None:
    """Lower each user's counter by their count; see ``add_unread``."""
    add_unread({user_id: -count for user_id, count in rows_per_user.items()}, using=using)


def counted_write(
    sql: str,
    params: Sequence[Any],
    *,
    delta: int,
    unread_only: bool = True,
    using: str,
) -> int:
    """Run ``sql``, one INSERT/UPDATE/DELETE of the feed table (no ``RETURNING`` of its
    own), and move each changed row's user counter by ``delta``; returns rows changed.

    ``unread_only`` counts only the rows that are unread (after the statement): what
    inserts and deletes need. An insert that folds into an existing unread row
    (``ON CONFLICT DO UPDATE``) must not reach this with that row: count it elsewhere.
    """
    return counters(using).counted(
        get_feed_model(), sql, params, delta=delta, unread_only=unread_only, using=using
    )


def counting_cte(source: str, *, user: str, delta: int, where: str = "", using: str) -> str:
    """PostgreSQL: a CTE body moving counters by ``delta`` per row of the CTE ``source``;
    for statements that already are ``WITH changed AS (... RETURNING ...)``."""
    return counters(using).counting_cte(source, user=user, delta=delta, where=where, using=using)


def subtract_table(table: str, *, using: str) -> None:
    """Lower the counters by the unread rows of the feed table ``table`` (a partition
    about to be dropped): one grouped upsert. Call it while ``table`` is locked."""
    feed = get_feed_model()
    quote = connections[using].ops.quote_name
    user = quote(column_of(feed, "user"))
    is_read = quote(column_of(feed, "is_read"))
    source = f"(SELECT {user} FROM {quote(table)} WHERE NOT {is_read}) AS gone"
    with connections[using].cursor() as cursor:
        cursor.execute(counters(using).counting_cte(source, user=user, delta=-1, using=using))


def rebuild_unread(
    *, users: Iterable[Any] | None = None, dry_run: bool = False, using: str | None = None
) -> int:
    """Recount the unread counters from the feed table; returns how many were wrong.

    Every user, or only ``users`` (users or ids). Set-based (two statements in one
    transaction); on PostgreSQL it locks the counter table against writers while
    it runs, so no concurrent change is lost. ``dry_run`` rolls the recount back:
    the number says how many counters are out of step.
    """
    ids = None if users is None else [_user_id(user) for user in users]
    queryset = counters(using)
    with transaction.atomic(using=queryset.db):
        changed = queryset.rebuild(get_feed_model(), user_ids=ids)
        if dry_run:
            transaction.set_rollback(True, using=queryset.db)
    return changed
