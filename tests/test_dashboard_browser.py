"""The admin dashboard in a real headless Chromium: charts render from embedded data.

Needs /usr/bin/chromium and Playwright; skipped with a reason without them (a failure
under ENGAGEMENT_REQUIRE_SERVICES=1). A screenshot of each theme goes to /tmp.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import require_service
from tests.test_services_dashboard import NO_TRACKING, make_known_events

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1"}
DASHBOARD = "/admin/django_engagement/dashboard/"

pytestmark = pytest.mark.services


@pytest.fixture
def known_data(transactional_db, engagement_settings, django_user_model):
    """Data first: the browser's event loop forbids ORM calls once it runs."""
    engagement_settings.update(TRACK=NO_TRACKING)
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    return make_known_events(django_user_model)


@pytest.fixture
def browser(known_data, live_server, monkeypatch):
    require_service(CHROMIUM.exists(), f"{CHROMIUM} is missing")
    require_service(
        importlib.util.find_spec("playwright") is not None, "playwright is not installed"
    )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the live server's
    # ORM calls happen in its own thread, these only guard the test thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Session:
    """One browser page that records console errors and every requested URL."""

    def __init__(self, browser, base_url: str, color_scheme: str = "light") -> None:
        self.base_url = base_url
        self.page = browser.new_page(
            viewport={"width": 1280, "height": 900}, color_scheme=color_scheme
        )
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.urls.append(request.url))

    def _console(self, message) -> None:
        # Chromium asks every site for /favicon.ico; the test project has none.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            self.errors.append(f"{message.text} ({message.location['url']})")

    def login(self) -> None:
        self.page.goto(f"{self.base_url}/admin/login/?next={DASHBOARD}")
        self.page.fill("#id_username", "admin")
        self.page.fill("#id_password", "pw")
        self.page.click("input[type=submit]")
        self.page.wait_for_url(f"**{DASHBOARD}")

    def count(self, selector: str) -> int:
        return self.page.locator(selector).count()

    def foreign_requests(self) -> list[str]:
        return [url for url in self.urls if urlsplit(url).hostname not in LOCAL_HOSTS]


def test_dashboard_draws_charts_from_embedded_data(browser, live_server):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page

    assert session.count("#chart-events-per-day svg .ed-point") == 7
    assert session.count("#chart-joins-leaves svg .ed-series-0 .ed-point") == 7
    assert session.count("#chart-joins-leaves svg .ed-series-1 .ed-point") == 7
    assert session.count("#chart-events-by-type svg rect.ed-bar") == 4
    bar_labels = page.locator("#chart-events-by-type .ed-bar-label").all_text_contents()
    assert bar_labels == ["page_view", "target_joined", "login", "target_left"]
    assert page.locator("[data-total=events]").text_content() == "15"
    assert page.locator("[data-total=joins]").text_content() == "6"
    users = page.locator("#table-top-users tbody th").all_text_contents()
    assert [name.split()[0] for name in users] == ["alice", "bob", "carol"]
    assert session.count("#table-top-targets tbody tr") == 3
    assert page.locator("a[data-days='7']").get_attribute("aria-current") == "page"

    # Keyboard: End shows today's numbers in the tooltip.
    page.locator("#chart-events-per-day svg").focus()
    page.keyboard.press("End")
    tooltip = page.locator("#chart-events-per-day .ed-tooltip")
    assert tooltip.is_visible()
    assert "Events: 7" in tooltip.text_content()
    page.keyboard.press("Escape")
    assert tooltip.is_hidden()
    page.locator("#chart-events-per-day svg").blur()
    page.screenshot(path="/tmp/dashboard.png", full_page=True)

    page.get_by_role("link", name="30 days").click()
    page.wait_for_url("**?days=30")
    assert session.count("#chart-events-per-day svg .ed-point") == 30
    assert session.count("#chart-joins-leaves svg .ed-point") == 60
    assert page.locator("[data-total=events]").text_content() == "16"
    assert page.locator("a[data-days='30']").get_attribute("aria-current") == "page"

    assert session.errors == []
    assert session.foreign_requests() == []
    assert any(url.endswith("/static/django_engagement/dashboard.js") for url in session.urls)


def test_dashboard_dark_theme_and_year_view(browser, live_server):
    session = Session(browser, live_server.url, color_scheme="dark")
    session.login()
    session.page.goto(f"{live_server.url}{DASHBOARD}?days=365")
    assert session.count("#chart-events-per-day svg .ed-point") == 365
    assert session.page.locator("[data-total=events]").text_content() == "17"
    session.page.screenshot(path="/tmp/dashboard-dark.png", full_page=True)
    assert session.errors == []
    assert session.foreign_requests() == []


BREADCRUMBS_STYLE = """() => {
    const crumbs = document.querySelector("nav .breadcrumbs");
    const probe = document.createElement("div");
    probe.style.background = "var(--breadcrumbs-bg)";
    document.body.append(probe);
    const expected = getComputedStyle(probe).backgroundColor;
    probe.remove();
    const style = getComputedStyle(crumbs);
    return {
        tag: crumbs.tagName.toLowerCase(),
        expected,
        background: style.backgroundColor,
        color: style.color,
        padding: style.padding,
        height: crumbs.getBoundingClientRect().height,
    };
}"""


def test_breadcrumbs_look_like_the_admins_own(browser, live_server):
    """Styled as on Django's own pages, whatever the markup of the installed version."""
    import django

    session = Session(browser, live_server.url)
    session.login()
    dashboard = session.page.evaluate(BREADCRUMBS_STYLE)
    session.page.goto(f"{live_server.url}/admin/django_engagement/")  # Django's app_index.html
    index = session.page.evaluate(BREADCRUMBS_STYLE)

    assert dashboard["tag"] == ("ol" if django.VERSION >= (6, 1) else "div")
    assert dashboard["background"] == dashboard["expected"] != "rgba(0, 0, 0, 0)"
    assert {key: dashboard[key] for key in ("tag", "background", "color", "padding")} == {
        key: index[key] for key in ("tag", "background", "color", "padding")
    }
    assert abs(dashboard["height"] - index["height"]) < 1  # one line, same font size
    session.page.goto(f"{live_server.url}{DASHBOARD}")
    crumbs = session.page.locator("nav .breadcrumbs").inner_text()
    # 6.1 draws the separators with CSS (li::after), earlier versions write them in the HTML.
    assert [word for word in crumbs.split() if word != "›"] == ["Home", "Engagement", "Dashboard"]
    assert session.errors == []


LONG_TYPE = "checkout.payment_method_selected:credit_card-visa_debit_contactless"[:64]


@pytest.fixture
def busy_week(known_data, django_user_model):
    """1,200 more page views for alice today and one event with a 64-character type."""
    from django.utils import timezone

    from django_engagement.models import get_event_model

    Event = get_event_model()
    now = timezone.now()
    alice = django_user_model.objects.get(username="alice")
    Event._default_manager.bulk_create(
        [Event(event_type="page_view", user=alice, created_at=now) for _ in range(1200)]
        + [Event(event_type=LONG_TYPE, created_at=now)]
    )


def test_numbers_group_thousands_everywhere(busy_week, browser, live_server):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page

    assert page.locator("[data-total=events]").text_content() == "1,216"
    assert page.locator("#table-top-users tbody tr:first-child td.ed-num").text_content() == (
        "1,206"
    )
    by_type = page.locator("#chart-events-by-type tbody td.ed-num").all_text_contents()
    assert by_type == ["1,207", "6", "1", "1", "1"]
    assert session.errors == []


def test_long_event_types_fit_a_phone(busy_week, browser, live_server):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    page.screenshot(path="/tmp/dashboard-phone.png", full_page=True)

    layout = page.evaluate(
        """() => {
            const figure = document.querySelector("#chart-events-by-type").getBoundingClientRect();
            const counts = [...document.querySelectorAll("#chart-events-by-type td.ed-num")];
            return {
                scrollWidth: document.documentElement.scrollWidth,
                width: window.innerWidth,
                countsInside: counts.every(td => {
                    const box = td.getBoundingClientRect();
                    return box.width > 0 && box.left >= figure.left && box.right <= figure.right;
                }),
            };
        }"""
    )
    assert layout == {"scrollWidth": 375, "width": 375, "countsInside": True}
    # The table shows the whole code (wrapped) and names it in its title; the bar label is
    # shortened with an ellipsis and the full type is the bar's tooltip.
    code = page.locator(f"#chart-events-by-type code[title='{LONG_TYPE}']")
    assert code.text_content() == LONG_TYPE
    labels = page.locator("#chart-events-by-type .ed-bar-label").all_text_contents()
    assert any(label.endswith("\u2026") and LONG_TYPE.startswith(label[:-1]) for label in labels)
    titles = page.locator("#chart-events-by-type .ed-bar-row > title").all_text_contents()
    assert f"{LONG_TYPE}: 1" in titles
    assert session.errors == []
