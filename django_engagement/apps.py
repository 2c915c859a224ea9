from __future__ import annotations

from importlib import import_module
from typing import Any

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

CONTENTTYPES = "django.contrib.contenttypes"


def lists_app(entries: list[str], name: str) -> bool:
    """Whether INSTALLED_APPS ``entries`` hold app ``name``, by module or AppConfig path."""
    for entry in entries:
        if entry == name or entry.startswith(f"{name}."):
            return True
        module_path, _, class_name = entry.rpartition(".")
        if not module_path:
            continue
        try:
            candidate = getattr(import_module(module_path), class_name, None)
        except ImportError:
            continue  # Django reports it when it creates the app configs
        if isinstance(candidate, type) and issubclass(candidate, AppConfig):
            if candidate.name == name:
                return True
    return False


class EngagementConfig(AppConfig):
    name = "django_engagement"
    verbose_name = _("Engagement")
    default_auto_field = "django.db.models.BigAutoField"

    def __init__(self, app_name: str, app_module: Any) -> None:
        super().__init__(app_name, app_module)
        # Without contenttypes, loading the models fails with Django's RuntimeError about
        # ContentType; say what to fix instead (the E015 check cannot run that early).
        from django.conf import settings

        if not lists_app(settings.INSTALLED_APPS, CONTENTTYPES):
            from .checks import missing_app_error

            error = missing_app_error(CONTENTTYPES)
            raise ImproperlyConfigured(f"{error.msg} {error.hint} ({error.id})")

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
