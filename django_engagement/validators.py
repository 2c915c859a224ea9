"""Validation shared by the Python API and the ingestion endpoint.

Each validator raises ``django.core.exceptions.ValidationError`` with a
message that names the problem; ``PayloadTooLarge`` is separate so the HTTP
layer can answer 413 instead of 400.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.core.exceptions import ValidationError

from .conf import engagement_settings

EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


class PayloadTooLarge(ValidationError):
    """An event's payload is over ``MAX_EVENT_SIZE`` bytes."""


class UnstorableValue(ValidationError, ValueError):
    """A value PostgreSQL cannot store: NUL in text or jsonb, a lone surrogate, inf or NaN.

    Also a ``ValueError``, so Python callers of ``record_event`` can catch it either
    way; SQLite would store these, but the contract is the same on both databases.
    """


#: NUL (text and jsonb refuse it) and lone UTF-16 surrogates (not encodable as UTF-8).
_UNSTORABLE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def unstorable_text_reason(value: str) -> str | None:
    """Why PostgreSQL cannot store ``value`` in a text or jsonb column, or None."""
    match = _UNSTORABLE_CHARACTER.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character (\\u0000)"
    return f"contains a lone surrogate (\\u{ord(match.group()):04x})"


def validate_storable_text(name: str, value: Any) -> None:
    """Reject a string for the text column ``name`` that PostgreSQL cannot store."""
    reason = unstorable_text_reason(value) if isinstance(value, str) else None
    if reason:
        raise UnstorableValue(f"{name} {reason}.", code="unstorable")


def _json_path(path: str, key: Any) -> str:
    return f"{path}[{key!r}]" if isinstance(key, str) else f"{path}[{key}]"


def validate_storable_json(data: Any, name: str = "payload") -> None:
    """Reject JSON that jsonb cannot hold, naming where: ``payload['a'][0] contains ...``.

    Walks keys and values without recursion (depth is bounded elsewhere): strings
    must have no NUL or lone surrogate, numbers must be finite (``1e999`` parses
    to ``inf`` without ``parse_constant`` being called).
    """
    stack: list[tuple[str, Any]] = [(name, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            reason = unstorable_text_reason(value)
            if reason:
                raise UnstorableValue(f"{path} {reason}.", code="unstorable")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise UnstorableValue(
                    f"{path} is {value!r}: JSON numbers must be finite.", code="unstorable"
                )
        elif isinstance(value, dict):
            for key, child in value.items():
                child_path = _json_path(path, key)
                reason = unstorable_text_reason(key) if isinstance(key, str) else None
                if reason:
                    raise UnstorableValue(f"key of {child_path} {reason}.", code="unstorable")
                stack.append((child_path, child))
        elif isinstance(value, list | tuple):
            stack.extend((_json_path(path, index), child) for index, child in enumerate(value))


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
