"""OpenAPI annotations that cost nothing when drf-spectacular is not installed.

drf-spectacular is the optional ``[openapi]`` extra. Views import the names
they need from here instead of from ``drf_spectacular.utils``::

    from .schema import OpenApiParameter, extend_schema

    @extend_schema(parameters=[OpenApiParameter("date", str, description="YYYY-MM-DD")])
    def get(self, request): ...

With drf-spectacular these are its own objects. Without it, ``extend_schema``
and ``extend_schema_view`` return the view unchanged and the other names build
inert placeholders, so no view module imports drf-spectacular.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from rest_framework import serializers

__all__ = [
    "SPECTACULAR_INSTALLED",
    "body_required_schema",
    "ErrorDetailSerializer",
    "ValidationErrorSerializer",
    "OpenApiExample",
    "OpenApiParameter",
    "OpenApiResponse",
    "OpenApiTypes",
    "PolymorphicProxySerializer",
    "extend_schema",
    "extend_schema_field",
    "extend_schema_view",
    "error_responses",
    "inline_serializer",
]

SPECTACULAR_INSTALLED = find_spec("drf_spectacular") is not None

if SPECTACULAR_INSTALLED:
    from drf_spectacular.types import OpenApiTypes
    from drf_spectacular.utils import (
        OpenApiExample,
        OpenApiParameter,
        OpenApiResponse,
        PolymorphicProxySerializer,
        extend_schema,
        extend_schema_field,
        extend_schema_view,
        inline_serializer,
    )
else:

    class _InertMeta(type):
        def __getattr__(cls, name: str) -> None:
            return None

    class _Inert(metaclass=_InertMeta):
        """Accepts any arguments and any class attribute (``OpenApiParameter.QUERY``)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

    OpenApiExample = OpenApiParameter = OpenApiResponse = OpenApiTypes = _Inert  # type: ignore[misc, assignment]
    PolymorphicProxySerializer = _Inert  # type: ignore[misc, assignment]

    # Inert stand-ins when drf-spectacular is absent: mypy sees its signatures as the originals.
    def extend_schema(*args: Any, **kwargs: Any) -> Any:  # type: ignore[misc]
        return lambda view: view

    extend_schema_view = extend_schema_field = extend_schema  # type: ignore[assignment]

    def inline_serializer(*args: Any, **kwargs: Any) -> None:  # type: ignore[misc]
        return None


class ErrorDetailSerializer(serializers.Serializer):
    """DRF's ``{"detail": "..."}`` body of 401/403/404/405/413/415/429 answers."""

    detail = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    """A 400's body: field (or query parameter) name -> messages, nested per index in lists.

    Its schema is written by hand below (``ValidationErrorExtension``): DRF's error
    structure has no fixed field names.
    """


#: ``{"date": ["Enter a valid date."]}``, ``{"events": {"0": {"event_type": [...]}}}``.
VALIDATION_ERROR_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {}},
        ]
    },
}

if SPECTACULAR_INSTALLED:
    from drf_spectacular.extensions import (
        OpenApiSerializerExtension,
        OpenApiSerializerFieldExtension,
    )
    from drf_spectacular.plumbing import build_basic_type

    class ValidationErrorExtension(OpenApiSerializerExtension):
        target_class = ValidationErrorSerializer

        def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
            return VALIDATION_ERROR_SCHEMA

    class StrictFieldsExtension(OpenApiSerializerExtension):
        """Request serializers that refuse unknown keys: ``additionalProperties: false``,
        the serializer's ``schema_properties()`` (patterns, enums from settings) and
        ``schema_keywords()`` (rules across fields)."""

        target_class = "django_engagement.api.serializers.StrictFieldsMixin"
        match_subclasses = True

        def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
            schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
            schema["additionalProperties"] = False
            for name, keywords in self.target.schema_properties().items():
                if name in schema.get("properties", {}):
                    schema["properties"][name].update(keywords)
            schema.update(self.target.schema_keywords())
            return schema

    from drf_spectacular.openapi import AutoSchema

    class BodyRequiredAutoSchema(AutoSchema):
        """Marks the request body required when the request serializer sets
        ``body_required`` (no field is required alone, but an empty body is a 400)."""

        def _get_request_body(self, direction: str = "request") -> Any:
            body = super()._get_request_body(direction)
            if body and getattr(self.get_request_serializer(), "body_required", False):
                body["required"] = True
            return body

    class UserFieldExtension(OpenApiSerializerFieldExtension):
        """``user_id`` is an integer or a string after the user model's primary key."""

        target_class = "django_engagement.api.serializers.UserField"

        def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
            if self.target.integer_key():
                return {**(build_basic_type(OpenApiTypes.INT) or {}), "minimum": 1}
            return build_basic_type(OpenApiTypes.STR) or {}


#: A 400 or 413 body: field errors, or ``{"detail": ...}`` for the whole body (bad JSON).
ERROR_BODY = PolymorphicProxySerializer(
    component_name="ErrorBody",
    serializers=[ErrorDetailSerializer, ValidationErrorSerializer],
    resource_type_field_name=None,
)

ERROR_DESCRIPTIONS = {
    400: "Invalid input: an object of field (or query parameter) name -> list of messages; "
    "nested per index for lists.",
    # Only sent when the first authentication class has a WWW-Authenticate scheme
    # (BasicAuthentication, token schemes); with SessionAuthentication first it is a 403.
    401: "Not authenticated (with an authentication class that sends WWW-Authenticate).",
    403: "Not authenticated, or not allowed.",
    404: "Not found, or not the caller's.",
    413: "Too large: {'detail': ...} for the whole body, or field errors for a payload.",
    415: "The body is not application/json.",
    429: "Rate limit exceeded; Retry-After tells when to retry.",
}


def error_responses(*statuses: int) -> dict[int, Any]:
    """OpenAPI ``responses`` entries for the given error statuses, with their bodies.

    ``extend_schema(responses={200: MySerializer, **error_responses(400, 403)})``
    """
    bodies = {400: ERROR_BODY, 413: ERROR_BODY}
    return {
        status: OpenApiResponse(
            bodies.get(status, ErrorDetailSerializer), description=ERROR_DESCRIPTIONS[status]
        )
        for status in statuses
    }


def body_required_schema() -> Any:
    """The view ``schema`` that honours ``body_required`` (None without drf-spectacular)."""
    return BodyRequiredAutoSchema() if SPECTACULAR_INSTALLED else None
