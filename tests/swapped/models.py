"""Swapped-in event and feed models, installed only by tests.settings_swapped."""

from django.db import models

from django_engagement.models import AbstractActivityFeedItem, AbstractEvent


class SwappedEvent(AbstractEvent):
    tenant = models.CharField(max_length=32, blank=True, default="")

    class Meta(AbstractEvent.Meta):
        pass


class SwappedFeedItem(AbstractActivityFeedItem):
    priority = models.PositiveSmallIntegerField(default=0)

    class Meta(AbstractActivityFeedItem.Meta):
        pass
