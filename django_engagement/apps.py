from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .checks import missing_app_error  # also registers the system checks
from .conf import MODEL_SETTINGS
from .signals import emails_requested, fan_out_requested, report_requested

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
        if not lists_app(settings.INSTALLED_APPS, CONTENTTYPES):
            error = missing_app_error(CONTENTTYPES)
            raise ImproperlyConfigured(f"{error.msg} {error.hint} ({error.id})")

    def ready(self) -> None:
        # Like AUTH_USER_MODEL, the swappable settings always exist, so migrations
        # (ours and hosts') can refer to settings.ENGAGEMENT_EVENT_MODEL.
        for setting_name, default in MODEL_SETTINGS.values():
            if default and not hasattr(settings, setting_name):
                setattr(settings, setting_name, default)

        # Both import the models, which exist only once the app registry is ready.
        from .receivers import connect_receivers

        connect_receivers()
        if find_spec("celery") is not None:
            from .tasks import (
                queue_fan_out,
                queue_immediate_emails,
                queue_report,
            )  # the [celery] extra is optional

            fan_out_requested.connect(queue_fan_out, dispatch_uid="django_engagement.queue_fan_out")
            emails_requested.connect(
                queue_immediate_emails, dispatch_uid="django_engagement.queue_immediate_emails"
            )
            report_requested.connect(queue_report, dispatch_uid="django_engagement.queue_report")
