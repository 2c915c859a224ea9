"""QuerySets holding the package's reusable queries, exposed as managers.

Usage::

    Feed = get_feed_model()
    Feed.objects.for_user(request.user).unread()[:20]
    Feed.objects.for_user(request.user).mark_read(ids=[1, 2, 3])
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import models
from django.utils import timezone


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
        ``for_user()`` so nobody can touch another user's items.
        """
        queryset = self.unread()
        if ids is not None:
            queryset = queryset.filter(pk__in=list(ids))
        return queryset.update(is_read=True, read_at=timezone.now())

    def mark_unread(self) -> int:
        """Mark the read items of this queryset unread again; one UPDATE, returns rows changed."""
        return self.read().update(is_read=False, read_at=None)


# Manager classes built once at import (what ``as_manager()`` builds), so type checkers see
# the queryset methods on ``Model.objects``.
EventManager = models.Manager.from_queryset(EventQuerySet)
FeedManager = models.Manager.from_queryset(FeedQuerySet)
