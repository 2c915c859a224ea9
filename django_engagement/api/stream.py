"""``activity-feed/stream/``: Server-Sent Events of the caller's own feed (ASGI only).

::

    GET activity-feed/stream/            Last-Event-ID: 41 (or ?last_event_id=41)

    retry: 3000

    event: unread_count
    data: {"unread_count": 3}

    id: 42
    event: item
    data: {...the list's item shape...}

    : heartbeat

An async view: each open stream is a coroutine waiting on the process's ``Hub``,
not a worker thread, so under WSGI it answers 501 instead of holding a worker.
Authentication uses DRF's ``DEFAULT_AUTHENTICATION_CLASSES`` (session cookies for
a browser's EventSource).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_safe
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from ..conf import engagement_settings
from ..services.realtime import Update, release_connections, subscription_for
from .serializers import FeedItemSerializer

RETRY_MS = 3000
MAX_EVENT_ID = 2**63 - 1


def _authenticate(request: HttpRequest) -> Any:
    """The DRF-authenticated user, or raise DRF's ``APIException`` (sync: it may query)."""
    # The stubs type DRF's settings as their dotted paths; at runtime they are classes.
    authenticators = [cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]  # type: ignore[operator]
    try:
        user = Request(request, authenticators=authenticators).user
    finally:
        release_connections()  # the stream outlives the request's thread's queries
    if not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return user


def _last_event_id(request: HttpRequest) -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or int(raw) > MAX_EVENT_ID:
        raise exceptions.ValidationError(
            {"last_event_id": ["Must be a feed item id (a non-negative integer)."]}
        )
    return int(raw)


def _error(request: HttpRequest, exc: exceptions.APIException) -> JsonResponse:
    """DRF's answer: 401 with ``WWW-Authenticate`` if the first authenticator has one, else 403."""
    detail = exc.detail if isinstance(exc.detail, dict | list) else {"detail": exc.detail}
    response = JsonResponse(detail, status=exc.status_code, safe=False)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
        header = classes[0]().authenticate_header(request) if classes else None  # type: ignore[operator]
        if header:
            response["WWW-Authenticate"] = header
        else:
            response.status_code = 403
    return response


def _event(name: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _encode(update: Update, previous_unread: int | None) -> bytes:
    """One chunk: an ``item`` event per new item, then ``unread_count`` if it changed."""
    chunk = b"".join(
        _event("item", FeedItemSerializer(item).data, item.pk) for item in update.items
    )
    if update.unread_count != previous_unread:
        chunk += _event("unread_count", {"unread_count": update.unread_count})
    return chunk


async def _events(user_id: Any, after: int | None) -> AsyncIterator[bytes]:
    heartbeat = engagement_settings.REALTIME_HEARTBEAT
    async with subscription_for(user_id, after) as (subscription, first):
        yield f"retry: {RETRY_MS}\n\n".encode() + _encode(first, None)
        unread = first.unread_count
        while True:
            try:
                update = await asyncio.wait_for(subscription.updates.get(), heartbeat)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            chunk = _encode(subscription.take(update), unread)
            unread = update.unread_count
            if chunk:
                yield chunk


@require_safe
async def feed_stream(request: HttpRequest) -> HttpResponseBase:
    """Stream the caller's new items and unread count; 501 JSON outside ASGI."""
    if not isinstance(request, ASGIRequest):
        return JsonResponse(
            {
                "detail": "The feed stream needs an ASGI server (e.g. uvicorn); see "
                "docs/guide/realtime.md."
            },
            status=501,
        )
    try:
        user = await sync_to_async(_authenticate)(request)
        after = _last_event_id(request)
    except exceptions.APIException as exc:
        return _error(request, exc)
    response = StreamingHttpResponse(_events(user.pk, after), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event through at once
    return response
