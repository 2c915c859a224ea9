"""Django admin for django-engagement: events, feed items, aggregates, stored reports and
the dashboard.

Registered on ``django.contrib.admin.site`` by admin autodiscovery. The event
and feed admins follow a swap (``ENGAGEMENT_EVENT_MODEL`` /
``ENGAGEMENT_FEED_MODEL``): this module is imported after the app registry is
ready, so the getters can run at import. A project with its own ``AdminSite``
registers everything on it with::

    from django_engagement.admin import setup_admin

    setup_admin(my_site)
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import AdminSite

from ..models import (
    EventAggregateDaily,
    EventDayTotal,
    EventPeriodAggregate,
    EventPeriodTotal,
    FeedEmail,
    NotificationPreference,
    Report,
    TargetMute,
    get_event_model,
    get_feed_model,
)
from .dashboard import can_view_dashboard, dashboard_view, install_dashboard
from .options import (
    ActivityFeedItemAdmin,
    EventAdmin,
    EventAggregateDailyAdmin,
    EventDayTotalAdmin,
    EventPeriodAggregateAdmin,
    EventPeriodTotalAdmin,
    FeedEmailAdmin,
    NotificationPreferenceAdmin,
    ReportAdmin,
    TargetMuteAdmin,
)

__all__ = [
    "ActivityFeedItemAdmin",
    "EventAdmin",
    "EventAggregateDailyAdmin",
    "EventDayTotalAdmin",
    "EventPeriodAggregateAdmin",
    "EventPeriodTotalAdmin",
    "FeedEmailAdmin",
    "NotificationPreferenceAdmin",
    "ReportAdmin",
    "TargetMuteAdmin",
    "can_view_dashboard",
    "dashboard_view",
    "install_dashboard",
    "setup_admin",
]


def setup_admin(site: AdminSite) -> None:
    """Register the ModelAdmins on ``site`` and add the dashboard page to it."""
    site.register(get_event_model(), EventAdmin)
    site.register(get_feed_model(), ActivityFeedItemAdmin)
    site.register(EventAggregateDaily, EventAggregateDailyAdmin)
    site.register(EventDayTotal, EventDayTotalAdmin)
    site.register(EventPeriodAggregate, EventPeriodAggregateAdmin)
    site.register(EventPeriodTotal, EventPeriodTotalAdmin)
    site.register(NotificationPreference, NotificationPreferenceAdmin)
    site.register(TargetMute, TargetMuteAdmin)
    site.register(FeedEmail, FeedEmailAdmin)
    site.register(Report, ReportAdmin)
    install_dashboard(site)


setup_admin(admin.site)
