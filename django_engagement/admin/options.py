"""ModelAdmins for events, activity feed items and daily aggregates.

Built for big tables: related rows are joined (``list_select_related``), the
filter choices never scan the event table, the paginator skips the full
``COUNT(*)`` on PostgreSQL and ``show_full_result_count`` is off, so a
changelist page costs the same few queries at any size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..conf import engagement_settings
from ..managers import FeedQuerySet
from ..models import AbstractActivityFeedItem, AbstractEvent
from ..services.analytics import target_names
from .export import export_events_csv
from .filters import ActivityTypeListFilter, EventTypeListFilter, SourceListFilter
from .paginator import EstimatedCountPaginator


def username_lookup() -> str:
    """``user__<USERNAME_FIELD>``: the user model may be custom."""
    return f"user__{get_user_model().USERNAME_FIELD}"


TARGET_NAME_ATTR = "_engagement_target_name"
# The target column is headed with the host's word for it ("course"), read when shown.
target_column_header = lazy(lambda: str(engagement_settings.TARGET_LABEL), str)()


def attach_target_names(rows: Sequence[AbstractEvent | AbstractActivityFeedItem]) -> None:
    """Give each row its target's name (``TARGET_NAME_FIELD`` for the target model, else
    ``str()``): one query per target model on the page, never one per row."""
    ids: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        if row.target_content_type_id is not None:
            ids[row.target_content_type_id].append(row.target_object_id)
    names = {
        type_id: target_names(ContentType.objects.get_for_id(type_id), object_ids)
        for type_id, object_ids in ids.items()
    }
    for row in rows:
        type_id = row.target_content_type_id
        name = None if type_id is None else names.get(type_id, {}).get(row.target_object_id)
        setattr(row, TARGET_NAME_ATTR, name)


class TargetNamesChangeList(ChangeList):
    """A changelist whose page rows carry their targets' names (``attach_target_names``)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Evaluating the page here caches it: the template iterates the same queryset.
        attach_target_names(list(self.result_list))


class BigTableAdmin(admin.ModelAdmin):
    """Shared changelist settings for the append-heavy tables."""

    date_hierarchy = "created_at"
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return TargetNamesChangeList

    @admin.display(description=target_column_header, ordering="target_content_type")
    def target_display(self, obj: AbstractEvent | AbstractActivityFeedItem) -> str:
        """The target's name, loaded for the whole page by ``TargetNamesChangeList``.

        ``<model verbose name> #<id>`` when the target is gone (or the row was not
        listed through the changelist); no query per row either way.
        """
        if obj.target_content_type_id is None:
            return "-"
        name = getattr(obj, TARGET_NAME_ATTR, None)
        if name is not None:
            return name
        content_type = obj.target_content_type
        return f"{content_type.name if content_type else '?'} #{obj.target_object_id}"

    @admin.display(description=_("target"))
    def target_link(self, obj: AbstractEvent | AbstractActivityFeedItem) -> str:
        """The target itself on the detail page, linked to its admin page when it has one."""
        target = obj.target
        if target is None:
            return "-"
        opts = target._meta
        try:
            url = reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
                args=[target.pk],
            )
        except NoReverseMatch:
            return str(target)
        return format_html('<a href="{}">{}</a>', url, target)


class EventAdmin(BigTableAdmin):
    """Events are append-only: viewable, exportable and deletable, never added or edited."""

    list_display = (
        "created_at",
        "event_type",
        "user",
        "anonymous_id",
        "source",
        "target_display",
        "ip_address",
    )
    list_filter = (
        EventTypeListFilter,
        SourceListFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("user", "target_content_type")
    actions = ("export_csv",)
    fieldsets = (
        (None, {"fields": ("uuid", "event_type", "source", "created_at", "received_at")}),
        (_("Who"), {"fields": ("user", "anonymous_id", "ip_address", "user_agent")}),
        (_("Target"), {"fields": ("target_content_type", "target_object_id", "target_link")}),
        (_("Content"), {"fields": ("title", "description", "data", "idempotency_key")}),
    )
    readonly_fields = (
        "uuid",
        "event_type",
        "source",
        "created_at",
        "received_at",
        "user",
        "anonymous_id",
        "ip_address",
        "user_agent",
        "target_content_type",
        "target_object_id",
        "target_link",
        "title",
        "description",
        "data",
        "idempotency_key",
    )

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return ("=event_type", "=anonymous_id", f"^{username_lookup()}")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.action(description=_("Export selected events as CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return export_events_csv(queryset)


class ActivityFeedItemAdmin(BigTableAdmin):
    """Feed items, with bulk read/unread actions (one UPDATE each)."""

    list_display = (
        "created_at",
        "user",
        "activity_type_display",
        "title",
        "target_display",
        "is_read",
        "read_at",
    )
    list_filter = (
        "is_read",
        ActivityTypeListFilter,
        ("created_at", admin.DateFieldListFilter),
    )
    list_select_related = ("user", "target_content_type")
    raw_id_fields = ("user", "event")
    readonly_fields = ("read_at", "target_link")
    actions = ("mark_read", "mark_unread")
    fieldsets = (
        (None, {"fields": ("user", "activity_type", "title", "description", "data")}),
        (_("State"), {"fields": ("is_read", "read_at", "created_at")}),
        (_("Source"), {"fields": ("event", "target_content_type", "target_object_id")}),
        (_("Target"), {"fields": ("target_link",)}),
    )

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        return ("title", "=activity_type", f"^{username_lookup()}")

    @admin.display(description=_("activity type"), ordering="activity_type")
    def activity_type_display(self, obj: AbstractActivityFeedItem) -> str:
        """The type's label from ``ACTIVITY_TYPES`` ("Joined course"), not its code."""
        return obj.activity_type_display

    @admin.action(description=_("Mark selected items as read"), permissions=["change"])
    def mark_read(self, request: HttpRequest, queryset: FeedQuerySet) -> None:
        self._report(request, queryset.mark_read(), _("read"))

    @admin.action(description=_("Mark selected items as unread"), permissions=["change"])
    def mark_unread(self, request: HttpRequest, queryset: FeedQuerySet) -> None:
        updated = queryset.mark_unread()
        self._report(request, updated, _("unread"))

    def _report(self, request: HttpRequest, count: int, state: Any) -> None:
        message = ngettext(
            "%(count)d item marked as %(state)s.",
            "%(count)d items marked as %(state)s.",
            count,
        ) % {"count": count, "state": state}
        self.message_user(request, message, messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the package writes (aggregates, stored reports): listed, never added or edited."""

    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class EventAggregateDailyAdmin(ReadOnlyAdmin):
    """Read-only view of the rows ``aggregate_events_daily`` writes."""

    date_hierarchy = "date"
    list_display = (
        "date",
        "event_type",
        "source",
        "count",
        "unique_users",
        "unique_anonymous",
        "updated_at",
    )
    list_filter = ("event_type", SourceListFilter, "date")
    search_fields = ("=event_type",)


class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "activity_type", "in_feed", "email", "updated_at"]
    list_filter = ["in_feed", "email"]
    search_fields = ["activity_type"]
    raw_id_fields = ["user"]


class TargetMuteAdmin(admin.ModelAdmin):
    list_display = ["user", "target_content_type", "target_object_id", "until", "created_at"]
    raw_id_fields = ["user"]


class FeedEmailAdmin(admin.ModelAdmin):
    """The email outbox, read-only: rows are written by fan-out and by the senders."""

    list_display = ["item", "user", "frequency", "created_at", "claimed_at", "sent_at"]
    list_filter = ["frequency"]
    raw_id_fields = ["item", "user"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class EventDayTotalAdmin(ReadOnlyAdmin):
    """Read-only view of the day-wide totals ``aggregate_events_daily`` writes."""

    date_hierarchy = "date"
    list_display = ("date", "count", "unique_users", "unique_anonymous", "updated_at")


class ReportAdmin(ReadOnlyAdmin):
    """Stored reports, read-only: ``generate_reports``, the API and the tasks write them.

    Deleting a row is allowed; the same request then generates the report afresh.
    """

    date_hierarchy = "created"
    list_display = ("title", "report_type", "period_start", "period_end", "status", "created")
    list_filter = ("report_type", "status")
    search_fields = ("title",)
    raw_id_fields = ("created_by",)
    exclude = ("parameters_key",)


class EventPeriodAggregateAdmin(ReadOnlyAdmin):
    """Read-only view of the hour, ISO week and month rows ``aggregate_period`` writes."""

    date_hierarchy = "start"
    list_display = (
        "period",
        "start",
        "event_type",
        "source",
        "count",
        "unique_users",
        "unique_anonymous",
        "updated_at",
    )
    list_filter = ("period", "event_type", SourceListFilter)
    search_fields = ("=event_type",)


class EventPeriodTotalAdmin(ReadOnlyAdmin):
    """Read-only view of the period-wide totals ``aggregate_period`` writes."""

    date_hierarchy = "start"
    list_display = ("period", "start", "end", "count", "unique_users", "unique_anonymous")
    list_filter = ("period",)
