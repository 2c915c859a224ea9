"""Retention: delete expired feed items (optionally archiving them) and purge old events.

Usage::

    from django_engagement import apply_retention, purge_events

    result = apply_retention(dry_run=True)            # per-type counts, nothing deleted
    apply_retention(archive_to="/var/backups/engagement")
    purge_events(days=90)

An item is expired when ``created_at < now - days``, with ``days`` taken from
``FEED_RETENTION`` for its activity type (``FEED_RETENTION_DEFAULT`` otherwise).
Deletion runs in bounded batches, each in its own transaction: select the oldest
``batch_size`` ids through the ``(activity_type, created_at)`` or ``created_at``
index, archive those rows (durably) if asked, then ``DELETE ... WHERE id IN``.
(On PostgreSQL without an archive, select and delete are one statement per batch.)
A crash therefore loses at most the batch in flight, which is already archived.
Batch deletes skip Django's per-object delete signals (that is what makes them
set-based); listen to ``retention_applied`` instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.db.models.sql.subqueries import DeleteQuery
from django.utils import timezone

from ..conf import engagement_settings
from ..models import PendingFanOut, column_of, get_event_model, get_feed_model
from ..signals import retention_applied
from . import partitions, unread
from .archive import Archive, RawJSON, check_archive_target, open_archive

DEFAULT_BATCH_SIZE = 10_000
# SQLite allows 32,766 bound parameters per statement; stay well below it.
MAX_BATCH_SIZE = 20_000
# Local archive files are named <ARCHIVE_NAME>-<UTC timestamp>.jsonl.gz.
ARCHIVE_NAME = "activity-feed"

ProgressCallback = Callable[[str, int], None]


@dataclass
class RetentionResult:
    """What ``apply_retention`` found and removed.

    ``counts``: expired rows per activity type (in a dry run: what would go);
    ``deleted``: rows actually deleted per type (empty in a dry run);
    ``cutoffs``: the ``created_at`` bound used per type (rows strictly older expire);
    ``archive``: where the deleted rows were written, or None.
    """

    counts: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, datetime] = field(default_factory=dict)
    dry_run: bool = False
    archive: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class PurgeResult:
    """What ``purge_events`` found and removed.

    ``events``: events older than ``cutoff`` (deleted unless ``dry_run``);
    ``feed_items_detached``: feed items whose ``event`` was (or would be) set to NULL.
    """

    cutoff: datetime
    events: int = 0
    feed_items_detached: int = 0
    dry_run: bool = False


@dataclass(frozen=True)
class _Policy:
    """One retention rule: a filter on the feed table and the cutoff it uses."""

    label: str
    cutoff: datetime
    condition: models.Q


def known_activity_types() -> list[str]:
    """Activity types the retention table names plus those present in the feed table."""
    present = (
        get_feed_model()
        ._default_manager.order_by()
        .values_list("activity_type", flat=True)
        .distinct()
    )
    return sorted(set(engagement_settings.FEED_RETENTION) | set(present))


def _policies(activity_type: str | None, older_than_days: int | None) -> list[_Policy]:
    now = timezone.now()
    table: dict[str, int] = engagement_settings.FEED_RETENTION
    default_days: int = engagement_settings.FEED_RETENTION_DEFAULT

    def cutoff(days: int) -> datetime:
        return now - timedelta(days=older_than_days if older_than_days is not None else days)

    if activity_type is not None:
        if activity_type not in table:
            Feed = get_feed_model()
            if not Feed._default_manager.filter(activity_type=activity_type).exists():
                known = ", ".join(known_activity_types())
                raise ValueError(
                    f"Unknown activity type {activity_type!r}; known types: {known or 'none'}."
                )
        when = cutoff(table.get(activity_type, default_days))
        return [_Policy(activity_type, when, models.Q(activity_type=activity_type))]
    policies = [
        _Policy(name, cutoff(days), models.Q(activity_type=name))
        for name, days in sorted(table.items())
    ]
    # Types missing from the table share the default: one pass over the
    # created_at index instead of a DISTINCT over the whole table.
    others = ~models.Q(activity_type__in=list(table)) if table else models.Q()
    policies.append(_Policy("*", cutoff(default_days), others))
    return policies


def _expired(policy: _Policy) -> models.QuerySet:
    Feed = get_feed_model()
    return Feed._default_manager.filter(policy.condition, created_at__lt=policy.cutoff)


def _match_ids(
    connection: BaseDatabaseWrapper, field: models.Field, ids: list[Any]
) -> tuple[str, list]:
    """``field``'s column matches one of ``ids``, as SQL and params.

    PostgreSQL gets ``= ANY(%s::<type>[])`` with the ids as ONE array literal:
    parsing and planning a 10,000-item ``IN (...)`` list, or adapting 10,000
    parameters, costs several times more than the delete itself.
    """
    column = connection.ops.quote_name(field.column)  # type: ignore[arg-type]  # a concrete column
    if connection.vendor == "postgresql":
        column_field = field.target_field if isinstance(field, models.ForeignKey) else field
        db_type = column_field.rel_db_type(connection)
        quoted = (str(value).replace("\\", "\\\\").replace('"', '\\"') for value in ids)
        return f"{column} = ANY(%s::{db_type}[])", ["{" + ",".join(f'"{v}"' for v in quoted) + "}"]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def _delete_batch(model: type[models.Model], ids: list[Any]) -> int:
    """``DELETE ... WHERE pk IN (ids)``: one statement, no per-object collection.

    Raw SQL on purpose: ``QuerySet.delete()`` runs the Collector, which loads every
    row to send pre/post_delete (and would null the feed's FK row by row); the
    package's own FK (feed -> event) is handled by ``purge_events`` before it deletes.
    """
    using = router.db_for_write(model)
    connection = connections[using]
    where, params = _match_ids(connection, model._meta.pk, ids)
    sql = f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {where}"
    if model is get_feed_model():
        # The users' unread counters drop by the unread rows deleted, in this transaction.
        return unread.counted_write(sql, params, delta=-1, using=using)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _detach_feed_items(event_ids: list[Any]) -> int:
    """``UPDATE feed SET event_id = NULL WHERE event_id IN (event_ids)`` in one statement."""
    Feed = get_feed_model()
    connection = connections[router.db_for_write(Feed)]
    field = Feed._meta.get_field("event")
    where, params = _match_ids(connection, field, event_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Feed._meta.db_table)} "
            f"SET {connection.ops.quote_name(field.column)} = NULL WHERE {where}",
            params,
        )
        return cursor.rowcount


def _count_expired(policies: list[_Policy]) -> Counter[str]:
    """Expired rows per activity type in one grouped query."""
    expired = reduce(
        or_, (policy.condition & models.Q(created_at__lt=policy.cutoff) for policy in policies)
    )
    rows = (
        get_feed_model()
        ._default_manager.filter(expired)
        .order_by()
        .values("activity_type")
        .annotate(n=models.Count("pk"))
        .values_list("activity_type", "n")
    )
    return Counter(dict(rows))


def _archive_select(
    model: type[models.Model], connection: BaseDatabaseWrapper
) -> tuple[list[str], list[Any], Callable[[tuple[Any, ...]], dict[str, Any] | RawJSON]]:
    """What to select for archived rows: column names, select expressions, and how
    to turn a fetched tuple into an archive row.

    PostgreSQL writes each row as one JSON object itself (``json_build_object``), so
    Python only joins and compresses lines; elsewhere JSON columns are selected as
    text and written as is (``RawJSON``), the rest by attribute name.
    """
    fields = model._meta.concrete_fields
    pk_name = model._meta.pk.attname
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        pairs = ", ".join(f"'{field.attname}', {quote(field.column)}" for field in fields)  # type: ignore[arg-type]  # concrete columns
        line = RawSQL(f"json_build_object({pairs})::text", ())
        return (
            [pk_name, "activity_type", "line"],
            [pk_name, "activity_type", line],
            (lambda row: RawJSON(row[2])),
        )
    names: list[str] = []
    selected: list[Any] = []
    json_names: set[str] = set()
    for column in fields:
        names.append(column.attname)
        if isinstance(column, models.JSONField):
            selected.append(Cast(column.attname, models.TextField()))
            json_names.add(column.attname)
        else:
            selected.append(column.attname)

    def archive_row(row: tuple[Any, ...]) -> dict[str, Any]:
        return {
            name: RawJSON(value) if name in json_names and value is not None else value
            for name, value in zip(names, row, strict=True)
        }

    return names, selected, archive_row


def _delete_range(
    rows: models.QuerySet, policy: _Policy, *, database: str
) -> list[tuple[str, int]]:
    """Delete ``rows`` (one batch's range) in one transaction; (activity type, rows) pairs.

    Two statements: the read rows go by a plain ``DELETE``; the unread ones by a
    ``DELETE ... RETURNING`` their users, which lowers those users' unread counters in
    the same statement. Each statement re-checks ``is_read`` on the row version it
    deletes, so a row marked read or unread meanwhile is counted as what it was when it
    went (one that turned read between the two stays for the next run). Returning
    every row instead, read ones included, costs about a third more.
    """
    Feed = get_feed_model()
    connection = connections[database]
    quote = connection.ops.quote_name
    user = quote(column_of(Feed, "user"))
    activity_type = quote(column_of(Feed, "activity_type"))
    # A one-type policy counts its rows; the rest ("*") counts them per type.
    per_type = policy.label == "*"
    counts_sql = (
        f"SELECT {activity_type}, count(*) FROM gone GROUP BY {activity_type}"
        if per_type
        else "SELECT %s, count(*) FROM gone HAVING count(*) > 0"
    )
    label = [] if per_type else [policy.label]
    counted = unread.counting_cte("gone", user=user, delta=-1, using=database)

    def delete_sql(is_read: bool) -> tuple[str, tuple[Any, ...]]:
        delete = rows.filter(is_read=is_read).query.chain(DeleteQuery)
        return delete.get_compiler(database).as_sql()

    read_sql, read_params = delete_sql(True)
    unread_sql, unread_params = delete_sql(False)
    with transaction.atomic(using=database), connection.cursor() as cursor:
        if per_type:
            cursor.execute(
                f"WITH gone AS ({read_sql} RETURNING {activity_type}) {counts_sql}", read_params
            )
            results = cursor.fetchall()
        else:
            cursor.execute(read_sql, read_params)
            results = [(policy.label, cursor.rowcount)] if cursor.rowcount else []
        returning = f"{activity_type}, {user}" if per_type else user
        cursor.execute(
            f"WITH gone AS ({unread_sql} RETURNING {returning}), counted AS ({counted}) "
            f"{counts_sql}",
            [*unread_params, *label],
        )
        return results + cursor.fetchall()


def _delete_in_place(
    policy: _Policy,
    *,
    database: str,
    batch_size: int,
    deleted: Counter[str],
    on_batch: ProgressCallback | None,
) -> None:
    """PostgreSQL without an archive: each batch is a range of ``created_at``, deleted
    by range (an index range scan, about half the cost of deleting listed row ids) and
    returning only per-type counts, so nothing but a few numbers crosses the wire.

    The first range ends at the ``batch_size``-th oldest expired row (one index probe);
    each next one starts where the last ended and is sized from the rows the last
    range held, so later batches need no probe. Starting where the last ended matters:
    restarting from the oldest row would walk every index entry the run has deleted so
    far, dead but not yet vacuumed. After an empty range, one probe jumps to the next
    expired row. On a partitioned table a range prunes to its month.
    """
    expired = _expired(policy).using(database).order_by("created_at")
    times = expired.values_list("created_at", flat=True)
    start = times.first()
    span: timedelta | None = None
    done = 0
    while start is not None:
        remaining = expired.filter(created_at__gte=start)
        if span is None:
            last = times.filter(created_at__gte=start)[batch_size - 1 : batch_size].first()
            end = None if last is None else last + timedelta(microseconds=1)
        else:
            end = start + span
        if end is not None and end >= policy.cutoff:
            end = None
        batch = remaining if end is None else remaining.filter(created_at__lt=end)
        counts = _delete_range(batch, policy, database=database)
        rows = sum(count for _, count in counts)
        for type_name, count in counts:
            deleted[type_name] += count
        done += rows
        if rows and on_batch is not None:
            on_batch(policy.label, done)
        if end is None:
            return
        if rows:
            # Aim the next range at batch_size rows, changing its length at most twofold.
            span = (end - start) * min(2.0, max(0.5, batch_size / rows))
            start = end
        else:
            start = times.filter(created_at__gte=end).first()


def _delete_policy(
    policy: _Policy,
    *,
    batch_size: int,
    archive: Archive | None,
    deleted: Counter[str],
    on_batch: ProgressCallback | None,
) -> None:
    Feed = get_feed_model()
    # Select on the database that deletes: a replica's batch could be stale, and the
    # SELECT and DELETE must share the batch's transaction.
    database = router.db_for_write(Feed)
    if archive is None and connections[database].vendor == "postgresql":
        _delete_in_place(
            policy, database=database, batch_size=batch_size, deleted=deleted, on_batch=on_batch
        )
        return
    pk_name = Feed._meta.pk.attname
    if archive is not None:
        columns, selected, archive_row = _archive_select(Feed, connections[database])
    else:
        # Only what the DELETE and the per-type counts need: converting 10,000
        # datetimes per batch would cost more than the delete itself.
        columns = selected = [pk_name, "activity_type"]
    pk_index, type_index = columns.index(pk_name), columns.index("activity_type")
    # PostgreSQL keeps deleted index entries until VACUUM, so each batch starts at the
    # time the last one reached (see _delete_in_place); SQLite removes them at once.
    keyset = connections[database].vendor == "postgresql"
    expired = _expired(policy).using(database).order_by("created_at")
    if keyset:
        expired = expired.annotate(_engagement_reached=F("created_at"))
        selected = [*selected, "_engagement_reached"]
    batches = expired.values_list(*selected)
    reached: datetime | None = None
    done = 0
    while True:
        batch = batches if reached is None else batches.filter(created_at__gte=reached)
        with transaction.atomic(using=database):
            rows = list(batch[:batch_size])
            if not rows:
                return
            if archive is not None:
                archive.write([archive_row(row[: len(columns)]) for row in rows])
            _delete_batch(Feed, [row[pk_index] for row in rows])
        if keyset:
            reached = rows[-1][-1]
        deleted.update(row[type_index] for row in rows)
        done += len(rows)
        if on_batch is not None:
            on_batch(policy.label, done)


def _drop_whole_partitions(
    policies: list[_Policy],
    *,
    archive: Archive | None,
    deleted: Counter[str],
    on_batch: ProgressCallback | None,
) -> None:
    """Partitioned feed table: drop each month whose rows have all expired (archived first).

    Months that still hold a row some policy keeps are left to the batch DELETE.
    """
    Feed = get_feed_model()
    if not partitions.is_partitioned(Feed):
        return
    expired = reduce(
        or_, (policy.condition & models.Q(created_at__lt=policy.cutoff) for policy in policies)
    )

    def archive_rows(model: type[models.Model], rows: models.QuerySet) -> None:
        assert archive is not None
        columns, selected, archive_row = _archive_select(model, connections[rows.db])
        chunk: list[Any] = []
        for row in (
            rows.order_by().values_list(*selected).iterator(chunk_size=partitions.ARCHIVE_CHUNK)
        ):
            chunk.append(archive_row(row))
            if len(chunk) == partitions.ARCHIVE_CHUNK:
                archive.write(chunk)
                chunk = []
        if chunk:
            archive.write(chunk)

    dropped = partitions.drop_expired_partitions(
        Feed,
        expired=expired,
        before=max(policy.cutoff for policy in policies),
        group_by="activity_type",
        archive_rows=archive_rows if archive is not None else None,
    )
    for partition in dropped:
        deleted.update(partition.counts)
        if on_batch is not None:
            on_batch(partition.name, partition.rows)


def apply_retention(
    *,
    dry_run: bool = False,
    activity_type: str | None = None,
    older_than_days: int | None = None,
    archive_to: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: ProgressCallback | None = None,
) -> RetentionResult:
    """Delete feed items past their retention, per activity type.

    ``older_than_days`` overrides every type's days; ``activity_type`` limits the
    run to one type (``ValueError`` when it is neither in ``FEED_RETENTION`` nor
    in the table). ``archive_to`` (directory, ``.gz`` file or ``s3://bucket/prefix``)
    keeps a copy of every deleted row, written before its batch is deleted.
    ``on_batch(label, rows_done)`` is called after each batch (for progress lines).
    Sends ``retention_applied(result=..., dry_run=...)`` after commit.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}.")
    if older_than_days is not None and older_than_days < 0:
        raise ValueError("older_than_days must not be negative.")
    policies = _policies(activity_type, older_than_days)
    result = RetentionResult(
        dry_run=dry_run,
        cutoffs={policy.label: policy.cutoff for policy in policies},
    )
    # Every type the run has a rule for is listed, with 0 when nothing expired.
    listed = dict.fromkeys((p.label for p in policies if p.label != "*"), 0)
    if dry_run:
        if archive_to:  # a dry run checks the archive target the real run would use
            check_archive_target(archive_to, name=ARCHIVE_NAME)
        result.counts = dict(sorted({**listed, **_count_expired(policies)}.items()))
    else:
        deleted: Counter[str] = Counter()
        archive = open_archive(archive_to, name=ARCHIVE_NAME) if archive_to else None
        try:
            _drop_whole_partitions(policies, archive=archive, deleted=deleted, on_batch=on_batch)
            for policy in policies:
                _delete_policy(
                    policy,
                    batch_size=batch_size,
                    archive=archive,
                    deleted=deleted,
                    on_batch=on_batch,
                )
        finally:
            if archive is not None:
                archive.close()
        result.deleted = dict(sorted({**listed, **deleted}.items()))
        result.counts = dict(result.deleted)
        result.archive = archive.location if archive is not None else None
    Feed = get_feed_model()
    transaction.on_commit(
        lambda: retention_applied.send(sender=Feed, result=result, dry_run=dry_run)
    )
    return result


def purge_events(
    days: int | None = None,
    dry_run: bool = False,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: ProgressCallback | None = None,
) -> PurgeResult:
    """Delete events with ``created_at < now - days`` (default ``EVENT_RETENTION_DAYS``).

    Feed items pointing at a purged event stay, with ``event`` set to NULL: each
    batch runs one ``UPDATE`` of the feed's FK and then one ``DELETE``, in one
    transaction.
    """
    if days is None:
        days = engagement_settings.EVENT_RETENTION_DAYS
    if days < 0:
        raise ValueError("days must not be negative.")
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}.")
    Event = get_event_model()
    Feed = get_feed_model()
    result = PurgeResult(cutoff=timezone.now() - timedelta(days=days), dry_run=dry_run)
    expired = Event._default_manager.filter(created_at__lt=result.cutoff)
    if dry_run:
        result.events = expired.count()
        result.feed_items_detached = Feed._default_manager.filter(
            event__in=expired.values("pk")
        ).count()
        return result
    database = router.db_for_write(Event)
    # Partitioned: whole expired months go by DETACH and DROP, the rest in batches.
    for partition in partitions.drop_expired_partitions(
        Event, expired=models.Q(created_at__lt=result.cutoff), before=result.cutoff
    ):
        result.events += partition.rows
        result.feed_items_detached += partition.related.get(Feed._meta.label, 0)
        if on_batch is not None:
            on_batch("events", result.events)
    batches = expired.using(database).order_by("created_at").values_list("pk", flat=True)
    while True:
        with transaction.atomic(using=database):
            ids = list(batches[:batch_size])
            if not ids:
                return result
            result.feed_items_detached += _detach_feed_items(ids)
            # The raw DELETE skips the Collector: drop the events' outbox rows (FK) first.
            _delete_batch(PendingFanOut, ids)
            result.events += _delete_batch(Event, ids)
        if on_batch is not None:
            on_batch("events", result.events)
