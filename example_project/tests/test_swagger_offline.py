"""Swagger UI at /api/docs/ renders with no network: its assets are sidecar static files.

Runs in Debian's Chromium through Playwright with every non-loopback request aborted;
skipped without them (a failure under ENGAGEMENT_REQUIRE_SERVICES=1, as in CI).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("drf_spectacular") is None, reason="drf-spectacular is not installed"
)


def test_swagger_page_links_local_assets(client):
    html = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html


@pytest.mark.django_db(transaction=True)
def test_swagger_ui_renders_offline(live_server, monkeypatch):
    missing = [
        reason
        for ok, reason in [
            (CHROMIUM.exists(), f"{CHROMIUM} is missing"),
            (importlib.util.find_spec("playwright") is not None, "playwright is not installed"),
        ]
        if not ok
    ]
    if missing:
        if os.environ.get("ENGAGEMENT_REQUIRE_SERVICES") == "1":
            pytest.fail(missing[0])
        pytest.skip(missing[0])
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    blocked: list[str] = []

    def local_only(route) -> None:
        if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", local_only)
            page.goto(f"{live_server.url}/api/docs/")
            title = page.locator(".swagger-ui .info .title")
            title.wait_for(timeout=15_000)
            assert title.inner_text().startswith("django-engagement example API")
            assert page.locator(".opblock-summary-path").count() >= 11
        finally:
            browser.close()
    assert blocked == []
