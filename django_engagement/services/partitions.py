"""Opt-in monthly range partitioning of the event and feed tables (PostgreSQL only).

Usage::

    from django_engagement.services import partitions

    partitions.convert(get_feed_model(), months_ahead=3)   # once, in a maintenance window
    partitions.create_partitions(get_feed_model(), months_ahead=3)   # monthly, e.g. from cron
    partitions.list_partitions(get_feed_model())

``convert`` rebuilds a table as ``PARTITION BY RANGE (created_at)`` with one partition
per calendar month (UTC) named ``<table>_pYYYYMM`` plus ``<table>_default`` for rows
outside every month that exists. PostgreSQL requires every unique index of a
partitioned table to contain the partition key, so ``convert`` changes constraints:

- the primary key becomes ``(id, created_at)``; ids still come from one sequence;
- other unique indexes without ``created_at`` (the event uuid, the feed's
  once-per-event key) become one unique index per partition: exact within a month;
- the event idempotency keys stay exact across partitions: they move to a plain table
  ``<event table>_keys`` with the same partial unique indexes, claimed by a
  ``BEFORE INSERT`` trigger that skips a row whose key is taken (what
  ``ON CONFLICT DO NOTHING`` did) and released by statement triggers on delete/update;
- foreign keys *to* a partitioned table cannot exist (they would need the partition
  key): they are dropped, and dropping a partition does their ``on_delete``
  (``SET_NULL`` / ``CASCADE``) for the partition's rows first.

Retention (``services/retention.py``) drops whole partitions that hold only expired
rows, archiving them first when asked, and deletes the rest in batches as before.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from ..models import column_of, get_feed_model
from . import unread

PARTITION_KEY = "created_at"
DEFAULT_MONTHS_AHEAD = 3
# Rows per archive write when a partition is archived before it is dropped.
ARCHIVE_CHUNK = 10_000

_INDEX_DEF = re.compile(r"^CREATE (UNIQUE )?INDEX (\S+) ON (\S+) (USING .*)$", re.DOTALL)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


class PartitioningError(Exception):
    """The table cannot be (or is not) partitioned as asked; the message says why."""


@dataclass(frozen=True)
class Partition:
    """One partition: ``start <= created_at < end``; both None for the default one."""

    name: str
    start: datetime | None
    end: datetime | None
    rows: int = 0

    @property
    def is_default(self) -> bool:
        return self.start is None


@dataclass
class ConvertResult:
    """What ``convert`` did: partitions made, rows copied, constraints it changed."""

    table: str
    partitions: list[str] = field(default_factory=list)
    rows: int = 0
    changed: list[str] = field(default_factory=list)


@dataclass
class DroppedPartition:
    """A partition ``drop_expired_partitions`` archived (if asked), detached and dropped."""

    name: str
    end: datetime
    counts: dict[str, int]
    related: dict[str, int]

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def _database(model: type[models.Model]) -> str:
    return router.db_for_write(model)


def _connection(model: type[models.Model]) -> BaseDatabaseWrapper:
    return connections[_database(model)]


def _quote(connection: BaseDatabaseWrapper, name: str) -> str:
    return connection.ops.quote_name(name)


def supported(model: type[models.Model]) -> bool:
    """Whether ``model``'s database can be partitioned (PostgreSQL)."""
    return _connection(model).vendor == "postgresql"


def is_partitioned(model: type[models.Model]) -> bool:
    """Whether ``model``'s table is a partitioned table (False on other databases)."""
    connection = _connection(model)
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
            [_quote(connection, model._meta.db_table)],
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def require_partitioned(model: type[models.Model]) -> None:
    if not is_partitioned(model):
        raise PartitioningError(
            f"{model._meta.db_table} is not partitioned; run `engagement_partitions convert`."
        )


def month_start(when: datetime) -> datetime:
    """The first instant (UTC) of ``when``'s month."""
    when = when.astimezone(UTC)
    return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def _months(first: datetime, last: datetime) -> Iterator[datetime]:
    """Month starts from ``first``'s month through ``last``'s month."""
    current, last = month_start(first), month_start(last)
    while current <= last:
        yield current
        current = next_month(current)


def partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y%m}"


def list_partitions(model: type[models.Model], *, with_rows: bool = False) -> list[Partition]:
    """Partitions of ``model``'s table, oldest first, the default one last.

    ``with_rows`` adds each partition's row estimate (``pg_class.reltuples``, kept by
    ANALYZE), not an exact count: counting a large partition would scan it.
    """
    connection = _connection(model)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), greatest(c.reltuples, 0) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [_quote(connection, model._meta.db_table)],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound, estimate in rows:
        match = _BOUND.search(bound)
        start, end = (
            (datetime.fromisoformat(match[1]), datetime.fromisoformat(match[2]))
            if match
            else (None, None)
        )
        found.append(Partition(name, start, end, int(estimate) if with_rows else 0))
    return sorted(found, key=lambda p: (p.is_default, p.start or datetime.min.replace(tzinfo=UTC)))


def _index_defs(cursor: CursorWrapper, table: str) -> list[tuple[str, str, bool, bool, bool]]:
    """``(name, definition, unique, primary, has_partition_key)`` of ``table``'s indexes."""
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), i.indisunique, "
        "i.indisprimary, a.attnum = ANY(i.indkey::int2[]) "
        "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = %s "
        "WHERE i.indrelid = to_regclass(%s) ORDER BY 1",
        [PARTITION_KEY, table],
    )
    return cursor.fetchall()


def _retarget(definition: str, *, name: str, table: str) -> str:
    """``definition`` (``pg_get_indexdef``) rewritten to index ``table`` as ``name``."""
    match = _INDEX_DEF.match(definition)
    if match is None:  # pragma: no cover - pg_get_indexdef always has this shape
        raise PartitioningError(f"Unexpected index definition: {definition}")
    return f"CREATE {match[1] or ''}INDEX {name} ON {table} {match[4]}"


def _local_name(partition: str, original: str) -> str:
    """A unique-per-partition index name within PostgreSQL's 63 bytes."""
    digest = hashlib.md5(original.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{partition[:50]}_u{digest}"


def _keys_table(model: type[models.Model]) -> str:
    return f"{model._meta.db_table}_keys"


def _has_idempotency_keys(model: type[models.Model]) -> bool:
    return any(f.name == "idempotency_key" for f in model._meta.concrete_fields)


def _related_fields(model: type[models.Model]) -> list[models.ForeignKey]:
    """Foreign keys of other models pointing at ``model`` (their DB constraints go)."""
    return [
        relation.field
        for relation in model._meta.get_fields(include_hidden=True)
        if isinstance(relation, models.ForeignObjectRel)
        and isinstance(relation.field, models.ForeignKey)
        and relation.related_model is not model
    ]


def convert(
    model: type[models.Model],
    *,
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    now: datetime | None = None,
) -> ConvertResult:
    """Rebuild ``model``'s table as monthly range partitions, in one transaction.

    Copies every row (``INSERT ... SELECT``) under an exclusive lock, so writes wait
    for the copy: run it in a maintenance window. Months from the oldest row through
    ``months_ahead`` months after ``now`` get a partition.
    """
    connection = _connection(model)
    if connection.vendor != "postgresql":
        raise PartitioningError("partitioning is PostgreSQL-only")
    if is_partitioned(model):
        raise PartitioningError(f"{model._meta.db_table} is already partitioned.")
    if months_ahead < 0:
        raise PartitioningError("months_ahead must not be negative.")
    table = model._meta.db_table
    quote = connection.ops.quote_name
    qtable, old = quote(table), quote(f"{table}__unpartitioned")
    pk = quote(column_of(model))
    key = quote(column_of(model, PARTITION_KEY))
    result = ConvertResult(table=table)
    now = now or timezone.now()
    with transaction.atomic(using=_database(model)), connection.cursor() as cursor:
        # Deferred FK checks still queued in this transaction would block ALTER TABLE.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"LOCK TABLE {qtable} IN ACCESS EXCLUSIVE MODE")
        indexes = _index_defs(cursor, qtable)
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype = 'f'",
            [qtable],
        )
        outgoing = cursor.fetchall()
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE confrelid = to_regclass(%s) AND contype = 'f'",
            [qtable],
        )
        for referencing, name in cursor.fetchall():
            cursor.execute(f"ALTER TABLE {referencing} DROP CONSTRAINT {quote(name)}")
            result.changed.append(f"foreign key {name} on {referencing} dropped")
        cursor.execute(f"SELECT min({key}), max({pk}) FROM {qtable}")
        oldest, max_id = cursor.fetchone()
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [qtable, model._meta.pk.column])
        (sequence,) = cursor.fetchone()
        next_id = (max_id or 0) + 1
        if sequence:
            cursor.execute(
                f"SELECT last_value + CASE WHEN is_called THEN 1 ELSE 0 END FROM {sequence}"
            )
            next_id = max(next_id, cursor.fetchone()[0])

        cursor.execute(f"ALTER TABLE {qtable} RENAME TO {old}")
        cursor.execute(
            f"CREATE TABLE {qtable} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            f"INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE ({key})"
        )
        cursor.execute(f"ALTER TABLE {qtable} ALTER COLUMN {pk} DROP DEFAULT")
        for start in _months(oldest or now, months_after(now, months_ahead)):
            result.partitions.append(_create_partition(cursor, connection, table, start))
        cursor.execute(f"CREATE TABLE {quote(table + '_default')} PARTITION OF {qtable} DEFAULT")
        result.partitions.append(f"{table}_default")
        cursor.execute(f"INSERT INTO {qtable} SELECT * FROM {old}")
        result.rows = cursor.rowcount
        cursor.execute(f"DROP TABLE {old}")

        seq = quote(f"{table}_{model._meta.pk.column}_seq")
        cursor.execute(f"CREATE SEQUENCE {seq} START WITH {int(next_id)} OWNED BY {qtable}.{pk}")
        cursor.execute(f"ALTER TABLE {qtable} ALTER COLUMN {pk} SET DEFAULT nextval('{seq}')")

        keyed = _has_idempotency_keys(model)
        for name, definition, unique, primary, has_key in indexes:
            if primary:
                cursor.execute(
                    f"ALTER TABLE {qtable} ADD CONSTRAINT {name} PRIMARY KEY ({pk}, {key})"
                )
                result.changed.append(
                    f"primary key {name} is now ({model._meta.pk.column}, {PARTITION_KEY})"
                )
            elif not unique or has_key:
                cursor.execute(definition)
            elif keyed and "idempotency_key" in definition:
                continue  # enforced by the keys table below
            else:
                for partition in result.partitions:
                    cursor.execute(
                        _retarget(
                            definition, name=_local_name(partition, name), table=quote(partition)
                        )
                    )
                result.changed.append(f"unique {name} is now enforced within each partition")
        for name, definition in outgoing:
            cursor.execute(f"ALTER TABLE {qtable} ADD CONSTRAINT {quote(name)} {definition}")
        if keyed:
            _install_keys_table(cursor, connection, model, indexes)
            result.changed.append(
                f"idempotency unique indexes moved to {_keys_table(model)} (trigger-maintained)"
            )
    return result


def months_after(now: datetime, months: int) -> datetime:
    """The start of the month ``months`` months after ``now``'s month."""
    start = month_start(now)
    for _ in range(months):
        start = next_month(start)
    return start


def _create_partition(
    cursor: CursorWrapper, connection: BaseDatabaseWrapper, table: str, start: datetime
) -> str:
    name = partition_name(table, start)
    cursor.execute(
        f"CREATE TABLE {_quote(connection, name)} PARTITION OF {_quote(connection, table)} "
        "FOR VALUES FROM (%s) TO (%s)",
        [start, next_month(start)],
    )
    return name


def _install_keys_table(
    cursor: CursorWrapper,
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    indexes: list[tuple[str, str, bool, bool, bool]],
) -> None:
    """The global idempotency ledger: same partial unique indexes, kept by triggers."""
    quote = connection.ops.quote_name
    table, keys = quote(model._meta.db_table), quote(_keys_table(model))
    user = quote(column_of(model, "user"))
    columns = f"{user}, anonymous_id, idempotency_key, created_at"
    cursor.execute(
        f"CREATE TABLE {keys} AS SELECT {columns} FROM {table} WHERE idempotency_key IS NOT NULL"
    )
    for name, definition, unique, _primary, _has_key in indexes:
        if unique and "idempotency_key" in definition:
            cursor.execute(
                _retarget(definition, name=_local_name(_keys_table(model), name), table=keys)
            )
    cursor.execute(f"CREATE INDEX ON {keys} (created_at)")
    claim, release = (
        quote(f"{model._meta.db_table}_keys_claim"),
        quote(f"{model._meta.db_table}_keys_release"),
    )
    # A taken key skips the row (RETURN NULL), as ON CONFLICT DO NOTHING did on the table.
    cursor.execute(
        f"""CREATE FUNCTION {claim}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.idempotency_key IS NULL THEN RETURN NEW; END IF;
            INSERT INTO {keys} ({columns})
            VALUES (NEW.{user}, NEW.anonymous_id, NEW.idempotency_key, NEW.created_at)
            ON CONFLICT DO NOTHING;
            IF FOUND THEN RETURN NEW; END IF;
            RETURN NULL;
        END $$"""
    )
    cursor.execute(
        f"""CREATE FUNCTION {release}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM {keys} k USING gone g
            WHERE g.idempotency_key IS NOT NULL AND k.idempotency_key = g.idempotency_key
              AND (k.{user} = g.{user}
                   OR (k.{user} IS NULL AND g.{user} IS NULL AND k.anonymous_id = g.anonymous_id));
            IF TG_OP = 'UPDATE' THEN
                INSERT INTO {keys} ({columns})
                SELECT {columns} FROM kept WHERE idempotency_key IS NOT NULL
                ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END $$"""
    )
    cursor.execute(
        f"CREATE TRIGGER keys_claim BEFORE INSERT ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {claim}()"
    )
    cursor.execute(
        f"CREATE TRIGGER keys_release_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS gone "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {release}()"
    )
    cursor.execute(
        f"CREATE TRIGGER keys_release_update AFTER UPDATE ON {table} REFERENCING OLD TABLE AS gone "
        f"NEW TABLE AS kept FOR EACH STATEMENT EXECUTE FUNCTION {release}()"
    )


def create_partitions(
    model: type[models.Model],
    *,
    months_ahead: int = DEFAULT_MONTHS_AHEAD,
    now: datetime | None = None,
) -> list[str]:
    """Create the missing monthly partitions from ``now``'s month through ``months_ahead`` more.

    Rows of a new month that already sit in the default partition are moved into
    it. Each new partition gets the per-partition unique indexes the default one
    carries. Returns the names created (none when all exist).
    """
    require_partitioned(model)
    connection = _connection(model)
    quote = connection.ops.quote_name
    table = model._meta.db_table
    key = quote(column_of(model, PARTITION_KEY))
    existing = {p.start for p in list_partitions(model) if not p.is_default}
    now = now or timezone.now()
    created = []
    default = quote(f"{table}_default")
    with transaction.atomic(using=_database(model)), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        local = [
            (name, definition)
            for name, definition, unique, _primary, has_key in _index_defs(cursor, default)
            if unique and not has_key
        ]
        # From the current month on: a month retention dropped is never made again.
        for start in _months(now, months_after(now, months_ahead)):
            if start in existing:
                continue
            name = partition_name(table, start)
            # Out of the default partition first: PostgreSQL refuses a new partition
            # while the default one holds rows of its range.
            cursor.execute(
                f"CREATE TEMP TABLE moved ON COMMIT DROP AS WITH gone AS (DELETE FROM {default} "
                f"WHERE {key} >= %s AND {key} < %s RETURNING *) SELECT * FROM gone",
                [start, next_month(start)],
            )
            _create_partition(cursor, connection, table, start)
            cursor.execute(f"INSERT INTO {quote(name)} SELECT * FROM moved")
            cursor.execute("DROP TABLE moved")
            for original, definition in local:
                cursor.execute(
                    _retarget(definition, name=_local_name(name, original), table=quote(name))
                )
            created.append(name)
    return created


def _apply_related(
    cursor: CursorWrapper, model: type[models.Model], partition: str
) -> dict[str, int]:
    """Do what the dropped foreign keys' ``on_delete`` would for the partition's rows."""
    connection = _connection(model)
    quote = connection.ops.quote_name
    done = {}
    rows = f"SELECT {quote(column_of(model))} FROM {quote(partition)}"
    for fk in _related_fields(model):
        related, column = quote(fk.model._meta.db_table), quote(fk.column)
        if fk.remote_field.on_delete is models.SET_NULL:
            cursor.execute(f"UPDATE {related} SET {column} = NULL WHERE {column} IN ({rows})")
        else:
            cursor.execute(f"DELETE FROM {related} WHERE {column} IN ({rows})")
        done[fk.model._meta.label] = cursor.rowcount
    return done


def drop_expired_partitions(
    model: type[models.Model],
    *,
    expired: models.Q,
    before: datetime,
    group_by: str | None = None,
    archive_rows: Callable[[type[models.Model], models.QuerySet], None] | None = None,
) -> list[DroppedPartition]:
    """Detach and drop every partition ending by ``before`` whose rows all match ``expired``.

    A partition with one row that ``expired`` keeps is left for the batch DELETE
    path, which is what makes per-type retention exact in partially expired months.
    ``archive_rows(model, rows)`` is called with the partition's rows before it goes.
    For the feed model, the users' unread counters drop by the partition's unread
    rows, counted under its lock in the same transaction.
    Counts per ``group_by`` value (or under ``"rows"``). No-op unless partitioned.
    """
    if not is_partitioned(model):
        return []
    connection = _connection(model)
    quote = connection.ops.quote_name
    manager = model._default_manager.using(_database(model))
    dropped = []
    for partition in list_partitions(model):
        if partition.start is None or partition.end is None or partition.end > before:
            continue  # the default partition, or a month not wholly expired
        rows = manager.filter(created_at__gte=partition.start, created_at__lt=partition.end)
        if rows.exclude(expired).exists():
            continue
        with transaction.atomic(using=_database(model)), connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"LOCK TABLE {quote(partition.name)} IN ACCESS EXCLUSIVE MODE")
            if group_by:
                counts = dict(rows.order_by().values_list(group_by).annotate(n=models.Count("pk")))
            else:
                counts = {"rows": rows.count()}
            if archive_rows is not None:
                archive_rows(model, rows)
            related = _apply_related(cursor, model, partition.name)
            if _has_idempotency_keys(model):
                cursor.execute(
                    f"DELETE FROM {quote(_keys_table(model))} "
                    "WHERE created_at >= %s AND created_at < %s",
                    [partition.start, partition.end],
                )
            if model is get_feed_model():
                unread.subtract_table(partition.name, using=_database(model))
            parent = quote(model._meta.db_table)
            cursor.execute(f"ALTER TABLE {parent} DETACH PARTITION {quote(partition.name)}")
            cursor.execute(f"DROP TABLE {quote(partition.name)}")
        dropped.append(DroppedPartition(partition.name, partition.end, counts, related))
    return dropped
