"""Stored reports: one row per report type, period and parameters, with its lifecycle.

Not swappable: a report points at ``AUTH_USER_MODEL`` only (who asked for it). Rows are
written by ``services.stored_reports``; the numbers come from the analytics core.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _
from model_utils import Choices
from model_utils.models import StatusModel, TimeStampedModel


class ReportType(models.TextChoices):
    """What a stored report holds (``services.stored_reports`` builds each)."""

    DAILY_SUMMARY = "daily_summary", _("Daily summary")
    WEEKLY_SUMMARY = "weekly_summary", _("Weekly summary")
    MONTHLY_SUMMARY = "monthly_summary", _("Monthly summary")
    USER_ACTIVITY = "user_activity", _("User activity")
    ENGAGEMENT_REPORT = "engagement_report", _("Engagement report")


class Report(StatusModel, TimeStampedModel):
    """A report of one type over ``period_start..period_end`` (calendar days, inclusive).

    Fields: ``report_type``, ``title``, ``period_start``, ``period_end``, ``parameters``
    (JSON, e.g. ``{"user_id": 7}``) and ``parameters_key`` (its digest, part of the unique
    key), ``status`` (pending, running, done, failed; ``status_changed`` when it last
    changed), ``error`` (why it failed), ``result`` (JSON) or ``file`` (a name in the
    ``REPORT_STORAGE`` storage), ``created_by``, ``created`` and ``modified``.
    """

    STATUS = Choices(
        ("pending", _("Pending")),
        ("running", _("Running")),
        ("done", _("Done")),
        ("failed", _("Failed")),
    )

    report_type = models.CharField(_("report type"), max_length=32, choices=ReportType.choices)
    title = models.CharField(_("title"), max_length=200)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    parameters_key = models.CharField(
        _("parameters key"),
        max_length=64,
        editable=False,
        help_text=_("SHA-256 of the canonical JSON of the parameters (part of the unique key)."),
    )
    error = models.TextField(_("error"), blank=True)
    # UUID user or target keys (and Decimal values) are stored as strings.
    result = models.JSONField(_("result"), null=True, blank=True, encoder=DjangoJSONEncoder)
    file = models.CharField(
        _("file"),
        max_length=255,
        blank=True,
        help_text=_("Name of the report's file in the REPORT_STORAGE storage."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created", "-pk"]
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        constraints = [
            models.UniqueConstraint(
                fields=["report_type", "period_start", "period_end", "parameters_key"],
                name="%(app_label)s_report_once_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.status})"
