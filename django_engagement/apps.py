from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EngagementConfig(AppConfig):
    name = "django_engagement"
    verbose_name = _("Engagement")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from .conf import MODEL_SETTINGS

        # Like AUTH_USER_MODEL, the swappable settings always exist, so migrations
        # (ours and hosts') can refer to settings.ENGAGEMENT_EVENT_MODEL.
        for setting_name, default in MODEL_SETTINGS.values():
            if default and not hasattr(settings, setting_name):
                setattr(settings, setting_name, default)

        from . import checks  # noqa: F401  (registers the system checks)
        from .receivers import connect_receivers

        connect_receivers()
