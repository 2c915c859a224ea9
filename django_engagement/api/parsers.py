"""A JSON parser for the ingestion endpoint that never lets bad input become a 500.

DRF's ``JSONParser`` reads the whole body whatever its size and catches only
``ValueError``, so a deeply nested document (``RecursionError``) or a body of
many megabytes reaches the view. This parser checks the size first (413
before anything is read when ``Content-Length`` is over the bound) and turns
every decoding failure into a 400 ``ParseError``.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils.json import strict_constant

from ..conf import engagement_settings

#: Bytes allowed per event beyond its payload: field names, the other fields,
#: whitespace and JSON escapes.
EVENT_OVERHEAD_BYTES = 1024


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("Request body too large.")
    default_code = "request_too_large"


def max_request_bytes() -> int:
    """Largest ingestion body accepted: ``MAX_BATCH_SIZE x (2 x MAX_EVENT_SIZE + 1 KiB)``.

    Twice the payload limit leaves room for pretty-printed or escaped JSON of
    a payload that is within ``MAX_EVENT_SIZE`` once stored compactly.
    """
    per_event = 2 * engagement_settings.MAX_EVENT_SIZE + EVENT_OVERHEAD_BYTES
    return engagement_settings.MAX_BATCH_SIZE * per_event


class BoundedJSONParser(JSONParser):
    """``JSONParser`` with a body size bound and 400s for every malformed document."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        limit = max_request_bytes()
        request = parser_context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise self.too_large(limit)
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise self.too_large(limit)
        encoding = get_encoding(parser_context)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"Request body is not valid {encoding}: {exc.reason}.") from exc
        parse_constant = strict_constant if self.strict else None
        try:
            return json.loads(text, parse_constant=parse_constant)
        except RecursionError as exc:
            raise ParseError("JSON parse error - document is nested too deeply.") from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc

    @staticmethod
    def too_large(limit: int) -> RequestTooLarge:
        return RequestTooLarge(
            f"Request body is larger than {limit} bytes, the limit "
            "(MAX_BATCH_SIZE x (2 x MAX_EVENT_SIZE + 1024))."
        )
