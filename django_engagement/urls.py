"""URLs of the HTTP API; include them under any prefix::

    path("api/engagement/", include("django_engagement.urls"))

URL names are ``django_engagement:engagement-<resource>[-<action>]``.
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import feed, ingest, reports, root

app_name = "django_engagement"

router = SimpleRouter()
router.register("activity-feed", feed.ActivityFeedViewSet, basename="engagement-activity-feed")

urlpatterns = [
    path("", root.ApiRootView.as_view(), name="engagement-api-root"),
    path("events/", ingest.EventIngestView.as_view(), name="engagement-events"),
    path(
        "reports/daily-summary/",
        reports.DailySummaryView.as_view(),
        name="engagement-reports-daily-summary",
    ),
    path(
        "reports/active-users/",
        reports.ActiveUsersView.as_view(),
        name="engagement-reports-active-users",
    ),
    path("reports/top/", reports.TopValuesView.as_view(), name="engagement-reports-top"),
    path("reports/export/", reports.EventExportView.as_view(), name="engagement-reports-export"),
    path(
        "reports/dashboard/", reports.DashboardView.as_view(), name="engagement-reports-dashboard"
    ),
    *router.urls,
]
