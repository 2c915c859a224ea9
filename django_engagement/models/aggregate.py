from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventAggregateDaily(models.Model):
    """Events per day x event type x source, written by ``aggregate_daily``.

    ``date`` is a calendar day in the project's ``TIME_ZONE``. The unique key
    lets re-runs replace rows instead of adding new ones.
    """

    date = models.DateField(_("date"))
    event_type = models.CharField(_("event type"), max_length=64)
    source = models.CharField(_("source"), max_length=16)
    count = models.PositiveIntegerField(_("events"), default=0)
    unique_users = models.PositiveIntegerField(_("unique users"), default=0)
    unique_anonymous = models.PositiveIntegerField(_("unique anonymous ids"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

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


class EventDayTotal(models.Model):
    """Day-wide totals of one calendar day, written by ``aggregate_daily`` beside the
    per-type rows of ``EventAggregateDaily``.

    Distinct users and anonymous ids of a whole day cannot be summed from per-type
    rows (one user has many types), so they live here, in their own table: summing
    ``EventAggregateDaily.count`` over a day stays equal to that day's events. A row
    also marks its day as aggregated.
    """

    date = models.DateField(_("date"), unique=True)
    count = models.PositiveIntegerField(_("events"), default=0)
    unique_users = models.PositiveIntegerField(_("unique users"), default=0)
    unique_anonymous = models.PositiveIntegerField(_("unique anonymous ids"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-date"]
        verbose_name = _("daily event total")
        verbose_name_plural = _("daily event totals")

    def __str__(self) -> str:
        return f"{self.date}: {self.count}"
