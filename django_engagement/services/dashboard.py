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
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..conf import engagement_settings
from ..models import get_feed_model
from ..models.base import event_type_label
from . import analytics, cache, cohorts

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


# -- the admin page (Dashboard 2.0) --------------------------------------------------------

# KPI tiles of the admin page, in order.
KPI_KEYS = ("events", "unique_users", "unique_anonymous", "feed_items", "joins", "leaves")


def build_admin_dashboard(
    window: analytics.DateWindow,
    scope: cohorts.Scope | None = None,
    funnel_steps: Sequence[str] = (),
) -> dict[str, Any]:
    """Everything the admin dashboard draws for ``window`` within ``scope``.

    Each KPI comes with its value in the previous window of the same length and a
    per-day series (its sparkline); unique users per day, DAU/WAU/MAU at the window's
    end and the stickiness (average DAU of the 30 days ending then, over MAU); weekly
    retention cohorts; the funnel of ``funnel_steps`` (none when empty). A fixed number
    of queries whatever the length of the window (about twenty)::

        {"start", "end", "days", "previous": {"start", "end"},
         "kpis": {"events": {"value", "previous", "change", "percent", "series": [..]}, ..},
         "events_per_day": [{"date", "count"}], "daily_users": [{"date", "users", "anonymous"}],
         "active_users": {"dau", "wau", "mau", "dau_average", "stickiness"},
         "events_by_type": [{"event_type", "label", "count"}],
         "joins_leaves_per_day": [{"date", "joins", "leaves"}],
         "retention": {"weeks", "cohorts"}, "funnel": [{"event_type", "label", "users"}],
         "top_users": [...], "top_targets": [...]}
    """
    scope = scope or cohorts.Scope()
    previous = cohorts.previous_window(window)
    both = analytics.DateWindow(previous.start, window.end)
    month_start = window.end - timedelta(days=cohorts.MAU_DAYS - 1)
    actives_window = analytics.DateWindow(min(window.start, month_start), window.end)
    join_event, leave_event = engagement_settings.JOIN_EVENT, engagement_settings.LEAVE_EVENT

    per_day = cohorts.daily_counts(both, scope)
    feed_per_day = cohorts.daily_feed_items(both, scope)
    actives = cohorts.daily_actives(actives_window, scope)
    (users, anonymous), (previous_users, previous_anonymous) = cohorts.period_visitors(
        [window, previous], scope
    )
    days = list(window.days())
    empty: Counter[str] = Counter()

    def total(span: analytics.DateWindow, key: str | None = None) -> int:
        counts = (per_day.get(day, empty) for day in span.days())
        return sum(c.total() if key is None else c[key] for c in counts)

    series = {
        "events": [per_day.get(day, empty).total() for day in days],
        "unique_users": [actives.get(day, (0, 0))[0] for day in days],
        "unique_anonymous": [actives.get(day, (0, 0))[1] for day in days],
        "feed_items": [feed_per_day[day] for day in days],
        "joins": [per_day.get(day, empty)[join_event] for day in days],
        "leaves": [per_day.get(day, empty)[leave_event] for day in days],
    }
    values = {
        "events": (total(window), total(previous)),
        "unique_users": (users, previous_users),
        "unique_anonymous": (anonymous, previous_anonymous),
        "feed_items": (
            sum(feed_per_day[day] for day in window.days()),
            sum(feed_per_day[day] for day in previous.days()),
        ),
        "joins": (total(window, join_event), total(previous, join_event)),
        "leaves": (total(window, leave_event), total(previous, leave_event)),
    }
    by_type: Counter[str] = sum((per_day.get(day, empty) for day in days), Counter())
    active = cohorts.active_users(window.end, scope)
    month_days = list(analytics.DateWindow(month_start, window.end).days())
    dau_average = round(sum(actives.get(day, (0, 0))[0] for day in month_days) / len(month_days), 1)
    return {
        "days": len(days),
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "previous": {"start": previous.start.isoformat(), "end": previous.end.isoformat()},
        "kpis": {key: {**cohorts.compare(*values[key]), "series": series[key]} for key in KPI_KEYS},
        "events_per_day": [
            {"date": day.isoformat(), "count": count}
            for day, count in zip(days, series["events"], strict=True)
        ],
        "daily_users": [
            {
                "date": day.isoformat(),
                "users": actives.get(day, (0, 0))[0],
                "anonymous": actives.get(day, (0, 0))[1],
            }
            for day in days
        ],
        "active_users": {
            **active,
            "dau_average": dau_average,
            "stickiness": round(dau_average / active["mau"], 3) if active["mau"] else None,
        },
        "events_by_type": [
            {"event_type": event_type, "label": event_type_label(event_type), "count": count}
            for event_type, count in analytics.ranked(by_type)
        ],
        "joins_leaves_per_day": [
            {"date": day.isoformat(), "joins": joins, "leaves": leaves}
            for day, joins, leaves in zip(days, series["joins"], series["leaves"], strict=True)
        ],
        "retention": cohorts.retention_weeks(window, scope),
        "funnel": [
            {**step, "label": event_type_label(step["event_type"])}
            for step in cohorts.funnel(window, funnel_steps, scope)
        ]
        if funnel_steps
        else [],
        "top_users": cohorts.scoped_top_users(window, TOP_LIMIT, scope),
        "top_targets": cohorts.scoped_top_targets(window, TOP_LIMIT, scope),
    }


# The charts of the admin page that download as CSV (``?download=<name>``).
CSV_CHARTS = (
    "kpis",
    "events_per_day",
    "daily_users",
    "active_users",
    "events_by_type",
    "joins_leaves_per_day",
    "retention",
    "funnel",
    "top_users",
    "top_targets",
)


def chart_csv(data: dict[str, Any], chart: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one chart of ``build_admin_dashboard(...)`` for a CSV file.

    Raises ``ValueError`` for a name not in ``CSV_CHARTS``.
    """
    if chart == "kpis":
        header = ["metric", "value", "previous", "change", "percent"]
        rows = [
            [key, kpi["value"], kpi["previous"], kpi["change"], kpi["percent"]]
            for key, kpi in data["kpis"].items()
        ]
    elif chart == "events_per_day":
        header, rows = ["date", "events"], [[r["date"], r["count"]] for r in data[chart]]
    elif chart == "daily_users":
        header = ["date", "users", "anonymous"]
        rows = [[r["date"], r["users"], r["anonymous"]] for r in data[chart]]
    elif chart == "active_users":
        header = ["date", "dau", "wau", "mau", "dau_average", "stickiness"]
        active = data[chart]
        rows = [[data["end"], *(active[key] for key in header[1:])]]
    elif chart == "events_by_type":
        header = ["event_type", "label", "events"]
        rows = [[r["event_type"], r["label"], r["count"]] for r in data[chart]]
    elif chart == "joins_leaves_per_day":
        header = ["date", "joins", "leaves"]
        rows = [[r["date"], r["joins"], r["leaves"]] for r in data[chart]]
    elif chart == "retention":
        weeks = len(data[chart]["weeks"])
        header = ["cohort_week", "users", *(f"week_{n}" for n in range(weeks))]
        rows = [
            [c["week"], c["users"], *c["active"], *[""] * (weeks - len(c["active"]))]
            for c in data[chart]["cohorts"]
        ]
    elif chart == "funnel":
        header = ["step", "event_type", "label", "users"]
        rows = [[n, r["event_type"], r["label"], r["users"]] for n, r in enumerate(data[chart], 1)]
    elif chart == "top_users":
        header = ["user_id", "username", "events"]
        rows = [[r["user_id"], r["username"], r["count"]] for r in data[chart]]
    elif chart == "top_targets":
        header = ["target_type", "target_id", "name", "joins"]
        rows = [[r["target_type"], r["target_id"], r["name"], r["count"]] for r in data[chart]]
    else:
        raise ValueError(f"Unknown chart {chart!r}; one of: {', '.join(CSV_CHARTS)}.")
    return header, rows
