"""Models of django-engagement and the getters for the active (possibly swapped) ones."""

from __future__ import annotations

from typing import Any, cast

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from ..conf import engagement_settings
from .aggregate import (
    EventAggregateDaily,
    EventDayTotal,
    EventPeriodAggregate,
    EventPeriodTotal,
    Period,
)
from .base import AbstractActivityFeedItem, AbstractEvent
from .event import Event
from .feed import ActivityFeedItem, FeedUnreadCount
from .outbox import PendingFanOut
from .preferences import EmailFrequency, FeedEmail, NotificationPreference, TargetMute
from .report import Report, ReportType

__all__ = [
    "AbstractActivityFeedItem",
    "AbstractEvent",
    "ActivityFeedItem",
    "Event",
    "EmailFrequency",
    "EventAggregateDaily",
    "EventDayTotal",
    "EventPeriodAggregate",
    "EventPeriodTotal",
    "FeedEmail",
    "FeedUnreadCount",
    "NotificationPreference",
    "PendingFanOut",
    "Report",
    "ReportType",
    "Period",
    "TargetMute",
    "column_limit",
    "column_of",
    "get_event_model",
    "get_feed_model",
    "get_target_model",
    "resolve_lookup",
]


def _get_model(setting_name: str, value: str) -> type[models.Model]:
    try:
        return apps.get_model(value, require_ready=False)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{setting_name} must be of the form 'app_label.model_name', got {value!r}."
        ) from exc
    except LookupError as exc:
        raise ImproperlyConfigured(
            f"{setting_name} refers to model {value!r} that has not been installed."
        ) from exc


def get_event_model() -> type[AbstractEvent]:
    """Return the event model that is active in this project."""
    return cast(
        type[AbstractEvent], _get_model("ENGAGEMENT_EVENT_MODEL", engagement_settings.EVENT_MODEL)
    )


def get_feed_model() -> type[AbstractActivityFeedItem]:
    """Return the activity feed model that is active in this project."""
    return cast(
        type[AbstractActivityFeedItem],
        _get_model("ENGAGEMENT_FEED_MODEL", engagement_settings.FEED_MODEL),
    )


def get_target_model() -> type[models.Model] | None:
    """Return the host's target model (``ENGAGEMENT_TARGET_MODEL``), or None when unset."""
    value = engagement_settings.TARGET_MODEL
    if not value:
        return None
    return _get_model("ENGAGEMENT_TARGET_MODEL", value)


def resolve_lookup(model: type[models.Model], path: str) -> list[Any]:
    """Walk a ``a__b__c`` lookup from ``model`` and return the fields it crosses.

    Raises ``FieldDoesNotExist`` naming the first part that does not resolve.
    """
    fields = []
    current: type[models.Model] | None = model
    for part in path.split("__"):
        if current is None:
            raise FieldDoesNotExist(f"{part!r} follows a field that is not a relation")
        field = current._meta.get_field(part)
        fields.append(field)
        current = field.related_model if field.is_relation else None
    return fields


def column_of(model: type[models.Model], name: str | None = None) -> str:
    """The database column of ``model``'s field ``name`` (its primary key when None)."""
    field = model._meta.pk if name is None else model._meta.get_field(name)
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise FieldDoesNotExist(f"{model.__name__}.{name or 'pk'} has no column.")
    return column


def column_limit(name: str) -> int:
    """``max_length`` of the active event model's text column ``name``: limits come from the model.

    A swapped event model with wider (or narrower) columns moves every check with it:
    the API's field limits, the services' length checks and the user-agent cut.
    """
    limit = get_event_model()._meta.get_field(name).max_length  # type: ignore[union-attr]  # a CharField
    if limit is None:
        raise ImproperlyConfigured(f"The event model's {name!r} field has no max_length.")
    return limit
