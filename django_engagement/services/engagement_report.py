"""The engagement report's sections, computed with grouped, streamed queries.

Usage::

    from django_engagement import build_engagement_report

    report = build_engagement_report(date(2024, 1, 1), date(2024, 1, 31))
    report["new_users_over_time"]  # [{"date": "2024-01-01", "count": 3}, ...]

    for section in report_sections(start, end):   # what the command streams to files
        if section.table:
            for row in section.rows():
                ...

Every section is a lazy generator over ``.iterator()`` querysets (or one small
grouped query), so a file writer holds one row at a time; only
``build_engagement_report`` materialises the whole report. Keys and file names
follow ``TARGET_LABEL`` / ``TARGET_GROUP_LABEL`` (docs/guide/engagement_report.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from itertools import groupby
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models import Count, F, Max, Q
from django.db.models.functions import TruncDate, TruncWeek
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from ..conf import engagement_settings
from ..models import get_event_model, get_feed_model, get_target_model
from . import analytics

__all__ = ["ReportSection", "build_engagement_report", "period_info", "report_sections"]

CHUNK_SIZE = 5000
TOP_TARGETS = 10
Row = dict[str, Any]


@dataclass(frozen=True)
class ReportSection:
    """One part of the report: a file ``<name>.json|csv`` and a key of the consolidated dict.

    ``rows()`` yields JSON-ready dicts (a table), or for ``table=False`` sections
    returns one dict (``other_metrics``, always written as JSON). ``csv_columns()``
    and ``csv_row()`` give the flat CSV shape of a table.
    """

    name: str
    produce: Callable[[], Iterator[Row] | Row]
    columns: Callable[[], list[str]] | None = None
    flatten: Callable[[Row], Row] | None = None
    table: bool = True

    def rows(self) -> Iterator[Row]:
        """The rows of a table section, streamed from the database."""
        return cast(Iterator[Row], self.produce())

    def data(self) -> Row:
        """The object of a ``table=False`` section."""
        return cast(Row, self.produce())

    def materialise(self) -> list[Row] | Row:
        return list(self.rows()) if self.table else self.data()

    def csv_columns(self) -> list[str]:
        return self.columns() if self.columns else []

    def csv_row(self, row: Row) -> Row:
        return self.flatten(row) if self.flatten else row


class _Report:
    """The period and the settings it was built with; each section is one method.

    Settings are read once here, so a report never mixes two configurations.
    """

    def __init__(self, start: date, end: date) -> None:
        self.period = analytics.DateWindow(start, end)
        self.tz = timezone.get_default_timezone() if settings.USE_TZ else None
        self.db = analytics.read_database()
        self.Event = get_event_model()
        self.Feed = get_feed_model()
        self.User = get_user_model()
        self.Target = get_target_model()
        self.label = engagement_settings.TARGET_LABEL
        self.group_label = engagement_settings.TARGET_GROUP_LABEL
        self.join_event = engagement_settings.JOIN_EVENT
        self.leave_event = engagement_settings.LEAVE_EVENT
        self.date_joined = _datetime_field(self.User, "date_joined")

    def sections(self) -> list[ReportSection]:
        label = self.label
        sections = [
            ReportSection("new_users_over_time", self.new_users, lambda: ["date", "count"]),
        ]
        if self.Target is not None:
            sections.append(ReportSection(f"{label}s", self.targets, lambda: self.target_columns))
        sections += [
            ReportSection(
                "user_activity",
                self.user_activity,
                self.user_activity_columns,
                _flatten_by_type,
            ),
            ReportSection("other_metrics", self.other_metrics, table=False),
            ReportSection("user_activity_timeline", self.timeline, lambda: list(TIMELINE_COLUMNS)),
        ]
        if self.Target is not None:
            sections.append(
                ReportSection(
                    f"user_{label}_participation",
                    self.participation,
                    lambda: ["user_id", f"{label}_id", "joined_at", "left_at", "status"],
                )
            )
        sections.append(
            ReportSection("retention_cohorts", self.cohorts, lambda: list(COHORT_COLUMNS))
        )
        return sections

    # -- helpers -------------------------------------------------------------------------

    def events(self) -> models.QuerySet:
        return analytics.events().filter(self.period.q())

    @property
    def target_model(self) -> type[models.Model]:
        """The target model, for the sections that exist only when one is configured."""
        if self.Target is None:
            raise ImproperlyConfigured("ENGAGEMENT_TARGET_MODEL is not set.")
        return self.Target

    def target_events(self) -> models.QuerySet:
        """Join/leave events pointing at a target (any time; callers add the period)."""
        content_type = ContentType.objects.db_manager(self.db)
        return analytics.events().filter(
            target_content_type=content_type.get_for_model(self.target_model),
            event_type__in=[self.join_event, self.leave_event],
        )

    def target_pk(self, raw: str) -> Any:
        """``target_object_id`` (always text) back to the target's pk, JSON-ready."""
        return analytics.target_json_id(self.Target, raw)

    @property
    def target_columns(self) -> list[str]:
        label, group = self.label, self.group_label
        return [
            f"{label}_id",
            f"{label}_name",
            f"{group}_name",
            "participants",
            "joins_in_period",
            "leaves_in_period",
        ]

    # -- sections ------------------------------------------------------------------------

    def new_users(self) -> Iterator[Row]:
        """Signups per day from ``date_joined``, every day of the period (zeros included)."""
        if self.date_joined is None:
            return
        counts = (
            self.User._default_manager.using(self.db)
            .filter(self.period.q(self.date_joined))
            .annotate(day=TruncDate(self.date_joined, tzinfo=self.tz))
            .values("day")
            .annotate(count=Count("pk"))
            .order_by("day")
            .values_list("day", "count")
            .iterator()
        )
        next_count = next(counts, None)
        for day in self.period.days():
            count = 0
            if next_count is not None and next_count[0] == day:
                count = next_count[1]
                next_count = next(counts, None)
            yield {"date": day.isoformat(), "count": count}

    def targets(self) -> Iterator[Row]:
        """Every target with its current participants and its joins/leaves in the period.

        Joins and leaves come from one grouped query held as a dict keyed by target
        id (bounded by the number of targets), merged into one annotated target query.
        """
        moves = {
            target_id: (joins, leaves)
            for target_id, joins, leaves in self.target_events()
            .filter(self.period.q())
            .values("target_object_id")
            .annotate(
                joins=Count("pk", filter=Q(event_type=self.join_event)),
                leaves=Count("pk", filter=Q(event_type=self.leave_event)),
            )
            .values_list("target_object_id", "joins", "leaves")
            .order_by()
        }
        participants_path = engagement_settings.TARGET_PARTICIPANTS
        group_path = engagement_settings.TARGET_GROUP_FIELD
        annotations: dict[str, Any] = {
            "_name": F(engagement_settings.TARGET_NAME_FIELD),
            "_group": F(group_path) if group_path else models.Value(None, models.CharField()),
        }
        if participants_path:
            annotations["_participants"] = Count(participants_path, distinct=True)
        else:
            annotations["_participants"] = models.Value(None, models.IntegerField())
        rows = (
            self.target_model._default_manager.using(self.db)
            .annotate(**annotations)
            .values_list("pk", "_name", "_group", "_participants")
            .order_by("pk")
            .iterator(chunk_size=CHUNK_SIZE)
        )
        id_key, name_key, group_key, *_ = self.target_columns
        for pk, name, group, participants in rows:
            joins, leaves = moves.get(str(pk), (0, 0))
            yield {
                id_key: analytics.pk_json(pk),
                name_key: name,
                group_key: group,
                "participants": participants,
                "joins_in_period": joins,
                "leaves_in_period": leaves,
            }

    def _feed_in_period(self) -> models.QuerySet:
        return self.Feed._default_manager.using(self.db).filter(self.period.q())

    def user_activity(self) -> Iterator[Row]:
        """Feed items per user in the period, by ``activity_type`` ."""
        username_path = f"user__{self.User.USERNAME_FIELD}"
        email_name = self.User.get_email_field_name()
        email = (
            F(f"user__{email_name}")
            if _has_field(self.User, email_name)
            else models.Value(None, models.CharField())
        )
        rows = (
            self._feed_in_period()
            .values("user_id", "activity_type")
            .annotate(_username=F(username_path), _email=email, count=Count("pk"))
            .order_by("user_id", "activity_type")
            .values_list("user_id", "_username", "_email", "activity_type", "count")
            .iterator(chunk_size=CHUNK_SIZE)
        )
        for (user_id, username, email_value), items in groupby(rows, key=lambda r: r[:3]):
            by_type = {activity_type: count for *_, activity_type, count in items}
            yield {
                "user_id": user_id,
                "username": username,
                "email": email_value,
                "total_items": sum(by_type.values()),
                "by_type": by_type,
            }

    def user_activity_columns(self) -> list[str]:
        """The CSV header: one ``type_<activity_type>`` column per type seen in the period."""
        types = (
            self._feed_in_period()
            .order_by("activity_type")
            .values_list("activity_type", flat=True)
            .distinct()
        )
        return ["user_id", "username", "email", "total_items", *(f"type_{t}" for t in types)]

    def other_metrics(self) -> Row:
        """Events by type, distinct active users and (with a target model) the top targets."""
        by_type = self.events().values("event_type").annotate(count=Count("pk"))
        metrics: Row = {
            "events_by_type": dict(
                analytics.ranked((row["event_type"], row["count"]) for row in by_type)
            ),
            "active_users": self.events().aggregate(n=Count("user", distinct=True))["n"],
        }
        if self.Target is not None:
            metrics[f"top_{self.label}s_by_joins"] = self.top_targets()
        return metrics

    def top_targets(self) -> list[Row]:
        """Most joined targets in the period; ties by id; a deleted target keeps a null name."""
        top = list(
            self.target_events()
            .filter(self.period.q(), event_type=self.join_event)
            .values("target_object_id")
            .annotate(joins=Count("pk"))
            .order_by("-joins", "target_object_id")
            .values_list("target_object_id", "joins")[:TOP_TARGETS]
        )
        pks = {raw: self.target_pk(raw) for raw, _ in top}
        names = {
            str(pk): name
            for pk, name in self.target_model._default_manager.using(self.db)
            .filter(pk__in=list(pks.values()))
            .annotate(_name=F(engagement_settings.TARGET_NAME_FIELD))
            .values_list("pk", "_name")
        }
        return [
            {f"{self.label}_id": pks[raw], self.label: names.get(raw), "joins": joins}
            for raw, joins in top
        ]

    def timeline(self) -> Iterator[Row]:
        """Every event of a signed-in user in the period, oldest first (anonymous ones skipped)."""
        rows = (
            self.events()
            .filter(user__isnull=False)
            .order_by("created_at", "pk")
            .values_list(
                "user_id",
                "created_at",
                "event_type",
                "source",
                "target_content_type__app_label",
                "target_content_type__model",
                "target_object_id",
                "uuid",
            )
            .iterator(chunk_size=CHUNK_SIZE)
        )
        target_models: dict[tuple[str, str], Any] = {}
        for user_id, created_at, event_type, source, app_label, model, target_id, uuid in rows:
            stamp = analytics.iso_timestamp(created_at)
            target_model = None
            if app_label:
                key = (app_label, model)
                if key not in target_models:
                    target_models[key] = ContentType(app_label=app_label, model=model).model_class()
                target_model = target_models[key]
            yield {
                "user_id": user_id,
                "timestamp": stamp,
                "date": stamp[:10] if stamp else None,
                "event_type": event_type,
                "source": source,
                "target_type": f"{app_label}.{model}" if app_label else None,
                "target_id": analytics.target_json_id(target_model, target_id),
                "event_id": str(uuid),
            }

    def participation(self) -> Iterator[Row]:
        """Per user x target whose membership overlaps the period, from its join/leave history.

        History is every join/leave up to the period's end. ``joined_at`` is the last
        join, ``left_at`` the last leave if it is later than that join, ``status`` is
        ``active`` when the last event is a join (a leave wins an exact tie). Listed:
        pairs with a join/leave in the period, or still active at its end.
        """
        period = self.period
        rows = (
            self.target_events()
            .filter(user__isnull=False, created_at__lt=period.end_before)
            .values("user_id", "target_object_id")
            .annotate(
                last_join=Max("created_at", filter=Q(event_type=self.join_event)),
                last_leave=Max("created_at", filter=Q(event_type=self.leave_event)),
                in_period=Count("pk", filter=Q(created_at__gte=period.start_at)),
            )
            .filter(
                Q(in_period__gt=0)
                | Q(last_join__isnull=False, last_leave__isnull=True)
                | Q(last_join__gt=F("last_leave"))
            )
            .order_by("user_id", "target_object_id")
            .values_list("user_id", "target_object_id", "last_join", "last_leave")
            .iterator(chunk_size=CHUNK_SIZE)
        )
        id_key = f"{self.label}_id"
        for user_id, raw_target, last_join, last_leave in rows:
            active = last_join is not None and (last_leave is None or last_join > last_leave)
            yield {
                "user_id": user_id,
                id_key: self.target_pk(raw_target),
                "joined_at": analytics.iso_timestamp(last_join),
                "left_at": None if active else analytics.iso_timestamp(last_leave),
                "status": "active" if active else "left",
            }

    def cohorts(self) -> Iterator[Row]:
        """Weekly signup cohorts (ISO weeks, Monday) of users who joined in the period.

        ``active_users``: members with an event after their signup week (within the
        period); ``avg_activities``: their events in the period per member.
        """
        if self.date_joined is None:
            return
        tz = self.tz
        signup_week = TruncWeek(self.date_joined, output_field=models.DateField(), tzinfo=tz)
        sizes = (
            self.User._default_manager.using(self.db)
            .filter(self.period.q(self.date_joined))
            .annotate(week=signup_week)
            .values("week")
            .annotate(size=Count("pk"))
            .order_by("week")
            .values_list("week", "size")
        )
        member_week = TruncWeek(
            f"user__{self.date_joined}", output_field=models.DateField(), tzinfo=tz
        )
        event_week = TruncWeek("created_at", output_field=models.DateField(), tzinfo=tz)
        activity = {
            week: (events, active)
            for week, events, active in self.events()
            .filter(self.period.q(f"user__{self.date_joined}"))
            .annotate(week=member_week)
            .values("week")
            .annotate(
                events=Count("pk"),
                active=Count("user", distinct=True, filter=GreaterThan(event_week, member_week)),
            )
            .order_by()
            .values_list("week", "events", "active")
        }
        for week, size in sizes:
            events, active = activity.get(week, (0, 0))
            yield {
                "cohort_week": week.isoformat(),
                "cohort_size": size,
                "active_users": active,
                "retention_rate": round(active / size, 4),
                "avg_activities": round(events / size, 2),
            }


TIMELINE_COLUMNS = (
    "user_id",
    "timestamp",
    "date",
    "event_type",
    "source",
    "target_type",
    "target_id",
    "event_id",
)
COHORT_COLUMNS = (
    "cohort_week",
    "cohort_size",
    "active_users",
    "retention_rate",
    "avg_activities",
)


def _has_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


def _datetime_field(model: type[models.Model], name: str) -> str | None:
    """``name`` if the model has it as a DateTimeField (custom user models may not)."""
    if not _has_field(model, name):
        return None
    return name if isinstance(model._meta.get_field(name), models.DateTimeField) else None


def _flatten_by_type(row: Row) -> Row:
    flat = {key: value for key, value in row.items() if key != "by_type"}
    flat.update({f"type_{name}": count for name, count in row["by_type"].items()})
    return flat


def report_sections(start: date, end: date) -> list[ReportSection]:
    """The report's sections over ``[start, end]`` (end inclusive), in file order, unevaluated.

    Raises ``ValueError`` when ``start`` is after ``end``. Sections about targets are
    left out when ``ENGAGEMENT_TARGET_MODEL`` is unset.
    """
    return _Report(start, end).sections()


def build_engagement_report(start: date, end: date) -> dict[str, Any]:
    """The consolidated report over ``[start, end]`` (end inclusive) as one dict.

    Keys: ``period`` and one per section (``new_users_over_time``, ``<target>s``,
    ``user_activity``, ``other_metrics``, ``user_activity_timeline``,
    ``user_<target>_participation``, ``retention_cohorts``). Holds every row in
    memory: write files with ``report_sections`` to stream large periods.
    """
    report: dict[str, Any] = {"period": period_info(start, end)}
    for section in report_sections(start, end):
        report[section.name] = section.materialise()
    return report


def period_info(start: date, end: date) -> Row:
    return {"start": start.isoformat(), "end": end.isoformat(), "time_zone": settings.TIME_ZONE}
