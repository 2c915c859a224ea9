from __future__ import annotations

from .base import AbstractActivityFeedItem


class ActivityFeedItem(AbstractActivityFeedItem):
    """Default feed model; swap it with ``ENGAGEMENT_FEED_MODEL``."""

    class Meta(AbstractActivityFeedItem.Meta):
        swappable = "ENGAGEMENT_FEED_MODEL"
