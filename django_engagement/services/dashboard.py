"""Data behind the engagement dashboard: the admin page and ``reports/dashboard/``.

Usage::

    from django_engagement.services.dashboard import build_dashboard

    data = build_dashboard(30)
    data["totals"]["events"], data["events_per_day"][-1]

Returned shape (public API, keep it stable)::

    {
        "days": 7,
        "start": "2025-03-01",            # first day of the window (inclusive)
        "end": "2025-03-07",              # today in the project TIME_ZONE (inclusive)
        "totals": {"events", "unique_users", "unique_anonymous", "feed_items", "joins", "leaves"},
        "events_per_day": [{"date": "2025-03-01", "count": 0}, ...],      # every day
        "events_by_type": [{"event_type": "login", "count": 12}, ...],    # count desc
        "joins_leaves_per_day": [{"date": "...", "joins": 1, "leaves": 0}, ...],  # every day
        "top_users": [{"user_id": 1, "username": "alice", "count": 9}, ...],      # top 10
        "top_targets": [{"target_type": "hub.fast", "target_id": "12",
                         "name": "Great Lent", "count": 4}, ...],                # top 10
    }

Every number comes from a grouped query, so the cost is a fixed number of
queries whatever the window or the data: six on events and feed items, plus
one per content type among the top targets to fetch their names in bulk (one
in the usual setup with ``ENGAGEMENT_TARGET_MODEL``; none when nothing joined).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from ..conf import engagement_settings
from ..models import get_event_model, get_feed_model, get_target_model

# The windows offered by the admin page's selector.
DAY_CHOICES = (7, 30, 90, 365)
DEFAULT_DAYS = 7
# Longest window build_dashboard accepts: one row per day is sent to the browser.
MAX_DAYS = 365
TOP_LIMIT = 10


def dashboard_window(days: int, tz: tzinfo | None = None) -> tuple[date, date]:
    """First and last calendar day (both inclusive) of a ``days``-day window ending today."""
    end = timezone.localdate(timezone=tz or timezone.get_default_timezone())
    return end - timedelta(days=days - 1), end


def build_dashboard(days: int) -> dict[str, Any]:
    """Totals and chart series of the last ``days`` calendar days, today included.

    Days are calendar days in the project ``TIME_ZONE``. Joins and leaves are
    events of type ``JOIN_EVENT`` / ``LEAVE_EVENT``. Raises ``ValueError`` when
    ``days`` is not an integer between 1 and ``MAX_DAYS``.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer between 1 and {MAX_DAYS}, got {days!r}.")
    tz = timezone.get_default_timezone()
    start, end = dashboard_window(days, tz)
    start_at = datetime.combine(start, time.min, tzinfo=tz)
    end_at = datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz)
    join_event, leave_event = engagement_settings.JOIN_EVENT, engagement_settings.LEAVE_EVENT

    events = get_event_model()._default_manager.between(start_at, end_at).order_by()

    per_day = {
        row["day"]: row
        for row in events.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day")
        .annotate(
            count=Count("pk"),
            joins=Count("pk", filter=Q(event_type=join_event)),
            leaves=Count("pk", filter=Q(event_type=leave_event)),
        )
    }
    calendar = [start + timedelta(days=offset) for offset in range(days)]
    events_per_day = []
    joins_leaves_per_day = []
    for day in calendar:
        row = per_day.get(day, {"count": 0, "joins": 0, "leaves": 0})
        events_per_day.append({"date": day.isoformat(), "count": row["count"]})
        joins_leaves_per_day.append(
            {"date": day.isoformat(), "joins": row["joins"], "leaves": row["leaves"]}
        )

    uniques = events.aggregate(
        unique_users=Count("user", distinct=True),
        unique_anonymous=Count("anonymous_id", distinct=True, filter=~Q(anonymous_id="")),
    )
    feed_items = (
        get_feed_model()
        ._default_manager.filter(created_at__gte=start_at, created_at__lt=end_at)
        .count()
    )
    totals = {
        "events": sum(row["count"] for row in events_per_day),
        "unique_users": uniques["unique_users"],
        "unique_anonymous": uniques["unique_anonymous"],
        "feed_items": feed_items,
        "joins": sum(row["joins"] for row in joins_leaves_per_day),
        "leaves": sum(row["leaves"] for row in joins_leaves_per_day),
    }

    events_by_type = list(
        events.values("event_type").annotate(count=Count("pk")).order_by("-count", "event_type")
    )

    username_field = get_user_model().USERNAME_FIELD
    top_users = list(
        events.filter(user__isnull=False)
        .values("user_id")
        .annotate(username=F(f"user__{username_field}"), count=Count("pk"))
        .order_by("-count", "user_id")[:TOP_LIMIT]
    )

    return {
        "days": days,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "totals": totals,
        "events_per_day": events_per_day,
        "events_by_type": events_by_type,
        "joins_leaves_per_day": joins_leaves_per_day,
        "top_users": [
            {"user_id": row["user_id"], "username": str(row["username"]), "count": row["count"]}
            for row in top_users
        ],
        "top_targets": _top_targets(events.filter(event_type=join_event)),
    }


def _top_targets(joins) -> list[dict[str, Any]]:
    """The ``TOP_LIMIT`` targets with most joins, with names fetched per content type."""
    rows = list(
        joins.filter(target_content_type__isnull=False)
        .values(
            "target_content_type_id",
            "target_object_id",
            app_label=F("target_content_type__app_label"),
            model_name=F("target_content_type__model"),
        )
        .annotate(count=Count("pk"))
        .order_by("-count", "target_content_type_id", "target_object_id")[:TOP_LIMIT]
    )
    ids_by_type: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        ids_by_type.setdefault((row["app_label"], row["model_name"]), []).append(
            row["target_object_id"]
        )
    names = {
        (key, object_id): name
        for key, object_ids in ids_by_type.items()
        for object_id, name in _target_names(*key, object_ids).items()
    }
    return [
        {
            "target_type": f"{row['app_label']}.{row['model_name']}",
            "target_id": row["target_object_id"],
            "name": names.get(((row["app_label"], row["model_name"]), row["target_object_id"])),
            "count": row["count"],
        }
        for row in rows
    ]


def _target_names(app_label: str, model_name: str, object_ids: list[str]) -> dict[str, str]:
    """``{str(pk): name}`` in one query: ``TARGET_NAME_FIELD`` for the target model, else str().

    Ids that no longer exist (or whose model was uninstalled) are missing from the result.
    """
    try:
        model = apps.get_model(app_label, model_name)
    except LookupError:
        return {}
    pk_field = model._meta.pk
    pks = []
    for object_id in object_ids:
        try:
            pks.append(pk_field.to_python(object_id))
        except ValidationError:  # a malformed stored id names no row
            continue
    if not pks:
        return {}
    manager = model._default_manager
    name_field = engagement_settings.TARGET_NAME_FIELD
    if name_field and model is get_target_model():
        return {
            str(pk): str(name)
            for pk, name in manager.filter(pk__in=pks).values_list("pk", name_field)
        }
    return {str(pk): str(obj) for pk, obj in manager.in_bulk(pks).items()}
