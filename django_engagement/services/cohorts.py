"""Product analytics on the analytics core: scopes, period comparison, active users,
weekly retention cohorts and funnels.

Usage::

    from django_engagement.services import analytics, cohorts

    window = analytics.DateWindow.last_days(30)
    scope = cohorts.Scope(group="North")               # or Scope(target=12), or Scope()
    cohorts.previous_window(window)                    # the 30 days before
    cohorts.active_users(window.end, scope)            # {"dau", "wau", "mau"}
    cohorts.retention_weeks(window, scope)             # weekly cohorts of new users
    cohorts.funnel(window, ["signup", "purchase"], scope)

Every function is set-based and runs a fixed number of queries whatever the length
of the window (listed in each docstring), on ``READ_DATABASE`` like the rest of the
core. Days are calendar days of ``TIME_ZONE`` (``analytics.DateWindow``); weeks are
ISO weeks (Monday to Sunday) of ``TIME_ZONE``. Only signed-in users count as users;
anonymous ids are counted apart.

Whole aggregated days are read from the daily aggregates when the scope is the whole
site (``Scope()``); the aggregates are not kept per target, so a scoped read counts raw
events.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db.models import (
    Count,
    DateField,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import NullIf, TruncDate, TruncWeek
from django.utils import timezone

from ..conf import engagement_settings
from ..models import EventDayTotal, get_feed_model, get_target_model
from . import analytics
from .analytics import DateWindow

__all__ = [
    "MAX_FUNNEL_STEPS",
    "MIN_FUNNEL_STEPS",
    "Scope",
    "active_users",
    "compare",
    "daily_actives",
    "daily_counts",
    "daily_feed_items",
    "funnel",
    "period_visitors",
    "previous_window",
    "retention_weeks",
    "scoped_top_targets",
    "scoped_top_users",
    "week_start",
]

MIN_FUNNEL_STEPS = 2
MAX_FUNNEL_STEPS = 5
WAU_DAYS = 7
MAU_DAYS = 30


def _tz() -> Any:
    return timezone.get_default_timezone() if settings.USE_TZ else None


def _local_date(moment: datetime) -> date:
    if settings.USE_TZ and timezone.is_aware(moment):
        return timezone.localtime(moment, timezone.get_default_timezone()).date()
    return moment.date()


def week_start(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def previous_window(window: DateWindow) -> DateWindow:
    """The window of the same length that ends the day before ``window`` starts."""
    length = (window.end - window.start).days + 1
    end = window.start - timedelta(days=1)
    return DateWindow(end - timedelta(days=length - 1), end)


# -- scope ---------------------------------------------------------------------------------


def _target_model() -> type[Model]:
    model = get_target_model()
    if model is None:  # Scope() checks it; this narrows the type
        raise ValueError("Scoping needs ENGAGEMENT_TARGET_MODEL.")
    return model


@dataclass(frozen=True)
class Scope:
    """Which events count: all (``Scope()``), one target of ``ENGAGEMENT_TARGET_MODEL``
    (``target`` is its pk) or the targets of one group (``TARGET_GROUP_FIELD`` equal to
    ``group``). Raises ``ValueError`` for both at once, or without a target model."""

    target: Any = None
    group: str | None = None

    def __post_init__(self) -> None:
        if self.target is not None and self.group is not None:
            raise ValueError("Scope takes a target or a group, not both.")
        if not self.is_all and get_target_model() is None:
            raise ValueError("Scoping needs ENGAGEMENT_TARGET_MODEL.")
        if self.group is not None and not engagement_settings.TARGET_GROUP_FIELD:
            raise ValueError("A group scope needs ENGAGEMENT['TARGET_GROUP_FIELD'].")

    @property
    def is_all(self) -> bool:
        return self.target is None and self.group is None

    def content_type(self) -> ContentType:
        return ContentType.objects.db_manager(analytics.read_database()).get_for_model(
            _target_model()
        )

    def group_target_ids(self) -> list[str]:
        """The group's target pks as ``target_object_id`` stores them (``str(pk)``): one
        query. Read in Python, not as a subquery: a database's text cast of a UUID key
        need not match ``str(uuid)`` (SQLite keeps 32 hex digits)."""
        model = _target_model()
        return [
            str(pk)
            for pk in model._default_manager.using(analytics.read_database())
            .filter(**{engagement_settings.TARGET_GROUP_FIELD: self.group})
            .order_by("pk")
            .values_list("pk", flat=True)
        ]

    def q(self) -> Q:
        """The scope as a filter on events or feed items (both point at their target);
        built once per scope, so a group's targets are read once."""
        return self._q

    @cached_property
    def _q(self) -> Q:
        if self.is_all:
            return Q()
        type_q = Q(target_content_type_id=self.content_type().pk)
        if self.target is not None:
            return type_q & Q(target_object_id=str(self.target))
        return type_q & Q(target_object_id__in=self.group_target_ids())


def parse_target(value: str) -> Any:
    """``value`` as a pk of the target model, or ``ValueError``."""
    model = get_target_model()
    if model is None:
        raise ValueError("There is no target model (ENGAGEMENT_TARGET_MODEL).")
    try:
        return model._meta.pk.to_python(value)
    except ValidationError:
        raise ValueError(f"{value!r} is not a {model._meta.verbose_name} id.") from None


def _events(scope: Scope) -> QuerySet:
    events = analytics.events()
    return events if scope.is_all else events.filter(scope.q())


# -- per day -------------------------------------------------------------------------------


def daily_counts(window: DateWindow, scope: Scope) -> dict[date, Counter[str]]:
    """Events per day x event type: ``analytics.daily_type_counts`` for the whole site
    (at most three queries, aggregates first), one grouped query on raw events when scoped."""
    if scope.is_all:
        return analytics.daily_type_counts(window)
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    for row in (
        _events(scope)
        .filter(window.q())
        .annotate(day=TruncDate("created_at", tzinfo=_tz()))
        .values("day", "event_type")
        .annotate(count=Count("pk"))
    ):
        per_day[row["day"]][row["event_type"]] += row["count"]
    return per_day


def daily_actives(window: DateWindow, scope: Scope) -> dict[date, tuple[int, int]]:
    """``{day: (distinct users, distinct anonymous ids)}`` for the days with any.

    For the whole site the days aggregated after they ended come from ``EventDayTotal``
    (one query) and the others from one grouped query on raw events; a scoped read is
    that one raw query.
    """
    result: dict[date, tuple[int, int]] = {}
    raw: Q | None = window.q()
    if scope.is_all:
        aggregated: set[date] = set()
        stored = (
            EventDayTotal._default_manager.using(analytics.read_database())
            .filter(date__gte=window.start, date__lte=window.end)
            .values_list("date", "updated_at", "unique_users", "unique_anonymous")
        )
        for day, updated_at, users, anonymous in stored:
            if updated_at >= DateWindow.single(day).end_before:  # final: stored after the day
                result[day] = (users, anonymous)
                aggregated.add(day)
        # The core's one cut of a window into runs of days not aggregated yet.
        raw = analytics._raw_days(window, aggregated)
    if raw is None:
        return result
    for row in (
        _events(scope)
        .filter(raw)
        .annotate(day=TruncDate("created_at", tzinfo=_tz()))
        .values("day")
        .annotate(
            users=Count("user", distinct=True),
            anonymous=Count(NullIf("anonymous_id", Value("")), distinct=True),
        )
    ):
        result[row["day"]] = (row["users"], row["anonymous"])
    return result


def daily_feed_items(window: DateWindow, scope: Scope) -> Counter[date]:
    """Feed items created per day (one grouped query)."""
    items = get_feed_model()._default_manager.using(analytics.read_database()).order_by()
    if not scope.is_all:
        items = items.filter(scope.q())
    return Counter(
        {
            row["day"]: row["count"]
            for row in items.filter(window.q())
            .annotate(day=TruncDate("created_at", tzinfo=_tz()))
            .values("day")
            .annotate(count=Count("pk"))
        }
    )


# -- periods -------------------------------------------------------------------------------


def period_visitors(windows: Sequence[DateWindow], scope: Scope) -> list[tuple[int, int]]:
    """Distinct users and distinct anonymous ids of each window: one query for all of them
    (distinct counts cannot be summed over days, so this reads raw events)."""
    aggregates: dict[str, Any] = {}
    for index, window in enumerate(windows):
        aggregates[f"u{index}"] = Count("user", distinct=True, filter=window.q())
        aggregates[f"a{index}"] = Count(
            NullIf("anonymous_id", Value("")), distinct=True, filter=window.q()
        )
    start = min(window.start for window in windows)
    end = max(window.end for window in windows)
    row = _events(scope).filter(DateWindow(start, end).q()).aggregate(**aggregates)
    return [(row[f"u{index}"], row[f"a{index}"]) for index in range(len(windows))]


def compare(current: int, previous: int) -> dict[str, Any]:
    """A KPI against the previous period: the values, the difference and the change in
    percent (one decimal; None when the previous value is 0)."""
    percent = round((current - previous) * 100 / previous, 1) if previous else None
    return {
        "value": current,
        "previous": previous,
        "change": current - previous,
        "percent": percent,
    }


def active_users(day: date, scope: Scope) -> dict[str, int]:
    """Distinct signed-in users on ``day`` (DAU), in the 7 days (WAU) and in the 30 days
    (MAU) ending with it: one query."""
    windows = {
        "dau": DateWindow.single(day),
        "wau": DateWindow(day - timedelta(days=WAU_DAYS - 1), day),
        "mau": DateWindow(day - timedelta(days=MAU_DAYS - 1), day),
    }
    row = (
        _events(scope)
        .filter(windows["mau"].q(), user__isnull=False)
        .aggregate(
            **{
                key: Count("user", distinct=True, filter=window.q())
                for key, window in windows.items()
            }
        )
    )
    return {key: row[key] for key in windows}


# -- retention -----------------------------------------------------------------------------


def retention_weeks(window: DateWindow, scope: Scope) -> dict[str, Any]:
    """Weekly cohorts of the users first seen in the ISO weeks that ``window`` touches.

    A user's cohort is the week of their first event ever (within the scope); ``active``
    counts, for each week from the cohort's on, how many of its users had an event
    then (week 0 is the cohort's size). The last week may be cut short by the window's
    end. Two queries: first events per user, then distinct (user, week) pairs of the
    cohorts' users (bounded by users x weeks, never by events)::

        {"weeks": ["2026-01-05", ...],
         "cohorts": [{"week": "2026-01-05", "users": 12, "active": [12, 7, 4]}, ...]}
    """
    first_week = week_start(window.start)
    span = DateWindow(first_week, window.end)
    firsts = (
        _events(scope)
        .filter(user__isnull=False, created_at__lt=span.end_before)
        .values("user_id")
        .annotate(first=Min("created_at"))
        .filter(first__gte=span.start_at)
        .values_list("user_id", "first")
    )
    cohort_of = {user_id: week_start(_local_date(first)) for user_id, first in firsts}
    weeks = []
    week = first_week
    while week <= window.end:
        weeks.append(week)
        week += timedelta(days=7)
    active: dict[date, Counter[int]] = defaultdict(Counter)
    if cohort_of:
        pairs = (
            _events(scope)
            .filter(span.q(), user_id__in=firsts.values("user_id"))
            .annotate(week=TruncWeek("created_at", output_field=DateField(), tzinfo=_tz()))
            .values_list("user_id", "week")
            .distinct()
        )
        for user_id, active_week in pairs:
            cohort = cohort_of.get(user_id)
            if cohort is not None:
                active[cohort][(active_week - cohort).days // 7] += 1
    cohorts = []
    for index, week in enumerate(weeks):
        counts = active.get(week, Counter())
        cohorts.append(
            {
                "week": week.isoformat(),
                "users": counts[0],
                "active": [counts[offset] for offset in range(len(weeks) - index)],
            }
        )
    return {"weeks": [week.isoformat() for week in weeks], "cohorts": cohorts}


# -- funnel --------------------------------------------------------------------------------


def funnel(window: DateWindow, steps: Sequence[str], scope: Scope) -> list[dict[str, Any]]:
    """Users who did ``steps[0]``, then ``steps[1]`` after it, ... within ``window``.

    A user reaches step k when they have an event of type ``steps[k]`` later than the
    one that reached step k-1 (the first such event each time, which is the best
    choice for every later step). One query: correlated subqueries on the
    (user, created_at) index, from the users who did the first step. Raises
    ``ValueError`` unless there are 2 to 5 steps::

        [{"event_type": "signup", "users": 40}, {"event_type": "purchase", "users": 12}]
    """
    if not MIN_FUNNEL_STEPS <= len(steps) <= MAX_FUNNEL_STEPS:
        raise ValueError(
            f"A funnel has {MIN_FUNNEL_STEPS} to {MAX_FUNNEL_STEPS} steps, got {len(steps)}."
        )
    in_window = _events(scope).filter(window.q(), user__isnull=False)
    User = get_user_model()
    users = User._default_manager.db_manager(analytics.read_database()).filter(
        pk__in=in_window.filter(event_type=steps[0]).values("user_id")
    )
    annotations: dict[str, Any] = {}
    for index, step in enumerate(steps):
        reached = in_window.filter(user_id=OuterRef("pk"), event_type=step)
        if index:
            reached = reached.filter(created_at__gt=OuterRef(f"_step{index - 1}"))
        annotations[f"_step{index}"] = Subquery(
            reached.order_by("created_at").values("created_at")[:1]
        )
    users = users.annotate(**annotations)
    counts = users.aggregate(**{f"n{index}": Count(f"_step{index}") for index in range(len(steps))})
    return [{"event_type": step, "users": counts[f"n{index}"]} for index, step in enumerate(steps)]


# -- rankings ------------------------------------------------------------------------------


def scoped_top_users(window: DateWindow, limit: int, scope: Scope) -> list[dict[str, Any]]:
    """``analytics.top_users`` within ``scope`` (two queries)."""
    return analytics.top_users(window, limit, among=None if scope.is_all else _events(scope))


def scoped_top_targets(window: DateWindow, limit: int, scope: Scope) -> list[dict[str, Any]]:
    """``analytics.top_targets`` within ``scope``: the scope's targets by joins (two queries)."""
    if scope.is_all:
        return analytics.top_targets(window, limit)
    content_type = scope.content_type()
    rows = list(
        _events(scope)
        .filter(window.q(), event_type=engagement_settings.JOIN_EVENT)
        .values("target_object_id")
        .annotate(count=Count("pk"))
        .order_by("-count", "target_object_id")[:limit]
    )
    names = analytics.target_names(content_type, [row["target_object_id"] for row in rows])
    model = content_type.model_class()
    return [
        {
            "target_type": analytics.target_type(content_type),
            "target_id": analytics.target_json_id(model, row["target_object_id"]),
            "name": names.get(row["target_object_id"]),
            "count": row["count"],
        }
        for row in rows
    ]
