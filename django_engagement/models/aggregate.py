from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AggregateCounts(models.Model):
    """What every aggregate row holds: its events, distinct users and anonymous ids."""

    count = models.PositiveIntegerField(_("events"), default=0)
    unique_users = models.PositiveIntegerField(_("unique users"), default=0)
    unique_anonymous = models.PositiveIntegerField(_("unique anonymous ids"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class EventAggregateDaily(AggregateCounts):
    """Events per day x event type x source, written by ``aggregate_daily``.

    ``date`` is a calendar day in the project's ``TIME_ZONE``. The unique key
    lets re-runs replace rows instead of adding new ones.
    """

    date = models.DateField(_("date"))
    event_type = models.CharField(_("event type"), max_length=64)
    source = models.CharField(_("source"), max_length=16)

    class Meta:
        ordering = ["-date", "event_type", "source"]
        verbose_name = _("daily event aggregate")
        verbose_name_plural = _("daily event aggregates")
        constraints = [
            models.UniqueConstraint(
                fields=["date", "event_type", "source"], name="django_engagement_aggregate_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.date} {self.event_type}/{self.source}: {self.count}"


class EventDayTotal(AggregateCounts):
    """Day-wide totals of one calendar day, written by ``aggregate_daily`` beside the
    per-type rows of ``EventAggregateDaily``.

    Distinct users and anonymous ids of a whole day cannot be summed from per-type
    rows (one user has many types), so they live here, in their own table: summing
    ``EventAggregateDaily.count`` over a day stays equal to that day's events. A row
    also marks its day as aggregated.
    """

    date = models.DateField(_("date"), unique=True)

    class Meta:
        ordering = ["-date"]
        verbose_name = _("daily event total")
        verbose_name_plural = _("daily event totals")

    def __str__(self) -> str:
        return f"{self.date}: {self.count}"


class Period(models.TextChoices):
    """The periods aggregation cuts time into, all in ``TIME_ZONE``.

    ``day`` rows live in ``EventAggregateDaily`` / ``EventDayTotal`` (the daily
    aggregate of the specification); the others in ``EventPeriodAggregate`` /
    ``EventPeriodTotal``. Weeks are ISO weeks (Monday to Sunday).
    """

    HOUR = "hour", _("hour")
    DAY = "day", _("day")
    WEEK = "week", _("week")
    MONTH = "month", _("month")


class EventPeriodAggregate(AggregateCounts):
    """Events per hour, ISO week or month x event type x source, written by
    ``aggregate_period``.

    ``start`` and ``end`` are the period's bounds (``start <= created_at < end``),
    local midnights (or local hours) of ``TIME_ZONE``, stored as aware datetimes: a DST
    day has 23 or 25 hour rows, and the repeated autumn hour keeps two distinct
    starts. The unique key lets re-runs replace rows instead of adding new ones.
    """

    period = models.CharField(_("period"), max_length=8, choices=Period.choices)
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    event_type = models.CharField(_("event type"), max_length=64)
    source = models.CharField(_("source"), max_length=16)

    class Meta:
        ordering = ["period", "-start", "event_type", "source"]
        verbose_name = _("event aggregate per period")
        verbose_name_plural = _("event aggregates per period")
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "event_type", "source"],
                name="django_engagement_period_aggregate_key",
            ),
        ]

    def __str__(self) -> str:
        start = self.start.isoformat()
        return f"{self.period} {start} {self.event_type}/{self.source}: {self.count}"


class EventPeriodTotal(AggregateCounts):
    """Period-wide totals of one hour, ISO week or month (distinct users and anonymous
    ids cannot be summed from per-type rows nor from shorter periods), written by
    ``aggregate_period`` beside ``EventPeriodAggregate``. A row also marks its period
    as aggregated."""

    period = models.CharField(_("period"), max_length=8, choices=Period.choices)
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))

    class Meta:
        ordering = ["period", "-start"]
        verbose_name = _("event total per period")
        verbose_name_plural = _("event totals per period")
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start"], name="django_engagement_period_total_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period} {self.start.isoformat()}: {self.count}"
