"""URLs of the HTTP API; include them under any prefix::

    path("api/engagement/", include("django_engagement.urls"))

URL names are ``django_engagement:engagement-<resource>[-<action>]``.
"""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from .api import feed, ingest, preferences, reports, root, stored_reports, stream, unsubscribe
from .api.sdk import posthog, segment

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
    path(
        "reports/saved/",
        stored_reports.StoredReportListView.as_view(),
        name="engagement-reports-saved-list",
    ),
    path(
        "reports/saved/generate/",
        stored_reports.GenerateReportView.as_view(),
        name="engagement-reports-saved-generate",
    ),
    path(
        "reports/saved/<int:pk>/",
        stored_reports.StoredReportDetailView.as_view(),
        name="engagement-reports-saved-detail",
    ),
    # Ids are digits: anything else under reports/saved/ is a JSON 404, not Django's page.
    re_path(
        r"^reports/saved/[\s\S]*/$",
        root.NotFoundView.as_view(),
        name="engagement-reports-saved-not-found",
    ),
    # Before the router, whose activity-feed/<pk>/ would take "stream".
    path("activity-feed/stream/", stream.feed_stream, name="engagement-activity-feed-stream"),
    # Before the router's activity-feed/<pk>/ detail route.
    path(
        "activity-feed/preferences/",
        preferences.PreferencesView.as_view(),
        name="engagement-activity-feed-preferences",
    ),
    path(
        "unsubscribe/<str:token>/",
        unsubscribe.UnsubscribeView.as_view(),
        name="engagement-unsubscribe",
    ),
    *router.urls,
    # Ids are digits (lookup_value_regex): anything else under activity-feed/ is a JSON
    # 404, not Django's HTML page. Paths without the slash still get APPEND_SLASH.
    re_path(r"^activity-feed/[\s\S]*/$", root.NotFoundView.as_view(), name="engagement-not-found"),
]

# SDK wire protocols (docs/guide/sdks.md): Segment/RudderStack under segment/, PostHog
# under posthog/. Names: engagement-sdk-<protocol>-<path>.
urlpatterns += [
    path(
        "segment/v1/batch", segment.SegmentBatchView.as_view(), name="engagement-sdk-segment-batch"
    ),
    path("segment/v1/b", segment.SegmentBatchView.as_view(), name="engagement-sdk-segment-b"),
    *(
        path(
            f"segment/v1/{name}",
            segment.SegmentMessageView.as_view(message_type=message_type),
            name=f"engagement-sdk-segment-{name}",
        )
        for name, message_type in [
            *((t, t) for t in segment.TYPES),
            *segment.SHORT_PATHS.items(),
        ]
    ),
    *(
        path(route, posthog.PostHogCaptureView.as_view(), name=f"engagement-sdk-posthog-{name}")
        for name, route in [
            ("batch", "posthog/batch/"),
            ("e", "posthog/e/"),
            ("i-v0-e", "posthog/i/v0/e/"),
            ("capture", "posthog/capture/"),
            ("track", "posthog/track/"),
        ]
    ),
    path("posthog/flags/", posthog.PostHogFlagsView.as_view(), name="engagement-sdk-posthog-flags"),
    path(
        "posthog/array/<str:token>/config.js",
        posthog.PostHogConfigScriptView.as_view(),
        name="engagement-sdk-posthog-config-js",
    ),
    path(
        "posthog/array/<str:token>/config",
        posthog.PostHogConfigView.as_view(),
        name="engagement-sdk-posthog-config",
    ),
]
