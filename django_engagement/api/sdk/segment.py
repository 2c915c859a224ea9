"""Segment and RudderStack wire protocol: ``segment/v1/batch`` and the per-type paths.

A host points the SDKs here::

    analytics.Analytics("wk_abc", host="https://site/api/engagement/segment")  # Python
    AnalyticsBrowser.load({writeKey, cdnSettings: {integrations: {"Segment.io":
        {apiKey: "wk_abc", apiHost: "site/api/engagement/segment/v1"}}}})   # analytics.js

The write key comes as HTTP Basic ``writeKey:`` and/or ``writeKey`` in the body (and in
each analytics.js message); every copy must agree. A good request answers 200
``{"success": true}``, whether its messages are new or a retry.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from ...services.sdk import ingest_segment
from ..schema import extend_schema
from .common import (
    SdkView,
    authenticate,
    bad_request,
    basic_auth_user,
    check_batch_length,
    decode_json,
    stored_or_error,
)

#: analytics.js's one-letter paths and the message type each one carries.
SHORT_PATHS = {
    "t": "track",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "g": "group",
    "a": "alias",
}
TYPES = tuple(SHORT_PATHS.values())

#: Not in the OpenAPI schema: the body and answers are Segment/RudderStack's wire protocol,
#: defined by its SDKs (gzip, text/plain and form bodies, {"code", "message"} errors),
#: not by an OpenAPI description. docs/guide/sdks.md documents them; the tests run
#: the real SDKs against them (tests/test_sdk_*.py).
SDK_SCHEMA = extend_schema(exclude=True)


def _with_context(message: Any, context: Any) -> Any:
    """A batch-wide ``context`` under each message's own (the message's keys win)."""
    if not isinstance(context, dict) or not isinstance(message, dict):
        return message
    own = message.get("context")
    return {**message, "context": {**context, **(own if isinstance(own, dict) else {})}}


class SegmentView(SdkView):
    """Base: authenticate the request's write key(s), throttle, ingest, answer 200."""

    def ingest(self, request: Request, body: Any, messages: Any, size: int) -> Response:
        items = messages if isinstance(messages, list) else []
        message_keys = [m.get("writeKey") for m in items if isinstance(m, dict)]
        key, options = authenticate(basic_auth_user(request), body.get("writeKey"), *message_keys)
        check_batch_length(messages, "batch")
        self.throttle(request, key, options)
        batch = self.batch_context(request, options, sent_at=body.get("sentAt"), body_size=size)
        messages = [_with_context(message, body.get("context")) for message in messages]
        stored_or_error(ingest_segment, messages, batch)
        return Response({"success": True})


class SegmentBatchView(SegmentView):
    """``POST segment/v1/batch`` (Python SDKs) and ``segment/v1/b`` (analytics.js)."""

    @SDK_SCHEMA
    def post(self, request: Request) -> Response:
        body, size = decode_json(request)
        if not isinstance(body, dict):
            raise bad_request('Expected a JSON object {"batch": [...]}.')
        return self.ingest(request, body, body.get("batch"), size)


class SegmentMessageView(SegmentView):
    """``POST segment/v1/<type>`` with one message; the path gives a missing ``type``."""

    message_type = "track"

    @SDK_SCHEMA
    def post(self, request: Request) -> Response:
        body, size = decode_json(request)
        if not isinstance(body, dict):
            raise bad_request("Expected one message as a JSON object.")
        message = {**body, "type": body.get("type") or self.message_type}
        return self.ingest(request, body, [message], size)
