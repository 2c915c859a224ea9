"""Check the built HTML docs in headless Chromium at desktop and phone widths.

    python .ci/check_docs_layout.py BUILD_DIR [--screenshots DIR]

Serves BUILD_DIR on a free loopback port and opens every page at 1400 px (desktop) and
390 px (phone). Fails (exit 1) when, at either width, the page scrolls sideways (the
document is wider than the window), or, at desktop width, a code block or a table is
wider than the column it sits in (a horizontal scrollbar inside the page). On phones,
code blocks and tables may scroll inside their own box: that is the readable choice for
code. Needs Playwright and Debian's /usr/bin/chromium (never downloads a browser).
Screenshots of every page at both widths go to --screenshots (default: a temp dir).
Run by ``tox -e docs`` after the build.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import tempfile
import threading
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WIDTHS = {"desktop": 1400, "phone": 390}
SKIP = {"genindex.html", "search.html"}

# Elements wider than their box: code blocks (Pygments' <pre>) and tables (Furo wraps
# each in a scrolling .table-wrapper). One pixel of slack for rounding.
MEASURE = """() => {
  const doc = document.documentElement;
  const wide = [];
  for (const el of document.querySelectorAll("article pre, article table")) {
    const box = el.tagName === "TABLE" ? el.parentElement : el;
    if (el.scrollWidth > box.clientWidth + 1) {
      const text = (el.innerText || "").trim().split("\\n")[0].slice(0, 70);
      wide.push(`${el.tagName.toLowerCase()} ${el.scrollWidth}px in ${box.clientWidth}px: ${text}`);
    }
  }
  return {page: doc.scrollWidth, window: doc.clientWidth, wide};
}"""


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def check(build: Path, screenshots: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    pages = sorted(
        p.relative_to(build).as_posix()
        for p in build.rglob("*.html")
        if p.name not in SKIP and "_static" not in p.parts and "_sources" not in p.parts
    )
    if not pages:
        return [f"no HTML pages in {build}"]
    problems = []
    server, base = serve(build)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for label, width in WIDTHS.items():
                page = browser.new_page(viewport={"width": width, "height": 900})
                for name in pages:
                    page.goto(f"{base}/{name}")
                    page.wait_for_load_state("load")
                    measured = page.evaluate(MEASURE)
                    if measured["page"] > measured["window"]:
                        problems.append(
                            f"{name} at {label} ({width}px): the page scrolls sideways, "
                            f"{measured['page']}px wide"
                        )
                    if label == "desktop":
                        problems += [f"{name} at {label}: {w}" for w in measured["wide"]]
                    shot = screenshots / f"{name.replace('/', '_')[:-5]}-{label}.png"
                    page.screenshot(path=str(shot))
                page.close()
            browser.close()
    finally:
        server.shutdown()
    print(f"{len(pages)} pages at {', '.join(f'{w}px' for w in WIDTHS.values())}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path)
    parser.add_argument("--screenshots", type=Path)
    options = parser.parse_args()
    screenshots = options.screenshots or Path(tempfile.mkdtemp(prefix="docs-layout-"))
    screenshots.mkdir(parents=True, exist_ok=True)
    problems = check(options.build.resolve(), screenshots)
    print(f"screenshots in {screenshots}")
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    print("OK: no page scrolls sideways; no code block or table overflows at desktop width")
    return 0


if __name__ == "__main__":
    sys.exit(main())
