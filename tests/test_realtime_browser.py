"""feed.js in a real headless Chromium against uvicorn: a real EventSource client.

Items are created by a separate ``django-admin shell`` process, so they reach the
server through the broker (PostgreSQL NOTIFY here; Redis pub/sub on SQLite files).
Needs /usr/bin/chromium, Playwright and a database another process can open.
"""

from __future__ import annotations

import importlib.util
import time

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from tests.conftest import require_service
from tests.helpers import redis_available
from tests.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_realtime_stream import REDIS_SETTINGS, uvicorn_server, write_from_another_process

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

NOTIFY = (
    "from django.contrib.auth import get_user_model as U; "
    "from django_engagement.services.feed import notify; "
    "notify(U().objects.filter(username='{user}'), 'event', title='{title}')"
)


@pytest.fixture
def settings_module():
    if connection.vendor == "postgresql":
        return "tests.settings"
    require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    return REDIS_SETTINGS


def test_badge_and_list_follow_items_from_another_process(
    settings_module, tmp_path, django_user_model, monkeypatch
):
    require_service(CHROMIUM.exists(), f"{CHROMIUM} is missing")
    require_service(
        importlib.util.find_spec("playwright") is not None, "playwright is not installed"
    )
    from playwright.sync_api import sync_playwright

    alice = django_user_model.objects.create_user("alice", password="pw")
    django_user_model.objects.create_user("bob", password="pw")
    client = Client()
    client.force_login(alice)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop, this thread

    with uvicorn_server(settings_module, tmp_path) as port, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.add_cookies(
                [
                    {
                        "name": settings.SESSION_COOKIE_NAME,
                        "value": session,
                        "domain": "127.0.0.1",
                        "path": "/",
                    }
                ]
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"http://127.0.0.1:{port}/live/")
            page.wait_for_function("document.getElementById('badge').textContent === '0'")
            assert page.locator("#badge").is_hidden()

            write_from_another_process(settings_module, NOTIFY.format(user="bob", title="for bob"))
            write_from_another_process(settings_module, NOTIFY.format(user="alice", title="hi"))
            written = time.monotonic()
            page.wait_for_selector("#items li", timeout=1000)
            assert time.monotonic() - written < 1.0
            page.wait_for_function("document.getElementById('badge').textContent === '1'")
            assert page.locator("#items li").all_text_contents() == ["hi"]
            page.wait_for_timeout(300)
            assert "for bob" not in page.content()
            assert errors == []
            context.close()
        finally:
            browser.close()
