"""Pagination of the activity feed: DRF page numbers, 20 items by default, at most 100."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class FeedPagination(PageNumberPagination):
    """``?page=2&page_size=50``; answers ``count``, ``next``, ``previous``, ``results``."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
