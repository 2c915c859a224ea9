"""JSON bodies that never become a 500 or an HTML error page, whatever their size.

DRF 3.18 hands a ``JSONParser`` the whole of ``request.body``: the body is read
into memory before any size check, Django raises ``RequestDataTooBig`` (an HTML
400) past ``DATA_UPLOAD_MAX_MEMORY_SIZE``, and a chunked body without
``Content-Length`` is read as empty. ``JSONBodyMixin`` gives a view:

- ``BoundedJSONParser``, a parser that is not a ``JSONParser`` subclass (so DRF
  passes it the stream, not ``request.body``): a 413 when ``Content-Length`` is
  over the view's bound, before anything is read; otherwise it reads at most the
  bound + 1 bytes and answers 413 beyond it (this is what bounds chunked bodies);
  every decoding failure is a 400;
- the body stream of a chunked request, when the server delivers one (a WSGI
  server that sets ``wsgi.input_terminated``, such as gunicorn, or ASGI);
- JSON-only parsing and rendering, ``RequestDataTooBig`` as the JSON 413 and too many
  query parameters (``TooManyFieldsSent``) as a JSON 400.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils.json import strict_constant

from ..conf import engagement_settings

#: Bytes allowed per event beyond its payload: field names, the other fields,
#: whitespace and JSON escapes.
EVENT_OVERHEAD_BYTES = 1024
#: Django's default ``DATA_UPLOAD_MAX_MEMORY_SIZE``, used when a host sets it to None.
DEFAULT_BODY_LIMIT = 2_621_440


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


def default_body_limit() -> int:
    """``DATA_UPLOAD_MAX_MEMORY_SIZE``, the bound of the package's other JSON endpoints."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or DEFAULT_BODY_LIMIT


def declared_length(request: HttpRequest) -> int | None:
    """``Content-Length`` as a number, or None when absent or not a number."""
    value = request.META.get("CONTENT_LENGTH") or ""
    return int(value) if value.isdigit() else None


def chunked_body(request: HttpRequest) -> Any | None:
    """The body stream of a chunked request without ``Content-Length``, or None.

    Django reads such a body as empty under WSGI; a server that de-chunks it and
    sets ``wsgi.input_terminated`` (gunicorn) lets ``wsgi.input`` be read to its end.
    """
    meta = request.META
    if meta.get("CONTENT_LENGTH") or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", ""):
        return None
    if meta.get("wsgi.input_terminated"):
        return meta["wsgi.input"]
    if isinstance(request, ASGIRequest):
        return request
    raise ParseError("This server cannot read a chunked body: send Content-Length.")


def too_large(limit: int, rule: str = "DATA_UPLOAD_MAX_MEMORY_SIZE") -> RequestTooLarge:
    return RequestTooLarge(f"Request body is larger than {limit} bytes, the limit ({rule}).")


class BoundedJSONParser(BaseParser):
    """JSON with a body size bound (the view's ``max_body_bytes()``) and 400s for bad input."""

    media_type = "application/json"
    renderer_class = JSONRenderer
    strict = api_settings.STRICT_JSON

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        view = parser_context.get("view")
        limit = view.max_body_bytes() if hasattr(view, "max_body_bytes") else default_body_limit()
        rule = getattr(view, "body_limit_rule", "DATA_UPLOAD_MAX_MEMORY_SIZE")
        request = parser_context.get("request")
        declared = declared_length(request) if request is not None else None
        if declared is not None and declared > limit:
            raise too_large(limit, rule)
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise too_large(limit, rule)
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
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


class JSONBodyMixin:
    """For the package's API views: JSON in and out, bodies bounded before they are read."""

    parser_classes: Sequence[type[BaseParser]] = [BoundedJSONParser]
    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]
    #: How the bound is set, quoted in the 413 message.
    body_limit_rule = "DATA_UPLOAD_MAX_MEMORY_SIZE"

    def max_body_bytes(self) -> int:
        """Largest request body this view reads; override per view."""
        return default_body_limit()

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        drf_request = super().initialize_request(request, *args, **kwargs)  # type: ignore[misc]
        try:
            stream = chunked_body(request)
        except ParseError as exc:
            drf_request._engagement_body_error = exc
            return drf_request
        if stream is not None:
            # DRF reads nothing without Content-Length; hand the parser the stream.
            drf_request._stream = stream
        return drf_request

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        error = getattr(request, "_engagement_body_error", None)
        if error is not None:
            raise error

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, RequestDataTooBig):
            # Something read request.body past DATA_UPLOAD_MAX_MEMORY_SIZE.
            exc = too_large(default_body_limit())
        elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
            # More than DATA_UPLOAD_MAX_NUMBER_FIELDS query parameters: Django's HTML 400.
            exc = ValidationError({"non_field_errors": [str(exc)]})
        response = super().handle_exception(exc)  # type: ignore[misc]
        # Errors are JSON whatever the client accepts (``?format=csv`` on the export).
        self.request.accepted_renderer = JSONRenderer()  # type: ignore[attr-defined]
        self.request.accepted_media_type = JSONRenderer.media_type  # type: ignore[attr-defined]
        return response
