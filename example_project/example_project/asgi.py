"""ASGI entry point of the example project (needed by the live feed at ``/live/``).

With ``DEBUG`` on, static files (``feed.js``, the admin's CSS) are served too, as
``runserver`` does; in production a web server or WhiteNoise serves them.
"""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")

application = get_asgi_application()
if settings.DEBUG:
    application = ASGIStaticFilesHandler(application)
