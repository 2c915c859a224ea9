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
        "top_targets": [{"target_type": "courses.course", "target_id": 12,
                         "name": "Algebra", "count": 4}, ...],                   # top 10
    }

A thin caller of ``services.analytics``: per-day counts come from the daily
aggregates for whole aggregated days and from raw events otherwise; ranked lists
are count descending, then key; ``target_id`` has the target pk's JSON type. The
cost is a fixed number of queries whatever the window or the data: the aggregated
days, their rows, raw per-day groups, two distinct counts, feed items, top users
and top targets, then, for the ten top users and targets only, one query for the
usernames, one for the content types and one per content type for the target
names (one in the usual setup with ``ENGAGEMENT_TARGET_MODEL``). Results are cached
(``services.cache``, ``CACHE_TIMEOUT``): a warm call costs no query.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..conf import engagement_settings
from ..models import get_feed_model
from . import analytics, cache

# The windows offered by the admin page's selector.
DAY_CHOICES = (7, 30, 90, 365)
DEFAULT_DAYS = 7
# Longest window build_dashboard accepts: one row per day is sent to the browser.
MAX_DAYS = 365
TOP_LIMIT = 10


def _dashboard_days(days: int, *args: Any, **kwargs: Any) -> analytics.DateWindow:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer between 1 and {MAX_DAYS}, got {days!r}.")
    return analytics.DateWindow.last_days(days)


@cache.cached("dashboard", days=_dashboard_days)
def build_dashboard(days: int) -> dict[str, Any]:
    """Totals and chart series of the last ``days`` calendar days, today included.

    Days are calendar days in the project ``TIME_ZONE``. Joins and leaves are
    events of type ``JOIN_EVENT`` / ``LEAVE_EVENT``. Raises ``ValueError`` when
    ``days`` is not an integer between 1 and ``MAX_DAYS``.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be an integer between 1 and {MAX_DAYS}, got {days!r}.")
    window = analytics.DateWindow.last_days(days)
    join_event, leave_event = engagement_settings.JOIN_EVENT, engagement_settings.LEAVE_EVENT

    per_day = analytics.daily_type_counts(window)
    by_type: Counter[str] = sum(per_day.values(), Counter())
    unique_users, unique_anonymous = analytics.unique_visitors(window)
    feed_items = (
        get_feed_model()
        ._default_manager.using(analytics.read_database())
        .filter(window.q())
        .count()
    )
    return {
        "days": days,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "totals": {
            "events": by_type.total(),
            "unique_users": unique_users,
            "unique_anonymous": unique_anonymous,
            "feed_items": feed_items,
            "joins": by_type[join_event],
            "leaves": by_type[leave_event],
        },
        "events_per_day": [
            {"date": day.isoformat(), "count": per_day[day].total()} for day in window.days()
        ],
        "events_by_type": [
            {"event_type": event_type, "count": count}
            for event_type, count in analytics.ranked(by_type)
        ],
        "joins_leaves_per_day": [
            {
                "date": day.isoformat(),
                "joins": per_day[day][join_event],
                "leaves": per_day[day][leave_event],
            }
            for day in window.days()
        ],
        "top_users": analytics.top_users(window, TOP_LIMIT),
        "top_targets": analytics.top_targets(window, TOP_LIMIT),
    }
