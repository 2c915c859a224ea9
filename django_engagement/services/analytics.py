"""The analytics core: date windows, target vocabulary and grouped metric queries.

Usage::

    from django_engagement.services import analytics

    window = analytics.DateWindow.last_days(30)
    per_day = analytics.daily_type_counts(window)   # {date: Counter({"login": 3, ...})}
    analytics.day_totals(date(2026, 1, 4))          # {"count", "unique_users", "unique_anonymous"}

``services.reports``, ``services.dashboard`` and ``services.engagement_report`` call
these instead of cutting days, counting and ranking themselves, so ``reports/*``,
``reports/dashboard/``, the admin dashboard and ``engagement_report`` agree.
Whole days that ``aggregate_daily`` stored after they ended are read from the daily
aggregates, other days from raw events, with the same numbers either way; window-wide
numbers (``type_counts``, ``unique_visitors``) read the coarsest period that answers
them: whole aggregated months, then ISO weeks, then days, then raw events. Every read
goes to ``READ_DATABASE`` (``None``: the database router's choice).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import NullIf, TruncDate
from django.utils import timezone

from ..conf import engagement_settings
from ..models import (
    EventAggregateDaily,
    EventDayTotal,
    EventPeriodAggregate,
    EventPeriodTotal,
    Period,
    get_event_model,
    get_target_model,
)
from .aggregation import day_bounds, period_days, today

__all__ = [
    "DateWindow",
    "check_day",
    "day_totals",
    "daily_type_counts",
    "events",
    "iso_timestamp",
    "pk_json",
    "ranked",
    "period_totals",
    "read_database",
    "signups_per_day",
    "target_json_id",
    "target_names",
    "target_type",
    "top_targets",
    "top_users",
    "type_counts",
    "unique_visitors",
    "users_joined_before",
]

K = TypeVar("K", bound=Hashable)
TOTALS = ("count", "unique_users", "unique_anonymous")


# -- where and when ------------------------------------------------------------------------


def read_database() -> str | None:
    """The alias analytic reads use: ``READ_DATABASE``, or None for the router's choice."""
    return engagement_settings.READ_DATABASE or None


def events() -> QuerySet:
    """All events, read from ``READ_DATABASE``."""
    return get_event_model()._default_manager.using(read_database()).order_by()


def check_day(day: date) -> date:
    """``day`` if both of its bounds in TIME_ZONE exist as datetimes, else ``ValueError``.

    9999-12-31 has no next midnight and a day near 0001-01-01 cannot be compared in UTC.
    """
    try:
        for bound in day_bounds(day):
            if bound.tzinfo is not None:
                bound.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{day.isoformat()} is outside the supported calendar.") from None
    return day


@dataclass(frozen=True)
class DateWindow:
    """Calendar days ``start..end`` (both inclusive) of ``TIME_ZONE``.

    Raises ``ValueError`` when ``start`` is after ``end`` or a day is outside the
    supported calendar. Bounds are local midnights, so DST days last 23 or 25 hours.
    """

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        check_day(self.start)
        check_day(self.end)

    @classmethod
    def single(cls, day: date) -> DateWindow:
        return cls(day, day)

    @classmethod
    def last_days(cls, days: int) -> DateWindow:
        """The ``days`` calendar days ending today."""
        end = today()
        return cls(end - timedelta(days=days - 1), end)

    @property
    def start_at(self) -> datetime:
        return day_bounds(self.start)[0]

    @property
    def end_before(self) -> datetime:
        return day_bounds(self.end)[1]

    def q(self, field: str = "created_at") -> Q:
        """``field`` within the window (half-open)."""
        return Q(**{f"{field}__gte": self.start_at, f"{field}__lt": self.end_before})

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)


def pk_json(value: Any) -> Any:
    """A primary key as JSON: int keys stay numbers, others (UUID, text) become strings."""
    return value if isinstance(value, int) else str(value)


def iso_timestamp(moment: datetime | None) -> str | None:
    """The package's one timestamp format, the way DRF renders a ``DateTimeField``.

    ISO 8601 in the current time zone (``TIME_ZONE`` unless the host activated
    another), ``Z`` for UTC, microseconds only when there are any; naive when
    ``USE_TZ`` is off. The same text as the API's other timestamps, without DRF.
    """
    if moment is None:
        return None
    if settings.USE_TZ:
        if timezone.is_aware(moment):
            moment = timezone.localtime(moment)
        else:
            moment = timezone.make_aware(moment)
    elif timezone.is_aware(moment):
        moment = timezone.make_naive(moment, UTC)
    text = moment.isoformat()
    return f"{text[:-6]}Z" if text.endswith("+00:00") else text


def ranked(counts: dict[K, int] | Iterable[tuple[K, int]]) -> list[tuple[K, int]]:
    """The one order of ranked lists: count descending, then key ascending."""
    items = counts.items() if isinstance(counts, dict) else counts
    return sorted(items, key=lambda item: (-item[1], item[0]))


# -- targets -------------------------------------------------------------------------------


def target_type(content_type: ContentType) -> str:
    """``app_label.model``, the way reports name a target's model."""
    return f"{content_type.app_label}.{content_type.model}"


def target_json_id(target: type[models.Model] | ContentType | None, object_id: str | None) -> Any:
    """A stored ``target_object_id`` (text) as JSON of the target pk's type.

    ``target`` is the target's model or its content type. Int keys become numbers,
    UUID and text keys strings; an id of an uninstalled model (or one its key cannot
    parse) stays the stored text, and no id is None.
    """
    if not object_id:
        return None
    model = target.model_class() if isinstance(target, ContentType) else target
    if model is None:
        return object_id
    try:
        return pk_json(model._meta.pk.to_python(object_id))
    except ValidationError:
        return object_id


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
    manager = model._default_manager.db_manager(read_database())
    name_field = engagement_settings.TARGET_NAME_FIELD
    if name_field and model is get_target_model():
        return {
            str(pk): str(name)
            for pk, name in manager.filter(pk__in=pks).values_list("pk", name_field)
        }
    return {str(pk): str(obj) for pk, obj in manager.in_bulk(pks).items()}


# -- metrics -------------------------------------------------------------------------------

_TOTAL_EXPRESSIONS = {
    "count": Count("pk"),
    "unique_users": Count("user", distinct=True),
    "unique_anonymous": Count(NullIf("anonymous_id", Value("")), distinct=True),
}


def _whole_aggregated_days(window: DateWindow) -> set[date]:
    """Days of ``window`` aggregated after they ended (their stored rows are final)."""
    rows = (
        EventDayTotal._default_manager.using(read_database())
        .filter(date__gte=window.start, date__lte=window.end)
        .values_list("date", "updated_at")
    )
    return {day for day, updated_at in rows if updated_at >= day_bounds(day)[1]}


def _raw_days(window: DateWindow, aggregated: set[date]) -> Q | None:
    """``created_at`` ranges of the days of ``window`` not in ``aggregated`` (one range per
    run of consecutive days), or None when every day is aggregated."""
    runs: list[DateWindow] = []
    for day in window.days():
        if day in aggregated:
            continue
        if runs and runs[-1].end == day - timedelta(days=1):
            runs[-1] = DateWindow(runs[-1].start, day)
        else:
            runs.append(DateWindow.single(day))
    return reduce(or_, (run.q() for run in runs)) if runs else None


def daily_type_counts(window: DateWindow) -> dict[date, Counter[str]]:
    """Events per day x event type over ``window``: at most three grouped queries
    whatever its length (which days are aggregated, their stored rows, raw events of
    the others)."""
    aggregated = _whole_aggregated_days(window)
    per_day: dict[date, Counter[str]] = defaultdict(Counter)
    if aggregated:
        for row in (
            EventAggregateDaily._default_manager.using(read_database())
            .filter(date__in=aggregated)
            .order_by()
            .values("date", "event_type")
            .annotate(count=Sum("count"))
        ):
            per_day[row["date"]][row["event_type"]] += row["count"]
    raw = _raw_days(window, aggregated)
    if raw is not None:
        tz = timezone.get_default_timezone() if settings.USE_TZ else None
        for row in (
            events()
            .filter(raw)
            .annotate(day=TruncDate("created_at", tzinfo=tz))
            .values("day", "event_type")
            .annotate(count=Count("pk"))
        ):
            per_day[row["day"]][row["event_type"]] += row["count"]
    return per_day


def day_totals(day: date) -> dict[str, int]:
    """Events, distinct users and distinct non-empty anonymous ids of ``day``: the stored
    ``EventDayTotal`` for a whole aggregated day (one query), else raw events (two)."""
    window = DateWindow.single(day)
    stored = (
        EventDayTotal._default_manager.using(read_database())
        .filter(date=day, updated_at__gte=window.end_before)
        .values(*TOTALS)
        .first()
    )
    if stored is not None:
        return stored
    return events().filter(window.q()).aggregate(**_TOTAL_EXPRESSIONS)


def unique_visitors(window: DateWindow) -> tuple[int, int]:
    """Distinct signed-in users and distinct non-empty anonymous ids over ``window``.

    Distinct counts cannot be summed over days, so a window longer than one day reads
    raw events, unless it is exactly one whole aggregated ISO week or month. COUNT(*)
    over a DISTINCT subquery: PostgreSQL runs it as a parallel hash aggregate, where
    COUNT(DISTINCT ...) sorts in one process.
    """
    if window.start == window.end:
        totals = day_totals(window.start)
        return totals["unique_users"], totals["unique_anonymous"]
    stored = period_totals(window)
    if stored is not None:
        return stored["unique_users"], stored["unique_anonymous"]
    in_window = events().filter(window.q())
    users = in_window.filter(user__isnull=False).values("user_id").distinct().count()
    anonymous = in_window.exclude(anonymous_id="").values("anonymous_id").distinct().count()
    return users, anonymous


def top_users(
    window: DateWindow, limit: int, *, among: QuerySet | None = None
) -> list[dict[str, Any]]:
    """The ``limit`` users with most events (ranked), usernames fetched for those only.

    ``among`` narrows the events (a scope: one target, one group). Grouping first and
    joining the user table afterwards keeps the big scan free of a join.
    """
    rows = list(
        (events() if among is None else among)
        .filter(window.q(), user__isnull=False)
        .values("user_id")
        .annotate(count=Count("pk"))
        .order_by("-count", "user_id")[:limit]
    )
    if not rows:
        return []
    User = get_user_model()
    usernames = dict(
        User._default_manager.db_manager(read_database())
        .filter(pk__in=[row["user_id"] for row in rows])
        .values_list("pk", User.USERNAME_FIELD)
    )
    return [
        {
            "user_id": pk_json(row["user_id"]),
            "username": str(usernames.get(row["user_id"], "")),
            "count": row["count"],
        }
        for row in rows
    ]


def top_targets(window: DateWindow, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` targets with most ``JOIN_EVENT`` events (ranked), with names.

    No ``IS NOT NULL`` filter and no content type join in the grouped query: either
    one steers PostgreSQL away from the (event_type, created_at) index. The
    target-less group, if ranked, is dropped afterwards instead.
    """
    rows = [
        row
        for row in events()
        .filter(window.q(), event_type=engagement_settings.JOIN_EVENT)
        .values("target_content_type_id", "target_object_id")
        .annotate(count=Count("pk"))
        .order_by("-count", "target_content_type_id", "target_object_id")[: limit + 1]
        if row["target_content_type_id"] is not None
    ][:limit]
    if not rows:
        return []
    content_types = ContentType.objects.db_manager(read_database()).in_bulk(
        {row["target_content_type_id"] for row in rows}
    )
    ids_by_type: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        ids_by_type[row["target_content_type_id"]].append(row["target_object_id"])
    names = {
        (type_id, object_id): name
        for type_id, object_ids in ids_by_type.items()
        for object_id, name in target_names(content_types[type_id], object_ids).items()
    }
    result = []
    for row in rows:
        content_type = content_types[row["target_content_type_id"]]
        result.append(
            {
                "target_type": target_type(content_type),
                "target_id": target_json_id(content_type, row["target_object_id"]),
                "name": names.get((content_type.pk, row["target_object_id"])),
                "count": row["count"],
            }
        )
    return result


# -- periods: the coarsest aggregate that answers ------------------------------------------


def _local_date(moment: datetime) -> date:
    if settings.USE_TZ:
        return timezone.localtime(moment, timezone.get_default_timezone()).date()
    return moment.date()


def _whole_aggregated_periods(window: DateWindow) -> dict[str, list[DateWindow]]:
    """Weeks and months inside ``window`` aggregated after they ended, as day spans by
    period (one query)."""
    found: dict[str, list[DateWindow]] = {Period.MONTH: [], Period.WEEK: []}
    rows = (
        EventPeriodTotal._default_manager.using(read_database())
        .filter(
            period__in=list(found),
            start__gte=window.start_at,
            end__lte=window.end_before,
            updated_at__gte=F("end"),
        )
        .order_by("start")
        .values_list("period", "start")
    )
    for period, start in rows:
        first, last = period_days(period, _local_date(start))
        found[period].append(DateWindow(first, last))
    return found


def period_cover(window: DateWindow) -> tuple[dict[str, list[DateWindow]], set[date]]:
    """How ``window`` is answered: the whole aggregated months it holds, then the whole
    aggregated ISO weeks outside those months, and the days they cover (the rest is left
    to ``daily_type_counts``' days-or-raw rule). One query."""
    stored = _whole_aggregated_periods(window)
    covered: set[date] = set()
    chosen: dict[str, list[DateWindow]] = {Period.MONTH: [], Period.WEEK: []}
    for period in (Period.MONTH, Period.WEEK):
        for span in stored[period]:
            days = set(span.days())
            if days & covered:
                continue
            chosen[period].append(span)
            covered |= days
    return chosen, covered


def type_counts(window: DateWindow) -> Counter[str]:
    """Events per event type over the whole ``window``, from the coarsest aggregates that
    answer it: whole aggregated months, ISO weeks, days, then raw events for the rest.

    At most five queries whatever the window: the aggregated weeks and months, their
    rows, the aggregated days, their rows, the raw rest. Same numbers as counting raw
    events, as long as the aggregates were written after their periods ended.
    """
    chosen, covered = period_cover(window)
    counts: Counter[str] = Counter()
    periods = Q()
    for period, spans in chosen.items():
        if spans:
            periods |= Q(period=period, start__in=[span.start_at for span in spans])
    if covered:
        for event_type, count in (
            EventPeriodAggregate._default_manager.using(read_database())
            .filter(periods)
            .order_by()
            .values("event_type")
            .annotate(count=Sum("count"))
            .values_list("event_type", "count")
        ):
            counts[event_type] += count
    days = _whole_aggregated_days(window) - covered
    if days:
        for event_type, count in (
            EventAggregateDaily._default_manager.using(read_database())
            .filter(date__in=days)
            .order_by()
            .values("event_type")
            .annotate(count=Sum("count"))
            .values_list("event_type", "count")
        ):
            counts[event_type] += count
    raw = _raw_days(window, days | covered)
    if raw is not None:
        for event_type, count in (
            events()
            .filter(raw)
            .values("event_type")
            .annotate(count=Count("pk"))
            .values_list("event_type", "count")
        ):
            counts[event_type] += count
    return counts


def period_totals(window: DateWindow) -> dict[str, int] | None:
    """The stored totals (``count``, ``unique_users``, ``unique_anonymous``) when
    ``window`` is exactly one whole aggregated ISO week or month, else None (one query)."""
    for period in (Period.WEEK, Period.MONTH):
        if period_days(period, window.start) == (window.start, window.end):
            return (
                EventPeriodTotal._default_manager.using(read_database())
                .filter(period=period, start=window.start_at, updated_at__gte=F("end"))
                .values(*TOTALS)
                .first()
            )
    return None


# -- users ---------------------------------------------------------------------------------


def user_joined_field() -> str | None:
    """``date_joined`` when the user model has it as a DateTimeField (custom ones may not)."""
    User = get_user_model()
    try:
        field = User._meta.get_field("date_joined")
    except FieldDoesNotExist:
        return None
    return "date_joined" if isinstance(field, models.DateTimeField) else None


def signups_per_day(window: DateWindow) -> dict[date, int]:
    """New users per calendar day of ``window`` (by ``date_joined``; days without signups
    are missing), one grouped query. Empty when the user model has no ``date_joined``."""
    joined = user_joined_field()
    if joined is None:
        return {}
    tz = timezone.get_default_timezone() if settings.USE_TZ else None
    User = get_user_model()
    return dict(
        User._default_manager.using(read_database())
        .filter(window.q(joined))
        .annotate(day=TruncDate(joined, tzinfo=tz))
        .order_by()
        .values("day")
        .annotate(count=Count("pk"))
        .values_list("day", "count")
    )


def users_joined_before(day: date) -> int:
    """Users who joined before ``day`` began (local midnight), one count; 0 without
    ``date_joined``."""
    joined = user_joined_field()
    if joined is None:
        return 0
    User = get_user_model()
    return (
        User._default_manager.using(read_database())
        .filter(**{f"{joined}__lt": day_bounds(day)[0]})
        .count()
    )
