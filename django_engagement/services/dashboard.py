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
queries whatever the window or the data: six grouped queries on events and
feed items, then, for the ten top users and targets only, one query for the
usernames, one for the content types and one per content type for the target
names (one in the usual setup with ``ENGAGEMENT_TARGET_MODEL``). At most 18,
usually 9; 6 on an empty window.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta, tzinfo
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from ..conf import engagement_settings
from ..models import get_event_model, get_feed_model, get_target_model
from .aggregation import day_bounds
from .reading import read_manager

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
    start_at, end_at = day_bounds(start)[0], day_bounds(end)[1]
    join_event, leave_event = engagement_settings.JOIN_EVENT, engagement_settings.LEAVE_EVENT

    events = read_manager(get_event_model()).between(start_at, end_at).order_by()

    # One pass gives the per-day series, the joins/leaves series and the by-type
    # counts: rows are days x event types, small whatever the number of events.
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    by_type: Counter[str] = Counter()
    for row in (
        events.annotate(day=TruncDate("created_at", tzinfo=tz))
        .values("day", "event_type")
        .annotate(count=Count("pk"))
    ):
        per_day[row["day"]][row["event_type"]] += row["count"]
        by_type[row["event_type"]] += row["count"]
    calendar = [start + timedelta(days=offset) for offset in range(days)]
    events_per_day = [{"date": day.isoformat(), "count": per_day[day].total()} for day in calendar]
    joins_leaves_per_day = [
        {
            "date": day.isoformat(),
            "joins": per_day[day][join_event],
            "leaves": per_day[day][leave_event],
        }
        for day in calendar
    ]

    # COUNT(*) over a DISTINCT subquery: PostgreSQL runs it as a parallel hash
    # aggregate, where COUNT(DISTINCT ...) sorts the whole window in one process.
    totals = {
        "events": sum(by_type.values()),
        "unique_users": events.filter(user__isnull=False).values("user_id").distinct().count(),
        "unique_anonymous": events.exclude(anonymous_id="")
        .values("anonymous_id")
        .distinct()
        .count(),
        "feed_items": read_manager(get_feed_model())
        .filter(created_at__gte=start_at, created_at__lt=end_at)
        .count(),
        "joins": by_type[join_event],
        "leaves": by_type[leave_event],
    }

    return {
        "days": days,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "totals": totals,
        "events_per_day": events_per_day,
        "events_by_type": [
            {"event_type": event_type, "count": count}
            for event_type, count in sorted(by_type.items(), key=lambda item: (-item[1], item[0]))
        ],
        "joins_leaves_per_day": joins_leaves_per_day,
        "top_users": _top_users(events),
        "top_targets": _top_targets(events.filter(event_type=join_event)),
    }


def _top_users(events) -> list[dict[str, Any]]:
    """The ``TOP_LIMIT`` users with most events; usernames fetched for those ten only.

    Grouping first and joining the user table afterwards keeps the big scan
    free of a join.
    """
    rows = list(
        events.filter(user__isnull=False)
        .values("user_id")
        .annotate(count=Count("pk"))
        .order_by("-count", "user_id")[:TOP_LIMIT]
    )
    if not rows:
        return []
    User = get_user_model()
    usernames = dict(
        read_manager(User)
        .filter(pk__in=[row["user_id"] for row in rows])
        .values_list("pk", User.USERNAME_FIELD)
    )
    return [
        {
            "user_id": row["user_id"],
            "username": str(usernames.get(row["user_id"], "")),
            "count": row["count"],
        }
        for row in rows
    ]


def _top_targets(joins) -> list[dict[str, Any]]:
    """The ``TOP_LIMIT`` targets with most joins, with names fetched per content type.

    No ``IS NOT NULL`` filter and no content type join in the grouped query:
    either one steers PostgreSQL away from the (event_type, created_at) index.
    The target-less group, if ranked, is dropped afterwards instead.
    """
    rows = [
        row
        for row in joins.values("target_content_type_id", "target_object_id")
        .annotate(count=Count("pk"))
        .order_by("-count", "target_content_type_id", "target_object_id")[: TOP_LIMIT + 1]
        if row["target_content_type_id"] is not None
    ][:TOP_LIMIT]
    if not rows:
        return []
    content_types = ContentType.objects.in_bulk({row["target_content_type_id"] for row in rows})
    ids_by_type: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        ids_by_type[row["target_content_type_id"]].append(row["target_object_id"])
    names = {
        (type_id, object_id): name
        for type_id, object_ids in ids_by_type.items()
        for object_id, name in target_names(content_types[type_id], object_ids).items()
    }
    return [
        {
            "target_type": "{0.app_label}.{0.model}".format(
                content_types[row["target_content_type_id"]]
            ),
            "target_id": row["target_object_id"],
            "name": names.get((row["target_content_type_id"], row["target_object_id"])),
            "count": row["count"],
        }
        for row in rows
    ]


def target_names(content_type: ContentType, object_ids: list[str]) -> dict[str, str]:
    """``{str(pk): name}`` in one query: ``TARGET_NAME_FIELD`` for the target model, else str().

    Ids that no longer exist (or whose model was uninstalled) are missing from the result.
    """
    model = content_type.model_class()
    if model is None:
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
    manager = read_manager(model)
    name_field = engagement_settings.TARGET_NAME_FIELD
    if name_field and model is get_target_model():
        return {
            str(pk): str(name)
            for pk, name in manager.filter(pk__in=pks).values_list("pk", name_field)
        }
    return {str(pk): str(obj) for pk, obj in manager.in_bulk(pks).items()}
