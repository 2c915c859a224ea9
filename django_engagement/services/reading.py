"""Where report reads go: ``ENGAGEMENT["READ_DATABASE"]`` (e.g. a streaming replica).

Usage::

    from django_engagement.services.reading import read_manager

    read_manager(get_event_model()).between(start, end)

Only reads that tolerate replication lag use it (reports, the dashboard,
``engagement_report``); write paths and reads inside them stay on the primary.
With ``READ_DATABASE = None`` (the default) Django's routers decide as usual.
"""

from __future__ import annotations

from django.db import models

from ..conf import engagement_settings


def read_manager(model: type[models.Model]) -> models.Manager:
    """``model``'s default manager bound to ``READ_DATABASE`` (unbound when it is None)."""
    return model._default_manager.db_manager(engagement_settings.READ_DATABASE)
