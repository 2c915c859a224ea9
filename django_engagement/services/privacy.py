"""Privacy helpers: export one user's tracked data (GDPR access requests).

Usage::

    from django_engagement import export_user_data

    json.dumps(export_user_data(user))

Deleting a user follows ``ON_USER_DELETE`` (events deleted or kept anonymised);
feed items always go with the user.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from ..models import get_event_model, get_feed_model
from .analytics import iso_timestamp, target_json_id, target_type

CHUNK_SIZE = 2000

EVENT_FIELDS = (
    "uuid",
    "event_type",
    "source",
    "anonymous_id",
    "title",
    "description",
    "data",
    "ip_address",
    "user_agent",
    "created_at",
    "received_at",
    "target_content_type_id",
    "target_object_id",
)
FEED_FIELDS = (
    "id",
    "activity_type",
    "title",
    "description",
    "data",
    "is_read",
    "read_at",
    "created_at",
    "target_content_type_id",
    "target_object_id",
)


def _rows(queryset: models.QuerySet, fields: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Stream ``values()`` rows as JSON-ready dicts, without building model instances."""
    for row in queryset.order_by("created_at", "pk").values(*fields).iterator(CHUNK_SIZE):
        content_type_id = row.pop("target_content_type_id")
        content_type = ContentType.objects.get_for_id(content_type_id) if content_type_id else None
        object_id = row.pop("target_object_id")
        row["target_type"] = target_type(content_type) if content_type else None
        row["target_id"] = target_json_id(content_type, object_id)
        for key in ("created_at", "received_at", "read_at"):
            if key in row:
                row[key] = iso_timestamp(row[key])
        yield row


def export_user_data(user: Any) -> dict[str, Any]:
    """Everything the package stores about ``user``: events and feed items, oldest first.

    JSON-serialisable. Rows are streamed from the database in chunks; the event's
    ``uuid`` is exported as ``event_id`` and ``data`` as ``payload``, as the API names them.
    Raises ``ValueError`` for ``None`` or an anonymous user: ``user=None`` would
    otherwise select every anonymous event.
    """
    if user is None or getattr(user, "pk", None) is None:
        raise ValueError(f"export_user_data needs a saved user, got {user!r}")
    events = []
    for row in _rows(get_event_model()._default_manager.for_user(user), EVENT_FIELDS):
        row["event_id"] = str(row.pop("uuid"))
        row["payload"] = row.pop("data")
        events.append(row)
    feed_items = list(_rows(get_feed_model()._default_manager.for_user(user), FEED_FIELDS))
    return {"user_id": user.pk, "events": events, "feed_items": feed_items}
