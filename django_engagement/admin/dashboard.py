"""The engagement dashboard page at ``<admin>/django_engagement/dashboard/``.

``install_dashboard(site)`` adds the URL (name ``admin:django_engagement_dashboard``)
to an ``AdminSite`` and a "Dashboard" row to the Engagement section of its app
list (index page, app page and sidebar). The package's admin module calls it
for Django's default ``admin.site``; a project with its own site calls
``django_engagement.admin.setup_admin(my_site)``.
"""

from __future__ import annotations

from typing import Any

import django
from django.apps import apps
from django.contrib.admin import AdminSite
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, URLResolver, path, reverse
from django.utils.translation import gettext_lazy as _

from ..models import get_event_model, get_target_model
from ..services.dashboard import DAY_CHOICES, DEFAULT_DAYS, MAX_DAYS, build_dashboard

APP_LABEL = "django_engagement"
URL_NAME = "django_engagement_dashboard"
TEMPLATE = "django_engagement/admin/dashboard.html"
# Django 6.1's admin marks breadcrumbs up as ``<ol class="breadcrumbs">`` of ``<li>`` and
# styles only that; 5.2 and 6.0 style ``<div class="breadcrumbs">``. The template follows.
BREADCRUMBS_AS_LIST = django.VERSION >= (6, 1)


def parse_days(value: str | None) -> int:
    """``?days=`` as an int in 1..MAX_DAYS; anything else falls back to the 7-day default.

    A dashboard link is bookmarked and shared, so a stale or mistyped value
    shows the default view instead of an error page.
    """
    try:
        days = int(value or "")
    except ValueError:
        return DEFAULT_DAYS
    return days if 1 <= days <= MAX_DAYS else DEFAULT_DAYS


def can_view_dashboard(request: HttpRequest) -> bool:
    """Staff who may view (or change) events: the dashboard shows what events show."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    opts = get_event_model()._meta
    return any(
        user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        for action in ("view", "change")
    )


def _admin_url(site: AdminSite, model: Any, pk: Any) -> str | None:
    """The change page of ``model`` ``pk`` on ``site``, or None when it is not registered."""
    if model is None or model not in site._registry:
        return None
    opts = model._meta
    try:
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk], current_app=site.name
        )
    except NoReverseMatch:
        return None


def _app_url(site: AdminSite) -> str | None:
    """The Engagement app page, which exists only when a package model is registered."""
    try:
        return reverse("admin:app_list", args=[APP_LABEL], current_app=site.name)
    except NoReverseMatch:
        return None


def dashboard_view(request: HttpRequest, site: AdminSite) -> HttpResponse:
    """Render the charts page; the chart data is embedded with ``json_script``."""
    if not can_view_dashboard(request):
        raise PermissionDenied
    days = parse_days(request.GET.get("days"))
    data = build_dashboard(days)
    user_model, target_model = get_user_model(), get_target_model()
    target_type = (
        f"{target_model._meta.app_label}.{target_model._meta.model_name}" if target_model else None
    )
    top_users = [
        {**row, "admin_url": _admin_url(site, user_model, row["user_id"])}
        for row in data["top_users"]
    ]
    top_targets = [
        {
            **row,
            "admin_url": _admin_url(site, target_model, row["target_id"])
            if row["target_type"] == target_type
            else None,
        }
        for row in data["top_targets"]
    ]
    request.current_app = site.name
    context = {
        **site.each_context(request),
        "title": _("Engagement dashboard"),
        "app_label": APP_LABEL,
        "app_name": apps.get_app_config(APP_LABEL).verbose_name,
        "app_url": _app_url(site),
        "breadcrumbs_as_list": BREADCRUMBS_AS_LIST,
        "days": days,
        "day_choices": DAY_CHOICES,
        "dashboard": data,
        "top_users": top_users,
        "top_targets": top_targets,
    }
    return TemplateResponse(request, TEMPLATE, context)


def _app_list_entry(site: AdminSite) -> dict[str, Any]:
    """A row shaped like the model rows of ``AdminSite.get_app_list()``."""
    return {
        # Themes that read ``model`` get a real class; the dashboard is about events.
        "model": get_event_model(),
        "name": _("Dashboard"),
        "object_name": "Dashboard",
        "perms": {"add": False, "change": False, "delete": False, "view": True},
        "admin_url": reverse(f"admin:{URL_NAME}", current_app=site.name),
        "add_url": None,
        "view_only": True,
    }


def install_dashboard(site: AdminSite) -> None:
    """Serve the dashboard from ``site`` and list it first in the Engagement app section.

    Wraps the site's ``get_urls`` and ``get_app_list`` on the instance, so it
    works on ``admin.site`` without the host changing anything. Idempotent.
    """
    if getattr(site, "_engagement_dashboard_installed", False):
        return
    get_urls, get_app_list = site.get_urls, site.get_app_list

    def view(request: HttpRequest) -> HttpResponse:
        return dashboard_view(request, site)

    def get_urls_with_dashboard() -> list[URLResolver | URLPattern]:
        dashboard = path(f"{APP_LABEL}/dashboard/", site.admin_view(view), name=URL_NAME)
        return [dashboard, *get_urls()]

    def get_app_list_with_dashboard(
        request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        app_list = get_app_list(request, app_label)
        if can_view_dashboard(request):
            for app in app_list:
                if app["app_label"] == APP_LABEL:
                    app["models"].insert(0, _app_list_entry(site))
        return app_list

    # On the instance, so any AdminSite (a host's subclass too) gets the page without subclassing.
    site.get_urls = get_urls_with_dashboard  # type: ignore[method-assign]
    site.get_app_list = get_app_list_with_dashboard  # type: ignore[method-assign]
    site._engagement_dashboard_installed = True  # type: ignore[attr-defined]
