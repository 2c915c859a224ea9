"""Read-only analytics a host calls from Python: thin over ``services.analytics``.

Usage::

    from datetime import date, timedelta
    from django_engagement import selectors

    selectors.active_users(date(2026, 1, 1), date(2026, 1, 31))
    selectors.user_growth(date(2026, 1, 1), date(2026, 3, 31), period="month")
    selectors.top_targets(date(2026, 1, 1), date(2026, 1, 31), limit=5)
    selectors.events_by_type(date(2026, 1, 1), date(2026, 1, 31))
    selectors.stickiness(date(2026, 1, 31))
    selectors.retention_cohorts(date(2026, 1, 1), date(2026, 1, 31))
    selectors.funnel(date(2026, 1, 1), date(2026, 1, 31), ["signup", "purchase"])

``start`` and ``end`` are calendar days of ``TIME_ZONE``, both inclusive; a ``start``
after ``end`` or a day outside the calendar raises ``ValueError``. Numbers are the ones
the reports and the dashboard show (the same core, aggregates where they answer, raw
events otherwise); reads go to ``READ_DATABASE``. Nothing here writes.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any

from ..models import Period
from . import analytics, cohorts
from .aggregation import period_days

__all__ = [
    "GROWTH_PERIODS",
    "active_users",
    "events_by_type",
    "funnel",
    "retention_cohorts",
    "stickiness",
    "top_targets",
    "user_growth",
]

GROWTH_PERIODS = (Period.DAY, Period.WEEK, Period.MONTH)
MAX_LIMIT = 1000


def active_users(start: date, end: date) -> dict[str, Any]:
    """Distinct signed-in users and distinct anonymous ids with an event in the window.

    ``{"start", "end", "unique_users", "unique_anonymous", "total_active"}``.
    """
    window = analytics.DateWindow(start, end)
    users, anonymous = analytics.unique_visitors(window)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "unique_users": users,
        "unique_anonymous": anonymous,
        "total_active": users + anonymous,
    }


def user_growth(start: date, end: date, period: str = "day") -> list[dict[str, Any]]:
    """New users per ``period`` (``"day"``, ``"week"``: ISO weeks, ``"month"``) of the
    window, with the running total of all users at the end of each period.

    ``[{"period_start": "2026-01-05", "new_users": 3, "cumulative": 42}, ...]``, every
    period that overlaps the window (zeros included; the first and last are cut to the
    window). Two queries. Users are counted by ``date_joined``: a user model without it
    gives zeros.
    """
    if period not in GROWTH_PERIODS:
        raise ValueError(f"period must be one of {', '.join(GROWTH_PERIODS)}, got {period!r}.")
    window = analytics.DateWindow(start, end)
    per_period: Counter[date] = Counter()
    for day, count in analytics.signups_per_day(window).items():
        per_period[period_days(period, day)[0]] += count
    total = analytics.users_joined_before(start)
    rows = []
    first = period_days(period, start)[0]
    while first <= end:
        total += per_period[first]
        rows.append(
            {
                "period_start": max(first, start).isoformat(),
                "new_users": per_period[first],
                "cumulative": total,
            }
        )
        first = period_days(period, first)[1] + timedelta(days=1)
    return rows


def top_targets(start: date, end: date, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` targets with most joins (``JOIN_EVENT``) in the window, ranked, with
    names: ``[{"target_type", "target_id", "name", "count"}, ...]``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer between 1 and {MAX_LIMIT}, got {limit!r}.")
    return analytics.top_targets(analytics.DateWindow(start, end), limit)


def events_by_type(start: date, end: date) -> dict[str, int]:
    """Events per event type in the window, count descending then type (an ordered dict),
    read from the coarsest aggregates that answer it."""
    return dict(analytics.ranked(analytics.type_counts(analytics.DateWindow(start, end))))


def stickiness(day: date) -> dict[str, Any]:
    """DAU, WAU and MAU (distinct signed-in users on ``day``, in the 7 and the 30 days
    ending with it) and DAU/MAU as a ratio (``None`` without monthly users). One query."""
    actives = cohorts.active_users(analytics.check_day(day), cohorts.Scope())
    ratio = round(actives["dau"] / actives["mau"], 4) if actives["mau"] else None
    return {"date": day.isoformat(), **actives, "dau_mau": ratio}


def retention_cohorts(start: date, end: date) -> dict[str, Any]:
    """Weekly cohorts (the ISO week of each user's first event) of the weeks the window
    touches, with how many of each cohort were active in each later week; the shape the
    admin dashboard's heatmap draws. Two queries."""
    return cohorts.retention_weeks(analytics.DateWindow(start, end), cohorts.Scope())


def funnel(start: date, end: date, steps: list[str]) -> list[dict[str, Any]]:
    """Users who did ``steps[0]``, then ``steps[1]`` later, ... within the window (2 to 5
    event types; ``ValueError`` otherwise): ``[{"event_type", "users"}, ...]``."""
    return cohorts.funnel(analytics.DateWindow(start, end), steps, cohorts.Scope())
