"""The test settings with the event and feed models swapped for subclasses."""

from .settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.swapped"]  # noqa: F405
ENGAGEMENT_EVENT_MODEL = "swapped.SwappedEvent"
ENGAGEMENT_FEED_MODEL = "swapped.SwappedFeedItem"
