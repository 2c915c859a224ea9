"""Changelist filters whose choices come from settings or the small aggregate table.

Django's default filter for a plain CharField runs ``SELECT DISTINCT`` over the
whole table on every changelist view; on the event table that is a full scan,
so these filters list their choices from cheaper places.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from ..conf import engagement_settings
from ..models import EventAggregateDaily
from ..models.base import activity_type_label


def distinct_types(queryset: QuerySet) -> set[str]:
    return set(queryset.order_by().values_list("event_type", flat=True).distinct())


class ValueListFilter(admin.SimpleListFilter):
    """Filter ``field_name == value`` for a value chosen from ``lookups()``."""

    field_name = ""

    def queryset(self, request: Any, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(**{self.field_name: value})


class EventTypeListFilter(ValueListFilter):
    """Event types from ``EVENT_TYPES``, else from the daily aggregates, else from events."""

    title = _("event type")
    parameter_name = field_name = "event_type"

    def lookups(self, request: Any, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        types = engagement_settings.EVENT_TYPES or distinct_types(EventAggregateDaily.objects.all())
        if not types:
            # Nothing aggregated yet: the event table is young, so scanning it is cheap.
            types = distinct_types(model_admin.model._default_manager.all())
        return [(event_type, event_type) for event_type in sorted(types)]


class SourceListFilter(ValueListFilter):
    """The allowed ``SOURCES``."""

    title = _("source")
    parameter_name = field_name = "source"

    def lookups(self, request: Any, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(source, source) for source in engagement_settings.SOURCES]


class ActivityTypeListFilter(ValueListFilter):
    """Activity types known from ``ACTIVITY_TYPES`` and ``FEED_RETENTION``, with labels."""

    title = _("activity type")
    parameter_name = field_name = "activity_type"

    def lookups(self, request: Any, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        codes = sorted({*engagement_settings.ACTIVITY_TYPES, *engagement_settings.FEED_RETENTION})
        return [(code, activity_type_label(code)) for code in codes]
