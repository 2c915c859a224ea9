"""``POST events/``: the client ingestion endpoint, one event or a batch.

Single::

    POST events/  {"event_type": "page_view", "source": "web", "payload": {"page": "home"}}
    201 {"event_id": "5b0c..."}

Bulk (all or nothing, at most ``MAX_BATCH_SIZE``)::

    POST events/  {"events": [{"event_type": "page_view"}, ...]}
    201 {"events_created": 2, "event_ids": ["...", "..."]}

The serializers validate each field (the rules of ``validate_event_spec``, with the
event model's column limits) and the view hands the events to
``store_validated_events``, which does not validate them again (one bulk INSERT), so
a request costs the same number of queries whatever its size.
Idempotency keys are scoped per client: the signed-in user, else the
``anonymous_id``; an anonymous client without one cannot send keys (400).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from ..conf import engagement_settings
from ..models import column_limit
from ..services.events import request_context, store_validated_events, utf8_header
from ..validators import unstorable_text_reason
from .parsers import JSONBodyMixin, max_request_bytes
from .permissions import ingest_permissions
from .schema import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    error_responses,
    extend_schema,
)
from .serializers import (
    PAYLOAD_TOO_LARGE,
    BulkEventsSerializer,
    EventCreatedSerializer,
    EventInSerializer,
    EventsCreatedSerializer,
)
from .throttling import IngestRateThrottle

ANON_ID_HEADER = "X-Client-ANON-ID"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
#: Room left in the key column for the ``:<index>`` suffix of bulk events (``:499``, and more).
KEY_SUFFIX_ROOM = 8


def _has_code(detail: Any, code: str) -> bool:
    """Whether any error in a nested DRF error structure carries ``code``."""
    if isinstance(detail, ErrorDetail):
        return detail.code == code
    if isinstance(detail, dict):
        return any(_has_code(value, code) for value in detail.values())
    if isinstance(detail, list):
        return any(_has_code(value, code) for value in detail)
    return False


def _header(request: Request, name: str, max_length: int) -> str | None:
    """A header as UTF-8 text: 400 naming it when it is not UTF-8, has NUL or is too long."""
    try:
        value = utf8_header(request.headers.get(name, "")).strip()
    except UnicodeDecodeError:
        raise ValidationError({name: [_("This header is not valid UTF-8.")]}) from None
    reason = unstorable_text_reason(value)
    if reason:
        raise ValidationError({name: [_("This header %s.") % reason]})
    if len(value) > max_length:
        raise ValidationError(
            {name: [_("Ensure this header has no more than %d characters.") % max_length]}
        )
    return value or None


class EventIngestView(JSONBodyMixin, APIView):
    """Store client events. Permissions and rate come from `ENGAGEMENT` on each request.

    Authentication is the host's (`REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`);
    an authenticated caller is linked to the events. With DRF's
    `SessionAuthentication` a logged-in browser must send the CSRF token;
    anonymous clients need none.
    """

    body_limit_rule = "MAX_BATCH_SIZE x (2 x MAX_EVENT_SIZE + 1024)"

    def max_body_bytes(self) -> int:
        return max_request_bytes()

    def get_permissions(self) -> list[BasePermission]:
        return ingest_permissions()

    def get_throttles(self) -> list[BaseThrottle]:
        # Disabled ingestion stores nothing, so there is nothing to rate-limit.
        return [IngestRateThrottle()] if engagement_settings.ENABLED else []

    @extend_schema(
        operation_id="engagement_events_create",
        summary="Record one event or a batch of events",
        request=PolymorphicProxySerializer(
            component_name="EventIngestRequest",
            serializers=[EventInSerializer, BulkEventsSerializer],
            resource_type_field_name=None,
        ),
        parameters=[
            OpenApiParameter(
                ANON_ID_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="anonymous_id for events that do not carry one.",
            ),
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="idempotency_key of a single event; in a batch, event i "
                "without its own key gets '<header>:<i>'. At most 120 characters. "
                "Unique per client (the user, else the anonymous id); anonymous "
                "clients need an anonymous id to send one.",
            ),
        ],
        responses={
            201: PolymorphicProxySerializer(
                component_name="EventIngestResponse",
                serializers=[EventCreatedSerializer, EventsCreatedSerializer],
                resource_type_field_name=None,
            ),
            204: OpenApiResponse(description="ENABLED is False: nothing was stored."),
            **error_responses(400, 401, 403, 413, 415, 429),
        },
    )
    def post(self, request: Request) -> Response:
        if not engagement_settings.ENABLED:
            return Response(status=status.HTTP_204_NO_CONTENT)
        data = request.data
        if not isinstance(data, dict):
            message = _('Expected a JSON object: one event or {"events": [...]}.')
            raise ValidationError({"non_field_errors": [message]})
        bulk = "events" in data
        serializer = (BulkEventsSerializer if bulk else EventInSerializer)(data=data)
        if not serializer.is_valid():
            too_large = _has_code(serializer.errors, PAYLOAD_TOO_LARGE)
            return Response(
                serializer.errors,
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
                if too_large
                else status.HTTP_400_BAD_REQUEST,
            )
        anonymous_id = _header(request, ANON_ID_HEADER, column_limit("anonymous_id"))
        key_limit = column_limit("idempotency_key")
        if bulk:  # room for the longest ``:<index>`` suffix, whatever MAX_BATCH_SIZE is
            key_limit -= max(KEY_SUFFIX_ROOM, len(f":{engagement_settings.MAX_BATCH_SIZE - 1}"))
        header_key = _header(request, IDEMPOTENCY_HEADER, key_limit)
        items = serializer.validated_data["events"] if bulk else [serializer.validated_data]
        events = [
            self.event_kwargs(
                attrs,
                anonymous_id=anonymous_id,
                idempotency_key=f"{header_key}:{index}" if bulk and header_key else header_key,
            )
            for index, attrs in enumerate(items)
        ]
        context = request_context(request)
        if context["user"] is None:
            self.require_identity_for_keys(events, bulk=bulk)
        stored = store_validated_events([{**event, **context} for event in events])
        ids = [str(event.uuid) for event, _ in stored]
        body = {"events_created": len(ids), "event_ids": ids} if bulk else {"event_id": ids[0]}
        replayed = not any(created for _, created in stored)
        headers = {REPLAYED_HEADER: "true"} if replayed else None
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)

    @staticmethod
    def require_identity_for_keys(events: list[dict[str, Any]], *, bulk: bool) -> None:
        """Refuse idempotency keys from anonymous clients that send no anonymous id.

        Keys are scoped per client; such a client has no scope of its own, and the
        shared alternatives (the anonymised IP, the server's scope) would let
        clients behind one address replay, and so suppress, each other's events.
        """
        message = _(
            "An idempotency key needs a client identity: sign in, or send anonymous_id "
            "or the %(header)s header."
        ) % {"header": ANON_ID_HEADER}
        missing = [
            index
            for index, event in enumerate(events)
            if event["idempotency_key"] and not event["anonymous_id"]
        ]
        if not missing:
            return
        if not bulk:
            raise ValidationError({"idempotency_key": [message]})
        raise ValidationError(
            {"events": {str(index): {"idempotency_key": [message]} for index in missing}}
        )

    @staticmethod
    def event_kwargs(
        attrs: dict[str, Any], *, anonymous_id: str | None, idempotency_key: str | None
    ) -> dict[str, Any]:
        """``record_event`` keyword arguments of one validated event; headers fill gaps."""
        return {
            "event_type": attrs["event_type"],
            "source": attrs["source"],
            "data": attrs["payload"],
            "anonymous_id": attrs.get("anonymous_id") or anonymous_id,
            "idempotency_key": attrs.get("idempotency_key") or idempotency_key,
            "timestamp": attrs.get("timestamp"),
        }
