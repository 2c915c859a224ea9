"""PostHog wire protocol: ``posthog/batch/`` (server SDKs) and posthog-js's capture paths.

A host points the SDKs here::

    Posthog("phc_xyz", host="https://site/api/engagement/posthog", sync_mode=True)   # Python
    posthog.init("phc_xyz", {api_host: "https://site/api/engagement/posthog"})      # posthog-js

Bodies may be JSON, gzip (``Content-Encoding`` or only the magic bytes: posthog-js
sends ``text/plain`` gzip without the header) or a form ``data=<base64 JSON>``
(sendBeacon). The key is ``api_key`` or each event's ``properties.token``.
``/flags/`` and ``/array/<token>/config`` answer "no flags, no remote features", so
posthog-js starts with its defaults and loads nothing else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from ...services.sdk import ingest_posthog
from ..schema import extend_schema
from .common import (
    SdkView,
    authenticate,
    bad_request,
    check_batch_length,
    decode_json,
    key_options,
    stored_or_error,
)

#: Not in the OpenAPI schema: the body and answers are PostHog's wire protocol,
#: defined by its SDKs (gzip, text/plain and form bodies, {"code", "message"} errors),
#: not by an OpenAPI description. docs/guide/sdks.md documents them; the tests run
#: the real SDKs against them (tests/test_sdk_*.py).
SDK_SCHEMA = extend_schema(exclude=True)


def _query_sent_at(request: Request) -> str | None:
    """posthog-js's ``sent_at``/``_`` query parameter (epoch milliseconds) as ISO 8601."""
    value = request.query_params.get("sent_at") or request.query_params.get("_")
    if value and value.isdigit() and len(value) <= 15:
        return datetime.fromtimestamp(int(value) / 1000, UTC).isoformat()
    return None


def _token(message: Any) -> Any:
    if not isinstance(message, dict):
        return None
    properties = message.get("properties")
    token = properties.get("token") if isinstance(properties, dict) else None
    return token or message.get("api_key")


class PostHogCaptureView(SdkView):
    """``POST posthog/{batch,e,i/v0/e,capture,track}/``: a batch, an array or one event."""

    @SDK_SCHEMA
    def post(self, request: Request) -> Response:
        body, size = decode_json(request)
        if isinstance(body, list):
            body = {"batch": body}
        elif isinstance(body, dict) and "batch" not in body:
            body = {"batch": [body], "api_key": body.get("api_key")}
        if not isinstance(body, dict):
            raise bad_request('Expected a JSON object {"batch": [...]} or a list of events.')
        messages = body.get("batch")
        tokens = map(_token, messages) if isinstance(messages, list) else ()
        key, options = authenticate(body.get("api_key"), *tokens)
        messages = check_batch_length(messages, "batch")
        self.throttle(request, key, options)
        batch = self.batch_context(
            request,
            options,
            sent_at=body.get("sent_at") or _query_sent_at(request),
            body_size=size,
            historical=body.get("historical_migration") is True,
        )
        stored_or_error(ingest_posthog, messages, batch)
        return Response({"status": 1})


#: What ``/flags/`` answers: no flags, and no remote feature that would load more code.
FLAGS_ANSWER = {
    "flags": {},
    "featureFlags": {},
    "featureFlagPayloads": {},
    "errorsWhileComputingFlags": False,
    "quotaLimited": [],
    "requestId": None,
    "config": {"enable_collect_everything": True},
    "supportedCompression": ["gzip", "gzip-js"],
    "sessionRecording": False,
    "autocapture_opt_out": False,
    "capturePerformance": False,
    "heatmaps": False,
    "surveys": False,
    "siteApps": [],
    "toolbarParams": {},
    "isAuthenticated": False,
}


class PostHogFlagsView(SdkView):
    """``POST posthog/flags/``: no feature flags (the package does not evaluate flags)."""

    @SDK_SCHEMA
    def post(self, request: Request) -> Response:
        body, _ = decode_json(request)
        key = body.get("token") or body.get("api_key") if isinstance(body, dict) else None
        key_options(key)
        return Response(FLAGS_ANSWER)


class PostHogConfigView(SdkView):
    """``GET posthog/array/<token>/config``: posthog-js's remote config, all features off."""

    @SDK_SCHEMA
    def get(self, request: Request, token: str) -> Response:
        key_options(token)
        return Response({**FLAGS_ANSWER, "token": token, "hasFeatureFlags": False})


class PostHogConfigScriptView(SdkView):
    """``GET posthog/array/<token>/config.js``: the same config as a script posthog-js loads."""

    @SDK_SCHEMA
    def get(self, request: Request, token: str) -> HttpResponse:
        key_options(token)
        config = {**FLAGS_ANSWER, "token": token, "hasFeatureFlags": False}
        script = (
            "(window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {})"
            f"[{json.dumps(token)}] = {{config: {json.dumps(config)}, siteApps: []}};"
        )
        return HttpResponse(script, content_type="application/javascript")
