"""Small views of the example project."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

FAVICON = Path(__file__).resolve().parent / "static" / "hub" / "favicon.svg"


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: browsers ask every site for it, and a 404 is a console error."""
    return HttpResponse(FAVICON.read_bytes(), content_type="image/svg+xml")


@login_required(login_url="/admin/login/")
def live_feed(request: HttpRequest) -> HttpResponse:
    """``/live/``: the unread badge and new items of ``feed.js`` (serve with uvicorn)."""
    return render(request, "hub/live.html")
