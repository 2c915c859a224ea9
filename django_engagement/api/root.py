"""The include prefix itself: an index of the package's endpoints, like DRF's router root.

Without it, ``GET /api/engagement/`` (the prefix a host includes the URLconf under) was
a 404, the first URL a new user tries.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from .schema import OpenApiExample, OpenApiResponse, OpenApiTypes, extend_schema

#: Relative path (the key of the answer) -> URL name in the ``django_engagement`` namespace.
ENDPOINTS = {
    "events": "engagement-events",
    "activity-feed": "engagement-activity-feed-list",
    "activity-feed/summary": "engagement-activity-feed-summary",
    "activity-feed/mark-read": "engagement-activity-feed-mark-read",
    "activity-feed/generate": "engagement-activity-feed-generate",
    "activity-feed/preferences": "engagement-activity-feed-preferences",
    "reports/daily-summary": "engagement-reports-daily-summary",
    "reports/active-users": "engagement-reports-active-users",
    "reports/top": "engagement-reports-top",
    "reports/export": "engagement-reports-export",
    "reports/dashboard": "engagement-reports-dashboard",
    "reports/saved": "engagement-reports-saved-list",
    "reports/saved/generate": "engagement-reports-saved-generate",
}


class ApiRootView(APIView):
    """The endpoints of the engagement API, as absolute URLs.

    Each endpoint checks its own permissions; this list is public.
    """

    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="engagement_root",
        summary="List the endpoints of the engagement API",
        responses={
            200: OpenApiResponse(
                response=OpenApiTypes.OBJECT,
                description="Relative path -> absolute URL of each endpoint.",
                examples=[
                    OpenApiExample(
                        "root",
                        value={"events": "https://example.com/api/engagement/events/"},
                    )
                ],
            )
        },
    )
    def get(self, request: Request) -> Response:
        # The instance namespace, so a host including the URLconf twice gets its own URLs.
        match = request.resolver_match
        namespace = match.namespace if match else None
        return Response(
            {
                key: reverse(f"{namespace}:{name}", request=request)
                for key, name in ENDPOINTS.items()
            }
        )


@extend_schema(exclude=True)
class NotFoundView(APIView):
    """A JSON 404 for a package URL that matches no endpoint (``activity-feed/abc/``).

    Without it Django answers such a URL with its HTML 404 page, while the
    schema says every answer under the package's prefix is JSON.
    """

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise NotFound()
