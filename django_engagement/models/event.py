from __future__ import annotations

from .base import AbstractEvent


class Event(AbstractEvent):
    """Default event model; swap it with ``ENGAGEMENT_EVENT_MODEL``."""

    class Meta(AbstractEvent.Meta):
        swappable = "ENGAGEMENT_EVENT_MODEL"
