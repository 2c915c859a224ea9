"""The example host project of django-engagement.

Celery's app is loaded here (the pattern of Celery's Django guide) so that
``shared_task`` binds to it; it only does work with ENGAGEMENT_ASYNC_FEED on.
"""

import importlib.util

if importlib.util.find_spec("celery") is not None:
    from .celery import app as celery_app

    __all__ = ["celery_app"]
