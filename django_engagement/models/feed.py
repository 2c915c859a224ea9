from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..managers import UnreadCountManager
from .base import AbstractActivityFeedItem


class ActivityFeedItem(AbstractActivityFeedItem):
    """Default feed model; swap it with ``ENGAGEMENT_FEED_MODEL``."""

    class Meta(AbstractActivityFeedItem.Meta):
        swappable = "ENGAGEMENT_FEED_MODEL"


class FeedUnreadCount(models.Model):
    """How many unread items a user has in the active feed model: the unread badge.

    One row per user, read by primary key (a missing row means 0). The package's
    write paths keep it exact in the transaction that changes the items
    (``services/unread.py``); writes that bypass them (a host's own
    ``Feed.objects.filter(...).update(is_read=...)``) are repaired by
    ``engagement_rebuild_unread_counts``.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    unread = models.IntegerField(_("unread items"), default=0)

    objects = UnreadCountManager()

    class Meta:
        verbose_name = _("unread count")
        verbose_name_plural = _("unread counts")

    def __str__(self) -> str:
        return f"{self.unread} unread of user {self.user_id}"
