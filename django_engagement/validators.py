"""Validation shared by the Python API and the ingestion endpoint.

Each validator raises ``django.core.exceptions.ValidationError`` with a
message that names the problem; ``PayloadTooLarge`` is separate so the HTTP
layer can answer 413 instead of 400.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.exceptions import ValidationError

from .conf import engagement_settings

EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


class PayloadTooLarge(ValidationError):
    """An event's payload is over ``MAX_EVENT_SIZE`` bytes."""


def validate_event_type(event_type: Any) -> None:
    allowed = engagement_settings.EVENT_TYPES
    if allowed is not None:
        if event_type not in allowed:
            raise ValidationError(
                f"Unknown event type {event_type!r}; allowed: {', '.join(allowed)}.",
                code="invalid_choice",
            )
        return
    # fullmatch: with match(), "$" also accepts a trailing newline ("page_view\n").
    if not isinstance(event_type, str) or not EVENT_TYPE_PATTERN.fullmatch(event_type):
        raise ValidationError(
            f"Invalid event type {event_type!r}: use 1-64 characters of a-z, 0-9, "
            "'_', '.', ':' or '-', starting with a letter.",
            code="invalid",
        )


def validate_source(source: Any) -> None:
    allowed = engagement_settings.SOURCES
    if source not in allowed:
        raise ValidationError(
            f"Unknown source {source!r}; allowed: {', '.join(allowed)}.", code="invalid_choice"
        )


def payload_size(data: Any) -> int:
    """Bytes of ``data`` as compact UTF-8 JSON, the size ``MAX_EVENT_SIZE`` limits."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def validate_payload_size(data: Any) -> None:
    limit = engagement_settings.MAX_EVENT_SIZE
    size = payload_size(data)
    if size > limit:
        raise PayloadTooLarge(
            f"Event payload is {size} bytes; the limit is {limit} bytes (MAX_EVENT_SIZE).",
            code="too_large",
        )
