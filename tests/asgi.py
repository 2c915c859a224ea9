"""ASGI application of the test settings, for the uvicorn processes the realtime tests start.

Static files (feed.js) are served too, as ``runserver`` would.
"""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

application = ASGIStaticFilesHandler(get_asgi_application())
