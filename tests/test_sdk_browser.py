"""posthog-js and @segment/analytics-next, from npm, in headless Chromium via Playwright.

The SDK bundles and the test page are served by a static file server on 127.0.0.1; the
API is the ``live_server`` on another port, so every call is cross-origin (CORS
preflights included). Nothing is fetched from a CDN: every request the page makes is
recorded and must go to loopback. The first request that carries the batch of 250 is
delivered to the server but answered 500, so the SDK retries the same messages: the
stored rows must not change. Needs ``npm ci`` in tests/js (``.ci/run`` does it).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
import time
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connections

from django_engagement.models import get_event_model
from tests.conftest import require_service
from tests.sdk_helpers import BATCH, configure
from tests.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS

NODE_MODULES = Path(__file__).parent / "js" / "node_modules"
ANALYTICS_NEXT = NODE_MODULES / "@segment" / "analytics-next" / "dist" / "umd"
POSTHOG_JS = NODE_MODULES / "posthog-js" / "dist"

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def shared_database():
    """The live server's threads and the test share one in-memory SQLite connection, which
    makes concurrent SDK requests fail at random; these run on PostgreSQL and on a SQLite
    file (``.ci/run`` does both)."""
    connection = connections["default"]
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip(
            "the SDK browser tests need a database file (in-memory SQLite is one connection)"
        )


PAGE = "<!doctype html><html><head><title>SDK test</title>{scripts}</head><body></body></html>"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def static_server(tmp_path):
    """The SDK bundles and test pages on 127.0.0.1:<free port>."""
    require_service(
        ANALYTICS_NEXT.exists() and POSTHOG_JS.exists(),
        "tests/js/node_modules is missing: run `npm ci --prefix tests/js`",
    )
    (tmp_path / "analytics-next").mkdir()
    (tmp_path / "analytics-next" / "bundles").symlink_to(ANALYTICS_NEXT)
    (tmp_path / "posthog-js").symlink_to(POSTHOG_JS)
    (tmp_path / "segment.html").write_text(
        PAGE.format(scripts='<script src="/analytics-next/bundles/index.js"></script>')
    )
    (tmp_path / "posthog.html").write_text(
        PAGE.format(scripts='<script src="/posthog-js/array.full.js"></script>')
    )
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(live_server, static_server, engagement_settings, no_tracking, monkeypatch):
    require_service(CHROMIUM.exists(), f"{CHROMIUM} is missing")
    require_service(
        importlib.util.find_spec("playwright") is not None, "playwright is not installed"
    )
    from playwright.sync_api import sync_playwright

    configure(engagement_settings, SDK_CORS_ORIGINS=[static_server])
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.requested = []
            page.errors = []
            page.on("request", lambda request: page.requested.append(request.url))
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            yield page
            # Stop the SDKs (timers, unload beacons) while the live server still answers,
            # so no request thread holds a database connection at teardown.
            page.goto("about:blank")
            page.wait_for_timeout(1000)
        finally:
            chromium.close()
            # Playwright runs the test in a greenlet with its own context, hence its own
            # database connection: close it, or the test database cannot be dropped.
            connections.close_all()


def fail_first_delivery(page, pattern: str, marker: str) -> list[int]:
    """Deliver the first request whose body has ``marker``, then answer it 500 (a lost reply)."""
    failed: list[int] = []

    def handle(route):
        body = route.request.post_data_buffer or b""
        if not failed and marker.encode() in _plain(body):
            response = route.fetch()
            failed.append(response.status)
            route.fulfill(status=500, body='{"code": "test", "message": "lost reply"}')
        else:
            route.continue_()

    page.route(pattern, handle)
    return failed


def _plain(body: bytes) -> bytes:
    import gzip

    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def wait_for_rows(page, expected: int, *, timeout: float = 60) -> None:
    """Until ``expected`` rows are stored, then a little longer to catch duplicates."""
    Event = get_event_model()
    deadline = time.monotonic() + timeout
    while Event.objects.count() < expected and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_timeout(2000)


def assert_only_loopback(page) -> None:
    hosts = {urlsplit(url).hostname for url in page.requested}
    assert hosts <= LOCAL_HOSTS, hosts
    assert page.errors == []


def assert_browser_rows(user, *, anonymous_id: str, source: str, title: str) -> None:
    events = list(get_event_model().objects.order_by("created_at", "pk"))
    singles = [event for event in events if event.event_type != "viewed_item"]
    batch = [event for event in events if event.event_type == "viewed_item"]
    assert Counter(event.event_type for event in singles) == Counter(
        ["order_completed", "page_view", "identify", "signed_up", "clicked_button"]
    )
    assert len(batch) == BATCH
    assert sorted(event.data["n"] for event in batch) == list(range(BATCH))
    assert {event.source for event in events} == {source}
    assert {event.user_id for event in events} == {user.pk}  # before identify too
    assert {event.anonymous_id for event in events} == {anonymous_id}
    by_type = {event.event_type: event for event in singles}
    assert by_type["order_completed"].data["total"] == 30
    assert by_type["page_view"].title == title
    assert by_type["page_view"].data["path"] == "/home"
    assert by_type["identify"].data["plan"] == "pro"
    assert by_type["clicked_button"].data["button"] == "buy"
    assert {event.ip_address for event in events} == {"127.0.0.0"}
    assert all("Chrome" in event.user_agent for event in events)
    assert len({event.idempotency_key for event in events}) == len(events)


def test_analytics_next(page, live_server, static_server, user_factory):
    user = user_factory(username="browser-user")
    failed = fail_first_delivery(page, "**/segment/v1/b", '"n":0')
    page.goto(f"{static_server}/segment.html")
    api_host = f"{urlsplit(live_server.url).netloc}/api/engagement/segment/v1"
    anonymous_id = page.evaluate(
        """async ([apiHost, cdnURL, userId, count]) => {
            const settings = {integrations: {"Segment.io": {
                apiKey: "wk_web", apiHost, protocol: "http",
                deliveryStrategy: {strategy: "batching", config: {size: count, timeout: 500}},
            }}};
            const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
                {writeKey: "wk_web", cdnSettings: settings, cdnURL}
            );
            await analytics.track("Order Completed", {total: 30});
            await analytics.page("Home", {path: "/home"});
            await analytics.identify(userId, {plan: "pro"});
            await analytics.track("Signed Up");
            await analytics.track("Clicked Button", {button: "buy"});
            await Promise.all(
                Array.from({length: count}, (_, n) => analytics.track("Viewed Item", {n}))
            );
            return analytics.user().anonymousId();
        }""",
        [api_host, static_server, str(user.pk), BATCH],
    )
    wait_for_rows(page, 5 + BATCH)
    assert failed == [200]
    assert_only_loopback(page)
    assert_browser_rows(user, anonymous_id=anonymous_id, source="web", title="Home")


def test_analytics_next_one_request_per_call(page, live_server, static_server, user_factory):
    """analytics.js's default delivery: each call its own request to /t, /p or /i."""
    user = user_factory(username="browser-user")
    failed = fail_first_delivery(page, "**/segment/v1/t", "Order Completed")
    page.goto(f"{static_server}/segment.html")
    api_host = f"{urlsplit(live_server.url).netloc}/api/engagement/segment/v1"
    anonymous_id = page.evaluate(
        """async ([apiHost, cdnURL, userId]) => {
            const settings = {integrations: {"Segment.io": {
                apiKey: "wk_ios", apiHost, protocol: "http",
            }}};
            const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
                {writeKey: "wk_ios", cdnSettings: settings, cdnURL}
            );
            await analytics.track("Order Completed", {total: 30});
            await analytics.page("Home", {path: "/home"});
            await analytics.identify(userId, {plan: "pro"});
            await analytics.track("Signed Up");
            return analytics.user().anonymousId();
        }""",
        [api_host, static_server, str(user.pk)],
    )
    wait_for_rows(page, 4)
    assert failed == [200]  # stored, answered 500, retried: still one row
    paths = Counter(
        urlsplit(url).path.rsplit("/", 1)[-1] for url in page.requested if "/segment/v1/" in url
    )
    assert paths["b"] == 0
    assert paths["p"] == 1 and paths["i"] == 1
    assert paths["t"] == 3  # two tracks, one of them delivered twice
    assert_only_loopback(page)
    events = {event.event_type: event for event in get_event_model().objects.all()}
    assert sorted(events) == ["identify", "order_completed", "page_view", "signed_up"]
    assert get_event_model().objects.count() == 4
    assert {event.user_id for event in events.values()} == {user.pk}
    assert {event.anonymous_id for event in events.values()} == {anonymous_id}
    assert {event.source for event in events.values()} == {"ios"}
    assert events["order_completed"].data == {"total": 30}
    assert events["page_view"].title == "Home"


def test_posthog_js(page, live_server, static_server, user_factory):
    user = user_factory(username="browser-user")
    failed = fail_first_delivery(page, "**/posthog/e/**", '"n":0')
    page.goto(f"{static_server}/posthog.html")
    device_id = page.evaluate(
        """async ([apiHost, userId, count]) => {
            await new Promise((resolve) => posthog.init("phc_android", {
                api_host: apiHost, autocapture: false, capture_pageview: false,
                capture_pageleave: false, disable_session_recording: true,
                capture_performance: false, persistence: "memory", loaded: resolve,
                opt_out_useragent_filter: true,  // headless Chromium looks like a bot
                rate_limiting: {events_per_second: 1000, events_burst_limit: 1000},
            }));
            posthog.capture("Order Completed", {total: 30});
            posthog.capture("$pageview", {path: "/home"});  // title: document.title
            posthog.identify(userId, {plan: "pro"});
            posthog.capture("Signed Up");
            posthog.capture("Clicked Button", {button: "buy"});
            for (let n = 0; n < count; n++) posthog.capture("Viewed Item", {n});
            return posthog.get_property("$device_id");
        }""",
        [f"{live_server.url}/api/engagement/posthog", str(user.pk), BATCH],
    )
    wait_for_rows(page, 5 + BATCH)
    assert failed == [200]
    assert_only_loopback(page)
    assert_browser_rows(user, anonymous_id=device_id, source="android", title="SDK test")


def test_sdk_bundles_come_from_the_npm_lockfile():
    """The bundles are what npm installed, unmodified (no local patches)."""
    lock = json.loads((Path(__file__).parent / "js" / "package-lock.json").read_text())
    names = set(lock["packages"])
    assert {"node_modules/posthog-js", "node_modules/@segment/analytics-next"} <= names
