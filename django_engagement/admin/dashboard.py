"""The engagement dashboard page at ``<admin>/django_engagement/dashboard/``.

``install_dashboard(site)`` adds the URL (name ``admin:django_engagement_dashboard``)
to an ``AdminSite`` and a "Dashboard" row to the Engagement section of its app
list (index page, app page and sidebar). The package's admin module calls it
for Django's default ``admin.site``; a project with its own site calls
``django_engagement.admin.setup_admin(my_site)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import django
from django.apps import apps
from django.contrib.admin import AdminSite
from django.contrib.auth import get_permission_codename, get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, URLResolver, path, reverse
from django.utils.translation import gettext_lazy as _

from ..conf import engagement_settings
from ..models import get_event_model, get_target_model
from ..models.base import event_type_label
from ..services import analytics, cohorts
from ..services.cohorts import MAX_FUNNEL_STEPS, MIN_FUNNEL_STEPS
from ..services.csv_writer import csv_chunks
from ..services.dashboard import (
    CSV_CHARTS,
    DAY_CHOICES,
    DEFAULT_DAYS,
    KPI_KEYS,
    MAX_DAYS,
    build_admin_dashboard,
    chart_csv,
)
from ..validators import EVENT_TYPE_PATTERN

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


MAX_TARGET_CHOICES = 500
MAX_GROUP_CHOICES = 200


class DashboardQueryError(ValueError):
    """A query parameter the dashboard cannot honour: the page answers 400 with it."""


@dataclass
class DashboardQuery:
    """The dashboard's query string, parsed: window, scope, funnel steps, CSV chart."""

    window: analytics.DateWindow
    days: int | None  # the preset, None for a custom range
    scope: cohorts.Scope
    steps: list[str]
    download: str | None


def _parse_date(value: str, name: str) -> date:
    try:
        return analytics.check_day(date.fromisoformat(value))
    except ValueError:
        raise DashboardQueryError(f"{name} must be a date (YYYY-MM-DD), got {value!r}.") from None


def parse_query(params: QueryDict) -> DashboardQuery:
    """Read ``days`` or ``start``/``end``, ``target`` or ``group``, ``step`` (repeated) and
    ``download``; raises ``DashboardQueryError`` with a one-line reason."""
    start, end = params.get("start", "").strip(), params.get("end", "").strip()
    days: int | None = None
    if start or end:
        if not (start and end):
            raise DashboardQueryError("A custom range needs both start and end.")
        first, last = _parse_date(start, "start"), _parse_date(end, "end")
        if first > last:
            raise DashboardQueryError(f"start {first} is after end {last}.")
        if (last - first).days + 1 > MAX_DAYS:
            raise DashboardQueryError(f"A range is at most {MAX_DAYS} days long.")
        window = analytics.DateWindow(first, last)
    else:
        days = parse_days(params.get("days"))
        window = analytics.DateWindow.last_days(days)
    target_value, group = params.get("target", "").strip(), params.get("group", "").strip()
    if target_value and group:
        raise DashboardQueryError("Choose a target or a group, not both.")
    try:
        target = cohorts.parse_target(target_value) if target_value else None
        scope = cohorts.Scope(target=target, group=group or None)
    except ValueError as error:
        raise DashboardQueryError(str(error)) from None
    steps = [step.strip() for step in params.getlist("step") if step.strip()]
    if steps and not MIN_FUNNEL_STEPS <= len(steps) <= MAX_FUNNEL_STEPS:
        raise DashboardQueryError(
            f"A funnel has {MIN_FUNNEL_STEPS} to {MAX_FUNNEL_STEPS} steps, got {len(steps)}."
        )
    for step in steps:
        if not EVENT_TYPE_PATTERN.match(step):
            raise DashboardQueryError(f"{step[:70]!r} is not an event type code.")
    download = params.get("download") or None
    if download is not None and download not in CSV_CHARTS:
        raise DashboardQueryError(f"download must be one of: {', '.join(CSV_CHARTS)}.")
    return DashboardQuery(window, days, scope, steps, download)


class Links:
    """Event changelist URLs filtered like a chart element: the changelist's own query
    parameters (``event_type``, ``created_at__gte``/``__lt``) plus the scope's target."""

    def __init__(self, site: AdminSite, scope: cohorts.Scope) -> None:
        opts = get_event_model()._meta
        try:
            self.base: str | None = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=site.name
            )
        except NoReverseMatch:
            self.base = None
        self.scope_params: dict[str, str] = {}
        if not scope.is_all:
            self.content_type_id = str(scope.content_type().pk)
            self.scope_params["target_content_type"] = self.content_type_id
            if scope.target is not None:
                self.scope_params["target_object_id"] = str(scope.target)
            else:
                self.scope_params["target_object_id__in"] = ",".join(scope.group_target_ids())

    def events(self, start: date, end: date, **params: Any) -> str | None:
        if self.base is None:
            return None
        span = analytics.DateWindow(start, end)
        query = {
            **self.scope_params,
            "created_at__gte": span.start_at.isoformat(),
            "created_at__lt": span.end_before.isoformat(),
            **{key: str(value) for key, value in params.items()},
        }
        return f"{self.base}?{urlencode(query)}"

    def day(self, iso: str, **params: Any) -> str | None:
        day = date.fromisoformat(iso)
        return self.events(day, day, **params)

    def target(self, content_type_id: int, object_id: Any, start: date, end: date) -> str | None:
        """The joins of one target in the window (the target replaces the scope's)."""
        if self.base is None:
            return None
        span = analytics.DateWindow(start, end)
        query = {
            "target_content_type": str(content_type_id),
            "target_object_id": str(object_id),
            "event_type": engagement_settings.JOIN_EVENT,
            "created_at__gte": span.start_at.isoformat(),
            "created_at__lt": span.end_before.isoformat(),
        }
        return f"{self.base}?{urlencode(query)}"


def _with_links(
    data: dict[str, Any], links: Links, site: AdminSite, window: analytics.DateWindow
) -> dict[str, Any]:
    """The dashboard data with the changelist URL of every point, bar and row."""
    start, end = window.start, window.end
    join_event, leave_event = engagement_settings.JOIN_EVENT, engagement_settings.LEAVE_EVENT
    for row in data["events_per_day"]:
        row["links"] = {"count": links.day(row["date"])}
    for row in data["daily_users"]:
        url = links.day(row["date"])
        row["links"] = {"users": url, "anonymous": url}
    for row in data["joins_leaves_per_day"]:
        row["links"] = {
            "joins": links.day(row["date"], event_type=join_event),
            "leaves": links.day(row["date"], event_type=leave_event),
        }
    for row in data["events_by_type"]:
        row["url"] = links.events(start, end, event_type=row["event_type"])
    for step in data["funnel"]:
        step["url"] = links.events(start, end, event_type=step["event_type"])
    kpi_types = {"joins": join_event, "leaves": leave_event}
    for key, kpi in data["kpis"].items():
        if key in kpi_types:
            kpi["url"] = links.events(start, end, event_type=kpi_types[key])
        elif key != "feed_items":
            kpi["url"] = links.events(start, end)
    for cohort in data["retention"]["cohorts"]:
        week = date.fromisoformat(cohort["week"])
        cohort["url"] = links.events(max(week, start), min(week + timedelta(days=6), end))
    user_model, target_model = get_user_model(), get_target_model()
    for row in data["top_users"]:
        row["admin_url"] = _admin_url(site, user_model, row["user_id"])
        row["events_url"] = links.events(start, end, user=row["user_id"])
    target_type = (
        f"{target_model._meta.app_label}.{target_model._meta.model_name}" if target_model else None
    )
    content_types = ContentType.objects.db_manager(analytics.read_database())
    for row in data["top_targets"]:
        is_target = row["target_type"] == target_type
        row["admin_url"] = _admin_url(site, target_model, row["target_id"]) if is_target else None
        # Cached by ContentType's manager: one query per model the first time, then none.
        content_type = content_types.get_by_natural_key(*row["target_type"].split(".", 1))
        row["events_url"] = links.target(content_type.pk, row["target_id"], start, end)
    return data


def _retention_rows(retention: dict[str, Any]) -> list[dict[str, Any]]:
    """Heatmap rows: each cell's users and share of the cohort (0..1, for the colour)."""
    rows = []
    for cohort in retention["cohorts"]:
        size = cohort["users"]
        cells = [
            {
                "users": users,
                "percent": round(100 * users / size) if size else None,
                "heat": f"{users / size:.2f}" if size else "0",
            }
            for users in cohort["active"]
        ]
        rows.append({**cohort, "cells": cells})
    return rows


def _picker_choices(scope: cohorts.Scope) -> tuple[list[tuple[str, str]], list[str]]:
    """Targets (pk, name) and group names for the pickers: one query each, capped."""
    model = get_target_model()
    if model is None:
        return [], []
    manager = model._default_manager.using(analytics.read_database())
    name_field = engagement_settings.TARGET_NAME_FIELD or "pk"
    targets = [
        (str(pk), str(name))
        for pk, name in manager.order_by(name_field, "pk").values_list("pk", name_field)[
            :MAX_TARGET_CHOICES
        ]
    ]
    group_field = engagement_settings.TARGET_GROUP_FIELD
    groups: list[str] = []
    if group_field:
        groups = [
            str(name)
            for name in manager.exclude(**{f"{group_field}__isnull": True})
            .order_by(group_field)
            .values_list(group_field, flat=True)
            .distinct()[:MAX_GROUP_CHOICES]
        ]
    return targets, groups


def _query_string(params: dict[str, Any]) -> str:
    return urlencode([(k, v) for k, v in params.items() if v not in (None, "", [])], doseq=True)


def dashboard_view(request: HttpRequest, site: AdminSite) -> HttpResponse | StreamingHttpResponse:
    """Render the charts page (chart data embedded with ``json_script``), or one chart's
    CSV with ``?download=<chart>``; a bad parameter answers 400 with its reason."""
    if not can_view_dashboard(request):
        raise PermissionDenied
    request.current_app = site.name
    context: dict[str, Any] = {
        **site.each_context(request),
        "title": _("Engagement dashboard"),
        "app_label": APP_LABEL,
        "app_name": apps.get_app_config(APP_LABEL).verbose_name,
        "app_url": _app_url(site),
        "breadcrumbs_as_list": BREADCRUMBS_AS_LIST,
        "day_choices": DAY_CHOICES,
        "presets": [{"days": choice, "query": f"days={choice}"} for choice in DAY_CHOICES],
        "funnel_steps": [""] * MAX_FUNNEL_STEPS,
    }
    try:
        query = parse_query(request.GET)
    except DashboardQueryError as error:
        return TemplateResponse(request, TEMPLATE, {**context, "error": str(error)}, status=400)
    data = build_admin_dashboard(query.window, query.scope, query.steps)
    if query.download:
        header, rows = chart_csv(data, query.download)
        response = StreamingHttpResponse(csv_chunks(header, rows), content_type="text/csv")
        name = f"engagement-{query.download}-{data['start']}-{data['end']}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    data = _with_links(data, Links(site, query.scope), site, query.window)
    targets, groups = _picker_choices(query.scope)
    selected_target = "" if query.scope.target is None else str(query.scope.target)
    scope_params: dict[str, Any] = {
        "target": selected_target,
        "group": query.scope.group or "",
        "step": query.steps,
    }
    range_params = (
        {"days": query.days}
        if query.days is not None
        else {"start": data["start"], "end": data["end"]}
    )
    known_types = sorted(
        {
            *(engagement_settings.EVENT_TYPES or ()),
            *(r["event_type"] for r in data["events_by_type"]),
        }
        | set(query.steps)
    )
    steps = [*query.steps, *[""] * (MAX_FUNNEL_STEPS - len(query.steps))]
    target_names = dict(targets)
    context.update(
        {
            "days": query.days,
            "dashboard": data,
            "top_users": data["top_users"],
            "top_targets": data["top_targets"],
            "kpis": [
                {"key": key, "label": KPI_LABELS[key], **data["kpis"][key]} for key in KPI_KEYS
            ],
            "presets": [
                {"days": choice, "query": _query_string({"days": choice, **scope_params})}
                for choice in DAY_CHOICES
            ],
            "target_choices": targets,
            "group_choices": groups,
            "has_target_model": get_target_model() is not None,
            "has_groups": bool(engagement_settings.TARGET_GROUP_FIELD),
            "selected_target": scope_params["target"],
            "selected_group": scope_params["group"],
            "scope_name": target_names.get(selected_target, selected_target)
            or (query.scope.group or ""),
            "target_label": engagement_settings.TARGET_LABEL,
            "group_label": engagement_settings.TARGET_GROUP_LABEL,
            "event_type_choices": [(code, event_type_label(code)) for code in known_types],
            "funnel_steps": steps,
            "funnel_first": data["funnel"][0]["users"] if data["funnel"] else 0,
            "retention_rows": _retention_rows(data["retention"]),
            "csv_query": _query_string({**range_params, **scope_params}),
        }
    )
    return TemplateResponse(request, TEMPLATE, context)


KPI_LABELS = {
    "events": _("Events"),
    "unique_users": _("Unique users"),
    "unique_anonymous": _("Anonymous visitors"),
    "feed_items": _("Feed items"),
    "joins": _("Joins"),
    "leaves": _("Leaves"),
}


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

    def view(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
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
