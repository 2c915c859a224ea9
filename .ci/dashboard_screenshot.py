"""Seed the example project's demo data and photograph the admin dashboard.

Usage (from the repository root; needs Playwright and /usr/bin/chromium)::

    .venv/bin/python .ci/dashboard_screenshot.py            # docs/_static/dashboard*.png

Writes ``docs/_static/dashboard.png`` (desktop, 1280 px wide) and
``docs/_static/dashboard-phone.png`` (390 px). The data is ``seed_demo``'s, in a
throw-away SQLite file, served by a local WSGI server on 127.0.0.1: nothing leaves
the machine. The same seed gives the same data within the same hour.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "_static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DASHBOARD = "/admin/django_engagement/dashboard/"
# The last 8 weeks (so the previous 8 weeks of the 120-day history are there to compare
# with), with a sign-up -> join -> read funnel.
WEEKS = 8
STEPS = "&step=user_signed_up&step=fast_joined&step=devotional_viewed"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="dashboard-shot-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'demo.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    sys.path[:0] = [str(ROOT), str(ROOT / "example_project")]

    import django

    django.setup()
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.utils import timezone
    from playwright.sync_api import sync_playwright

    from hub import demo

    call_command("migrate", verbosity=0, interactive=False)
    end = timezone.localdate()
    start = end - timedelta(days=7 * WEEKS - 1)
    query = f"?start={start}&end={end}{STEPS}"
    demo.ensure_admin()
    result = demo.seed()
    print(f"seeded {result.users} users and {result.events} events in {result.seconds:.1f}s")

    server = make_server(
        "127.0.0.1", 0, StaticFilesHandler(get_wsgi_application()), handler_class=QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, viewport in (
                ("dashboard.png", {"width": 1280, "height": 900}),
                ("dashboard-phone.png", {"width": 390, "height": 844}),
            ):
                page = browser.new_page(viewport=viewport, device_scale_factor=1)
                page.goto(f"{base}/admin/login/?next={DASHBOARD}")
                page.fill("#id_username", demo.ADMIN_USERNAME)
                page.fill("#id_password", demo.ADMIN_PASSWORD)
                page.click("input[type=submit]")
                page.wait_for_url(f"**{DASHBOARD}")
                page.goto(f"{base}{DASHBOARD}{query}")
                page.wait_for_selector("#chart-events-per-day svg")
                width = page.evaluate("() => document.documentElement.scrollWidth")
                if width > viewport["width"]:
                    raise SystemExit(f"{name}: the page scrolls sideways ({width}px)")
                page.screenshot(path=str(OUT / name), full_page=True)
                print(f"wrote {OUT / name}")
                page.close()
            browser.close()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
