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

__all__ = [
    "SPECTACULAR_INSTALLED",
    "OpenApiExample",
    "OpenApiParameter",
    "OpenApiResponse",
    "OpenApiTypes",
    "PolymorphicProxySerializer",
    "extend_schema",
    "extend_schema_field",
    "extend_schema_view",
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

    def extend_schema(*args: Any, **kwargs: Any) -> Any:  # type: ignore[no-redef]
        return lambda view: view

    extend_schema_view = extend_schema_field = extend_schema  # type: ignore[assignment]

    def inline_serializer(*args: Any, **kwargs: Any) -> None:  # type: ignore[no-redef]
        return None
