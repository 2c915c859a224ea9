"""``activity-feed/``: the caller's own activity feed, read/unread state, admin rebuild.

::

    GET  activity-feed/?is_read=false&page_size=50    paginated items, newest first
    GET  activity-feed/?pagination=cursor             the same with keyset cursors (?cursor=)
    GET  activity-feed/<id>/                          one of the caller's items
    GET  activity-feed/summary/                       counts and the 5 newest items
    POST activity-feed/mark-read/  {"activity_ids": [1, 2]} | {"mark_all": true}
    POST activity-feed/generate/   {"user_id": 7, "days_back": 30}   (staff only)

Every request runs a fixed number of queries: targets are loaded with one
query per target type (``with_targets()``), never per item.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import ngettext
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import BasePagination
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from ..models import get_feed_model
from ..services.feed import feed_summary, mark_read, populate_feed
from ..services.unread import unread_count
from .filters import ActivityFeedFilterSet, StrictBooleanField
from .pagination import PAGINATION_QUERY_PARAM, FeedPagination, feed_paginator
from .parsers import JSONBodyMixin
from .schema import (
    OpenApiParameter,
    body_required_schema,
    error_responses,
    extend_schema,
    extend_schema_view,
)
from .serializers import (
    FeedItemSerializer,
    FeedSummarySerializer,
    GenerateFeedResultSerializer,
    GenerateFeedSerializer,
    MarkReadResultSerializer,
    MarkReadSerializer,
)

#: Query parameters of the paginators, not filters.
PAGINATION_PARAMS = {"page", "page_size", PAGINATION_QUERY_PARAM}


@extend_schema_view(
    list=extend_schema(
        summary="The caller's activity feed, newest first",
        description="Paginated (page, page_size <= 100; or pagination=cursor, then cursor); "
        "targets cost one query per type.",
        responses={200: FeedItemSerializer(many=True), **error_responses(400, 401, 403, 404)},
    ),
    retrieve=extend_schema(
        summary="One item of the caller's activity feed",
        description="Another user's item is a 404.",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH)],
        responses={200: FeedItemSerializer, **error_responses(401, 403, 404)},
    ),
)
class ActivityFeedViewSet(
    JSONBodyMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The authenticated user's feed items; other users' items are invisible (404)."""

    serializer_class = FeedItemSerializer
    schema = body_required_schema()
    #: Ids are integers; ``activity-feed/abc/`` is the JSON 404 of ``urls.py``.
    lookup_value_regex = r"\d+"
    pagination_class = FeedPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = ActivityFeedFilterSet

    @property
    def paginator(self) -> BasePagination:
        """Page numbers or keyset cursors, chosen per request (``api/pagination.py``)."""
        if not hasattr(self, "_paginator"):
            self._paginator = feed_paginator(getattr(self, "request", None))
        return self._paginator

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "generate":
            return [IsAdminUser()]
        return [IsAuthenticated()]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The page; for ``?is_read=false`` alone, its ``count`` is the unread counter."""
        if isinstance(self.paginator, FeedPagination):
            self.paginator.known_count = self._unread_only_count(request)
        return super().list(request, *args, **kwargs)

    def _unread_only_count(self, request: Request) -> int | None:
        """The caller's unread counter when the list is all their unread items, else None."""
        filters = set(request.query_params) - PAGINATION_PARAMS
        if filters != {"is_read"}:
            return None
        value = request.query_params["is_read"].strip().lower()
        if StrictBooleanField.VALUES.get(value, True) is not False:
            return None
        return unread_count(request.user)

    def get_queryset(self) -> QuerySet:
        manager = get_feed_model()._default_manager
        if getattr(self, "swagger_fake_view", False):
            # Schema generation has no user; only the model is needed.
            return manager.none()
        return manager.for_user(self.request.user).with_targets().order_by("-created_at", "-pk")

    @extend_schema(
        responses={200: FeedSummarySerializer, **error_responses(401, 403)},
        summary="Counts of the caller's feed",
        description="Totals by read state and activity type, and the 5 newest items.",
    )
    @action(detail=False, methods=["get"], url_path="summary")
    def summary(self, request: Request) -> Response:
        return Response(FeedSummarySerializer(feed_summary(request.user)).data)

    @extend_schema(
        request=MarkReadSerializer,
        responses={200: MarkReadResultSerializer, **error_responses(400, 401, 403, 413, 415)},
        summary="Mark some or all of the caller's items read",
        description="Other users' ids are ignored and not counted; read items stay as they are.",
    )
    @action(detail=False, methods=["post"], url_path="mark-read")
    def mark_read(self, request: Request) -> Response:
        serializer = self.validated(MarkReadSerializer, request.data)
        ids = (
            None
            if serializer.validated_data.get("mark_all")
            else serializer.validated_data["activity_ids"]
        )
        count = mark_read(request.user, ids=ids)
        message = ngettext(
            "Marked %(count)d item as read", "Marked %(count)d items as read", count
        ) % {"count": count}
        return Response(MarkReadResultSerializer({"message": message, "updated_count": count}).data)

    @extend_schema(
        request=GenerateFeedSerializer,
        responses={
            200: GenerateFeedResultSerializer,
            **error_responses(400, 401, 403, 413, 415),
        },
        summary="Build a user's feed from their past events (staff only)",
        description="Applies FEED_RULES to the user's events of the last days_back days; "
        "idempotent: a second call creates 0 items.",
    )
    @action(detail=False, methods=["post"], url_path="generate")
    def generate(self, request: Request) -> Response:
        serializer = self.validated(GenerateFeedSerializer, request.data)
        user = serializer.validated_data["user_id"]
        result = populate_feed(user=user, days_back=serializer.validated_data["days_back"])
        message = ngettext(
            "Generated %(count)d activity feed item for user %(username)s",
            "Generated %(count)d activity feed items for user %(username)s",
            result.created_count,
        ) % {"count": result.created_count, "username": user.get_username()}
        body = {
            "message": message,
            "created_count": result.created_count,
            "date_range": {"start": result.start, "end": result.end},
        }
        return Response(GenerateFeedResultSerializer(body).data, status=status.HTTP_200_OK)

    @staticmethod
    def validated(serializer_class: type, data: Any) -> Any:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer
