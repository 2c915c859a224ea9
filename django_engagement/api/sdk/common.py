"""What the SDK endpoints share: body decoding, write keys, throttling, CORS and errors.

Every answer of these endpoints is JSON, errors as ``{"code", "message"}`` (what the
Segment and RudderStack SDKs read; PostHog's read ``detail``, sent too). The SDKs retry
5xx and 429 only, so a bad request is a 4xx that names the problem and is dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any
from urllib.parse import parse_qs

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.utils.json import strict_constant
from rest_framework.views import APIView

from ...conf import engagement_settings
from ...models import column_limit
from ...services.sdk import MessageTooLarge, SdkBatch
from ...validators import PayloadTooLarge

GZIP_MAGIC = b"\x1f\x8b"
CORS_ALLOWED_HEADERS = "Authorization, Content-Type"
CORS_MAX_AGE = "86400"


class SdkError(exceptions.APIException):
    """An SDK endpoint's 4xx: ``status_code``, ``code`` and a message."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message, code)
        self.status_code = status_code
        self.code = code


def bad_request(message: str) -> SdkError:
    return SdkError(status.HTTP_400_BAD_REQUEST, "invalid_request", message)


def too_large(message: str) -> SdkError:
    return SdkError(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "request_too_large", message)


def error_body(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message, "detail": message}


def _inflate(raw: bytes, limit: int) -> bytes:
    """Gunzip ``raw``, never producing more than ``limit + 1`` bytes (a bomb stops there)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise bad_request(f"Request body is not valid gzip: {exc}.") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise too_large(
            f"Decompressed request body is larger than {limit} bytes (SDK_MAX_REQUEST_SIZE)."
        )
    if not inflater.eof:
        raise bad_request("Request body is truncated gzip.")
    return data


def read_body(request: Request) -> bytes:
    """The request body, decompressed when gzip (by header or by magic bytes), capped.

    ``SDK_MAX_REQUEST_SIZE`` bounds both the bytes read and the bytes inflated, so
    neither a long body nor a zip bomb costs more memory than the cap.
    """
    limit = engagement_settings.SDK_MAX_REQUEST_SIZE
    http_request = request._request
    declared = http_request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(f"Request body is larger than {limit} bytes (SDK_MAX_REQUEST_SIZE).")
    raw = http_request.read(limit + 1)
    if len(raw) > limit:
        raise too_large(f"Request body is larger than {limit} bytes (SDK_MAX_REQUEST_SIZE).")
    encoding = http_request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding == "gzip" or raw[:2] == GZIP_MAGIC:
        return _inflate(raw, limit)
    if encoding not in ("", "identity"):
        raise SdkError(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported; send gzip or none.",
        )
    return raw


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=strict_constant)
    except UnicodeDecodeError as exc:
        raise bad_request(f"Request body is not valid UTF-8: {exc.reason}.") from exc
    except RecursionError as exc:
        raise bad_request("JSON parse error - document is nested too deeply.") from exc
    except ValueError as exc:
        raise bad_request(f"JSON parse error - {exc}") from exc


def decode_json(request: Request) -> tuple[Any, int]:
    """The JSON document of a request (raw, gzip, or posthog-js's form ``data=<base64>``)
    and its size in bytes once decoded."""
    body = read_body(request)
    if request.content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("latin-1"), max_num_fields=10)
        value = (form.get("data") or [""])[0]
        if not value:
            raise bad_request("Form body has no 'data' field.")
        try:
            body = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            body = value.encode("latin-1")
        if body[:2] == GZIP_MAGIC:
            body = _inflate(body, engagement_settings.SDK_MAX_REQUEST_SIZE)
    return _loads(body), len(body)


def key_options(key: Any) -> dict[str, Any]:
    """The ``WRITE_KEYS`` options of ``key``; 401 when it is missing or unknown."""
    keys = engagement_settings.WRITE_KEYS or {}
    if not keys:
        raise SdkError(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_key",
            "No write keys are configured (ENGAGEMENT['WRITE_KEYS']); nothing is accepted.",
        )
    if not isinstance(key, str) or not key:
        raise SdkError(status.HTTP_401_UNAUTHORIZED, "invalid_key", "No write key was sent.")
    options = keys.get(key)
    if options is None:
        raise SdkError(status.HTTP_401_UNAUTHORIZED, "invalid_key", "Unknown write key.")
    return options


def basic_auth_user(request: Request) -> str | None:
    """The user part of HTTP Basic credentials (the SDKs send ``writeKey:``), or None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise SdkError(
            status.HTTP_401_UNAUTHORIZED, "invalid_key", "Malformed Basic credentials."
        ) from exc
    return decoded.partition(":")[0]


def authenticate(*candidates: Any) -> tuple[str, dict[str, Any]]:
    """The one write key among ``candidates`` (header, body, ...) and its options.

    Two different keys in one request (Basic auth says one, the body another) are a
    401: the request cannot be attributed.
    """
    keys = {key for key in candidates if key not in (None, "")}
    if len(keys) > 1:
        raise SdkError(
            status.HTTP_401_UNAUTHORIZED,
            "invalid_key",
            "The request carries two different write keys.",
        )
    key = next(iter(keys), None)
    options = key_options(key)  # a 401 unless key is a known write key
    return str(key), options


class SdkRateThrottle(SimpleRateThrottle):
    """One budget per write key and client IP; the key's ``throttle_rate`` or the ingest rate."""

    scope = "engagement_sdk"

    def __init__(self, key: str, options: dict[str, Any]) -> None:
        self.key = key
        self.options = options
        super().__init__()

    def get_rate(self) -> str | None:
        if "throttle_rate" in self.options:
            return self.options["throttle_rate"]
        return engagement_settings.INGEST_THROTTLE_RATE

    def get_cache_key(self, request: Any, view: Any) -> str:
        ident = f"{self.key}-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def allowed_origin(request: Request) -> str | None:
    """The request's ``Origin`` when ``SDK_CORS_ORIGINS`` allows it (``"*"`` allows all)."""
    origin = request.META.get("HTTP_ORIGIN")
    allowed = engagement_settings.SDK_CORS_ORIGINS or []
    if origin and ("*" in allowed or origin in allowed):
        return origin
    return None


class SdkView(APIView):
    """Base of the SDK endpoints: no DRF authentication (the write key is the credential),
    no parsers (``decode_json`` reads the body), ``{"code", "message"}`` errors and CORS.
    """

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes: list[Any] = []
    throttle_classes: list[Any] = []

    def get_exception_handler(self) -> Any:
        return sdk_exception_handler

    def options(  # type: ignore[override]  # a preflight answers with a plain HttpResponse
        self, request: Request, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """CORS preflight: 204 with the allow headers for allowed origins, else 403."""
        if allowed_origin(request) is None:
            raise SdkError(
                status.HTTP_403_FORBIDDEN,
                "origin_not_allowed",
                "This origin is not in ENGAGEMENT['SDK_CORS_ORIGINS'].",
            )
        response = HttpResponse(status=status.HTTP_204_NO_CONTENT)
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        origin = allowed_origin(request)
        if origin is not None:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Allow-Credentials"] = "true"
        patch_vary_headers(response, ["Origin"])
        return response

    def throttle(self, request: Request, key: str, options: dict[str, Any]) -> None:
        throttle = SdkRateThrottle(key, options)
        if not throttle.allow_request(request, self):
            wait = throttle.wait()
            raise exceptions.Throttled(wait)

    @staticmethod
    def batch_context(
        request: Request,
        options: dict[str, Any],
        *,
        sent_at: Any,
        body_size: int | None = None,
        historical: bool = False,
    ) -> SdkBatch:
        """The request-wide part of every message: source, client IP and agent, sentAt."""
        # record_events applies CAPTURE_IP/ANONYMIZE_IP to the address, as for POST events/.
        return SdkBatch(
            source=options.get("source", "web"),
            ip_address=request.META.get("REMOTE_ADDR"),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[: column_limit("user_agent")],
            sent_at=sent_at,
            body_size=body_size,
            historical=bool(historical),
        )


def sdk_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as ``{"code", "message"}`` with its status (429 keeps ``Retry-After``)."""
    headers = {}
    if isinstance(exc, SdkError):
        code, message = exc.code, str(exc.detail)
    elif isinstance(exc, exceptions.Throttled):
        code, message = "throttled", str(exc.detail)
        wait = getattr(exc, "wait", None)  # set by DRF's Throttled; the stubs omit it
        if wait is not None:
            headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    elif isinstance(exc, exceptions.APIException):
        codes, message = exc.get_codes(), str(exc.detail)
        code = codes if isinstance(codes, str) else "invalid_request"
    else:
        return None
    status_code = getattr(exc, "status_code", status.HTTP_400_BAD_REQUEST)
    return Response(error_body(code, message), status=status_code, headers=headers)


def stored_or_error(ingest: Any, messages: list[Any], batch: SdkBatch) -> int:
    """Run an ``ingest_*`` service, turning its validation errors into 400/413s."""
    from django.core.exceptions import ValidationError

    try:
        return ingest(messages, batch)
    except (MessageTooLarge, PayloadTooLarge) as exc:
        raise SdkError(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "message_too_large", " ".join(exc.messages)
        ) from exc
    except ValidationError as exc:
        raise SdkError(
            status.HTTP_400_BAD_REQUEST, "invalid_message", " ".join(exc.messages)
        ) from exc


def check_batch_length(messages: Any, name: str) -> list[Any]:
    """``messages`` as a non-empty list of at most ``MAX_BATCH_SIZE`` items."""
    if not isinstance(messages, list) or not messages:
        raise bad_request(f"{name} must be a non-empty list of messages.")
    limit = engagement_settings.MAX_BATCH_SIZE
    if len(messages) > limit:
        raise too_large(
            f"{name} has {len(messages)} messages; the limit is {limit} (MAX_BATCH_SIZE)."
        )
    return messages
