"""The fan-out outbox: events whose feed items are still to be written."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from model_utils.fields import AutoCreatedField

from ..conf import engagement_settings


class PendingFanOut(models.Model):
    """An event whose feed fan-out (``ASYNC_FEED``) has not been committed yet.

    The outbox of the asynchronous fan-out: written in the transaction that stores
    the event, deleted in the transaction that inserts its feed items. A row that
    outlives its Celery task (broker down, worker killed) is picked up by
    ``flush_pending_fan_out`` (the sweeper task and
    ``populate_activity_feeds --flush-pending``). Not swappable: it only points at
    the active event model, so a host that swapped ``Event`` needs no migration.
    """

    event = models.OneToOneField(
        engagement_settings.EVENT_MODEL,
        verbose_name=_("event"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    # django-model-utils: set on creation, not editable.
    created_at = AutoCreatedField(_("created at"), db_index=True)

    class Meta:
        verbose_name = _("pending feed fan-out")
        verbose_name_plural = _("pending feed fan-outs")

    def __str__(self) -> str:
        return f"fan-out of event {self.event_id} pending since {self.created_at:%Y-%m-%d %H:%M}"
