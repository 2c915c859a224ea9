"""Package receivers, connected in ``EngagementConfig.ready()`` according to ``TRACK``."""

from __future__ import annotations


def connect_receivers() -> None:
    """Connect the default receivers enabled in ``ENGAGEMENT['TRACK']``."""
