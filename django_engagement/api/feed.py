"""Placeholder: replaced by the activity feed viewset (issue 4)."""

from rest_framework.viewsets import ViewSet


class ActivityFeedViewSet(ViewSet):
    pass
