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
    "ErrorDetailSerializer",
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


ERROR_DESCRIPTIONS = {
    400: "Invalid input: an object of field (or query parameter) name -> list of messages; "
    "nested per index for lists.",
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
    return {
        status: OpenApiResponse(
            OpenApiTypes.OBJECT if status in (400, 413) else ErrorDetailSerializer,
            description=ERROR_DESCRIPTIONS[status],
        )
        for status in statuses
    }
