"""Celery app of the example project, used only when ENGAGEMENT_ASYNC_FEED is on.

Start a worker next to ``runserver``::

    ENGAGEMENT_ASYNC_FEED=true celery -A example_project worker -l info
    celery -A example_project beat -l info      # the pending fan-out sweeper

Configuration comes from the ``CELERY_*`` Django settings (``CELERY_BROKER_URL``).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

app = Celery("example_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
