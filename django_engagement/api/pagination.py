"""Pagination of the activity feed: page numbers by default, keyset cursors as an option.

``?page=2&page_size=50`` answers ``count``, ``next``, ``previous``, ``results``;
``?pagination=cursor`` (or any request with ``?cursor=``, or ``FEED_PAGINATION =
"cursor"``) answers ``next``, ``previous``, ``results`` with opaque cursors. A
cursor page is a keyset seek on ``(user, -created_at)``: page 5,000 costs what
page 1 costs, and no ``COUNT(*)`` runs.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import Paginator
from django.utils.dateparse import parse_datetime
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import (
    BasePagination,
    Cursor,
    CursorPagination,
    PageNumberPagination,
)
from rest_framework.request import Request

from ..conf import engagement_settings

PAGE = "page"
CURSOR = "cursor"
PAGINATION_QUERY_PARAM = "pagination"


class IntegerPageSizeMixin:
    """A ``page_size`` that is no integer is a 400 (DRF would quietly use the default)."""

    page_size_query_param = "page_size"

    def get_page_size(self, request: Request) -> int | None:
        value = request.query_params.get(self.page_size_query_param)
        if value is not None:
            try:
                int(value)
            except ValueError:
                raise ValidationError({self.page_size_query_param: ["A whole number."]}) from None
        return super().get_page_size(request)  # type: ignore[misc]


class KnownCountPaginator(Paginator):
    """Django's paginator with the item count given up front (no ``COUNT(*)``) when known."""

    known_count: int | None = None

    @cached_property
    def count(self) -> int:
        if self.known_count is not None:
            return self.known_count
        return super().count


class FeedPagination(IntegerPageSizeMixin, PageNumberPagination):
    """``?page=2&page_size=50``; answers ``count``, ``next``, ``previous``, ``results``.

    ``known_count``, when the view sets it (the unread list: the user's counter
    row), is the ``count`` instead of a ``COUNT(*)`` of the items.
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    known_count: int | None = None

    def django_paginator_class(self, object_list, per_page):  # type: ignore[override]
        paginator = KnownCountPaginator(object_list, per_page)
        paginator.known_count = self.known_count
        return paginator


class FeedCursorPagination(IntegerPageSizeMixin, CursorPagination):
    """``?cursor=...&page_size=50``, newest first; ties on ``created_at`` broken by ``-pk``."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = ("-created_at", "-pk")

    def decode_cursor(self, request: Request) -> Cursor | None:
        """DRF's decoding, plus a check that the position is a date-time.

        A forged cursor (``p=abc``) would otherwise reach the ``created_at`` filter
        and fail there as a 500; it is an invalid cursor (404), like any other.
        """
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            try:
                valid = parse_datetime(str(cursor.position)) is not None
            except ValueError:
                valid = False
            if not valid:
                raise NotFound(self.invalid_cursor_message)
        return cursor


PAGINATORS: dict[str, type[BasePagination]] = {
    PAGE: FeedPagination,
    CURSOR: FeedCursorPagination,
}


def feed_pagination_mode(request: Request | None) -> str:
    """``"page"`` or ``"cursor"`` for this request: ``?pagination=``, a ``?cursor=``, the setting.

    An unknown ``?pagination=`` value is a 400; an unknown setting value is a
    configuration error.
    """
    default = engagement_settings.FEED_PAGINATION
    if default not in PAGINATORS:
        raise ImproperlyConfigured(
            f"ENGAGEMENT FEED_PAGINATION must be 'page' or 'cursor', got {default!r}."
        )
    if request is None:
        return default
    params = request.query_params
    mode = params.get(PAGINATION_QUERY_PARAM)
    if mode is None:
        return CURSOR if CURSOR in params else default
    if mode not in PAGINATORS:
        raise ValidationError({PAGINATION_QUERY_PARAM: [_("Use page or cursor.")]})
    return mode


def feed_paginator(request: Request | None) -> BasePagination:
    """The paginator instance for one feed list request."""
    return PAGINATORS[feed_pagination_mode(request)]()
