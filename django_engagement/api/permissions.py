"""Permission classes chosen by settings, resolved on every request.

DRF views normally bind ``permission_classes`` at import time, which ignores
``override_settings`` and later changes; these helpers read
``INGEST_PERMISSION_CLASSES`` / ``REPORT_PERMISSION_CLASSES`` when called::

    def get_permissions(self):
        return ingest_permissions()
"""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from ..conf import engagement_settings


def ingest_permissions() -> list[BasePermission]:
    """Instances of ``INGEST_PERMISSION_CLASSES`` (default: ``AllowAny``)."""
    return [permission() for permission in engagement_settings.INGEST_PERMISSION_CLASSES]


def report_permissions() -> list[BasePermission]:
    """Instances of ``REPORT_PERMISSION_CLASSES`` (default: ``IsAdminUser``)."""
    return [permission() for permission in engagement_settings.REPORT_PERMISSION_CLASSES]
