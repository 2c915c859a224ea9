"""The admin dashboard in a real headless Chromium: charts render from embedded data.

Needs /usr/bin/chromium and Playwright; skipped with a reason without them (a failure
under ENGAGEMENT_REQUIRE_SERVICES=1). A screenshot of each theme goes to /tmp.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from django_engagement.models import get_event_model
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
    assert bar_labels == ["Page view", "Joined campaign", "Login", "Left campaign"]
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
    long_label = LONG_TYPE.replace("_", " ").capitalize()  # no label: the code in words
    assert any(label.endswith("\u2026") and long_label.startswith(label[:-1]) for label in labels)
    titles = page.locator("#chart-events-by-type .ed-bar-row > title").all_text_contents()
    assert any(title.endswith(f"({LONG_TYPE}): 1") for title in titles)
    assert session.errors == []


# -- Dashboard 2.0 -------------------------------------------------------------------------


def test_tiles_compare_and_draw_sparklines(browser, live_server):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page
    # One sparkline point per day of the window in each of the six tiles.
    points = page.locator("svg[data-spark] polyline").evaluate_all(
        "lines => lines.map(line => line.points.numberOfItems)"
    )
    assert points == [7] * 6
    assert page.locator("[data-kpi=events] .ed-change").text_content() == "+14 (+1400.0%)"
    assert "ed-up" in page.locator("[data-kpi=events] .ed-change").get_attribute("class")
    assert page.locator("[data-active=dau]").text_content() == "2"
    assert page.locator("[data-active=mau]").text_content() == "4"
    assert page.locator("[data-active=stickiness]").text_content() == "8%"
    assert session.count("#chart-daily-users svg .ed-series-0 .ed-point") == 7
    assert session.errors == []


def test_pickers_scope_every_chart(browser, live_server, known_data):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page
    page.select_option("#ed-target", label="Great Lent")
    page.click("#dashboard-filters button[type=submit]")
    page.wait_for_url("**target=*")
    assert page.locator("[data-total=events]").text_content() == "4"
    assert page.locator("[data-total=joins]").text_content() == "3"
    assert page.locator("[data-scope]").text_content() == "Great Lent"
    users = page.locator("#table-top-users tbody th").all_text_contents()
    assert [name.split()[0] for name in users] == ["bob", "alice", "carol"]
    # Choosing a group clears the target (never both) and scopes to the club's campaigns.
    page.select_option("#ed-group", label="St. Mary")
    assert page.locator("#ed-target").input_value() == ""
    page.click("#dashboard-filters button[type=submit]")
    page.wait_for_url("**group=*")
    assert page.locator("[data-total=joins]").text_content() == "4"
    targets = page.locator("#table-top-targets tbody th a, #table-top-targets tbody th").all()
    assert targets
    # The presets keep the scope.
    page.get_by_role("link", name="30 days").click()
    page.wait_for_url("**days=30**")
    assert "group=St.+Mary" in page.url
    assert session.count("#chart-events-per-day svg .ed-point") == 30
    assert session.errors == []


def test_custom_range_funnel_and_retention(browser, live_server):
    from datetime import timedelta

    from django.utils import timezone

    session = Session(browser, live_server.url)
    session.login()
    page = session.page
    today = timezone.localdate()
    page.fill("#ed-start", (today - timedelta(days=13)).isoformat())
    page.fill("#ed-end", today.isoformat())
    steps = page.locator("select[name=step]")
    steps.nth(0).select_option("target_left")
    steps.nth(1).select_option("target_joined")
    page.click("#dashboard-filters button[type=submit]")
    page.wait_for_url("**start=*")
    assert session.count("#chart-events-per-day svg .ed-point") == 14
    assert session.count(".ed-range a[aria-current]") == 0
    funnel = page.locator("#chart-funnel .ed-funnel-step")
    assert funnel.count() == 2
    assert funnel.nth(0).locator(".ed-funnel-label").text_content() == "Left campaign"
    assert page.locator("#chart-funnel [data-users]").all_text_contents() == ["1", "1"]
    # Retention: one row per ISO week the 14 days touch (2 or 3, by weekday).
    rows = page.locator("#chart-retention tbody tr")
    assert rows.count() == len({(today - timedelta(days=n)).isocalendar()[:2] for n in range(14)})
    sizes = [
        int(n)
        for n in page.locator("#chart-retention tbody tr td:nth-child(2)").all_text_contents()
    ]
    assert sum(sizes) == 3  # bob, carol, dave; alice was first seen 40 days ago
    assert session.errors == []


def test_bars_points_and_rows_link_to_the_changelist(browser, live_server):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page
    page.locator("#chart-events-by-type a.ed-bar-link").first.click()
    page.wait_for_url(f"**/{get_event_model()._meta.model_name}/?**")
    assert "event_type=page_view" in page.url
    assert page.locator("#result_list tbody tr").count() == 7
    page.go_back()
    page.wait_for_url(f"**{DASHBOARD}")
    page.locator("#chart-events-per-day a.ed-point-link").last.dispatch_event("click")
    page.wait_for_url(f"**/{get_event_model()._meta.model_name}/?**")
    assert page.locator("#result_list tbody tr").count() == 7  # today
    page.go_back()
    page.locator("#table-top-users tbody tr:first-child td.ed-num a").click()
    page.wait_for_url("**user=*")
    assert page.locator("#result_list tbody tr").count() == 6  # alice's week
    assert session.errors == []


def test_csv_link_downloads_the_chart(browser, live_server):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page
    with page.expect_download() as info:
        page.locator("#chart-events-by-type a.ed-csv").click()
    path = info.value.path()
    text = Path(path).read_text()
    assert text.splitlines()[:2] == ["event_type,label,events", "page_view,Page view,7"]
    assert session.errors == []


def test_whole_page_fits_a_phone(browser, live_server):
    session = Session(browser, live_server.url)
    session.login()
    page = session.page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}{DASHBOARD}?days=90&step=page_view&step=target_joined")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width == 390
    assert session.errors == []
