"""A changelist paginator that does not COUNT a whole huge table.

The admin counts the (filtered) changelist on every page view. On an event
table with tens of millions of rows an unfiltered ``COUNT(*)`` is a full scan,
so on PostgreSQL the unfiltered case reads the planner's estimate
(``pg_class.reltuples``) instead, once the table is big enough for the
difference to matter. Filtered querysets and other databases count exactly.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """``Paginator`` whose ``count`` is the planner estimate for big unfiltered tables."""

    # Below this many (estimated) rows an exact count is cheap enough.
    estimate_above = 100_000

    @cached_property
    def count(self) -> int:
        estimate = self._estimated_count()
        if estimate is not None and estimate > self.estimate_above:
            return estimate
        return super().count

    def _estimated_count(self) -> int | None:
        """``reltuples`` of the table when the queryset has no WHERE clause on PostgreSQL."""
        queryset: Any = self.object_list  # a QuerySet when ``query`` exists
        query = getattr(queryset, "query", None)
        if query is None or query.where or query.is_sliced or query.distinct:
            return None
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        # reltuples is -1 until the table is first vacuumed or analyzed.
        if row is None or row[0] is None or row[0] < 0:
            return None
        return int(row[0])
