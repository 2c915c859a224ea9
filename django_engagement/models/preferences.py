"""What each user wants to be told about, and the email outbox of the feed.

Not swappable: they point at ``AUTH_USER_MODEL`` and at the active feed model,
so a host that swapped the feed model needs no migration of its own. Creation
times are django-model-utils' ``AutoCreatedField`` (set once, on creation, not
editable in forms).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from model_utils.fields import AutoCreatedField

from ..conf import engagement_settings
from .base import TargetMixin


class EmailFrequency(models.TextChoices):
    """How feed items reach a user by email."""

    NEVER = "never", _("Never")
    IMMEDIATELY = "immediately", _("Immediately")
    DAILY = "daily", _("Daily digest")
    WEEKLY = "weekly", _("Weekly digest")


class NotificationPreference(models.Model):
    """A user's choice for one activity type, or (``activity_type=""``) for all of them.

    Resolution, first match wins: the user's row for the type, the user's global
    row, ``NOTIFICATION_DEFAULTS`` for the type, then for ``"*"``.
    """

    GLOBAL = ""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    activity_type = models.CharField(
        _("activity type"),
        max_length=64,
        blank=True,
        default=GLOBAL,
        help_text=_("Empty: the user's default for every type."),
    )
    in_feed = models.BooleanField(_("receive in feed"), default=True)
    email = models.CharField(
        _("email"), max_length=16, choices=EmailFrequency.choices, default=EmailFrequency.NEVER
    )
    # Django's auto_now, not model-utils' AutoLastModifiedField: on a model without an
    # AutoCreatedField that field stamps every new row with one cached time
    # (jazzband/django-model-utils#520).
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("notification preference")
        verbose_name_plural = _("notification preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "activity_type"], name="%(app_label)s_preference_once_per_type"
            ),
        ]
        indexes = [
            # Fan-out asks whether anyone opted out of a type (services.preferences).
            models.Index(
                fields=["activity_type"],
                condition=models.Q(in_feed=False),
                name="preference_opted_out_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.activity_type or '*'}: feed={self.in_feed} email={self.email}"


class TargetMute(TargetMixin):
    """A user silenced one target (e.g. a course) until ``until``, or for good when NULL."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    until = models.DateTimeField(_("muted until"), null=True, blank=True)
    created_at = AutoCreatedField(_("created at"))

    class Meta:
        verbose_name = _("muted target")
        verbose_name_plural = _("muted targets")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "target_content_type", "target_object_id"],
                name="%(app_label)s_mute_once_per_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} mutes {self.target_type}:{self.target_object_id}"


class FeedEmail(models.Model):
    """The email outbox: one row per feed item a user wants by email.

    Written at fan-out with the items. Sending first *claims* rows
    (``claimed_at``, committed) and then marks them ``sent_at``: a claimed row is
    never claimed again, so a re-run or a process killed half-way never sends an
    item twice.
    """

    item = models.OneToOneField(
        engagement_settings.FEED_MODEL,
        verbose_name=_("feed item"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    frequency = models.CharField(_("frequency"), max_length=16, choices=EmailFrequency.choices)
    created_at = AutoCreatedField(_("created at"))
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("feed email")
        verbose_name_plural = _("feed emails")
        indexes = [models.Index(fields=["frequency", "claimed_at", "user"])]

    def __str__(self) -> str:
        return f"{self.frequency} email of item {self.item_id} to {self.user_id}"
