""".ci/check_docs_layout.py fails on pages that overflow, and passes pages that fit.

Real pages in Debian's Chromium (skipped without it; a failure under
ENGAGEMENT_REQUIRE_SERVICES=1). tox -e docs runs the script on the built docs.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "check_docs_layout", ROOT / ".ci/check_docs_layout.py"
)
layout = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("check_docs_layout", layout)
_spec.loader.exec_module(layout)

pytestmark = pytest.mark.services

PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width">
<style>body {{ margin: 0 }} article {{ max-width: 600px; }} pre {{ overflow: auto }}</style>
</head><body><article>{}</article></body></html>"""


def test_overflowing_pages_are_reported(tmp_path):
    require_service(Path(layout.CHROMIUM).exists(), f"{layout.CHROMIUM} is missing")
    require_service(importlib.util.find_spec("playwright") is not None, "no playwright")
    build = tmp_path / "html"
    build.mkdir()
    (build / "fits.html").write_text(
        PAGE.format("<pre>short line</pre><table><tr><td>a</td></tr></table>")
    )
    (build / "wide_code.html").write_text(PAGE.format(f"<pre>{'x' * 200}</pre>"))
    (build / "wide_page.html").write_text(PAGE.format('<div style="width: 1600px">wide</div>'))
    problems = layout.check(build, tmp_path / "shots")
    assert len(problems) == 3, problems
    assert problems[0].startswith("wide_code.html at desktop: pre ")
    assert problems[0].split(": ")[1].endswith("px in 600px")  # wider than its 600px column
    assert problems[1:] == [
        "wide_page.html at desktop (1400px): the page scrolls sideways, 1600px wide",
        "wide_page.html at phone (390px): the page scrolls sideways, 1600px wide",
    ]
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == [
        f"{name}-{width}.png"
        for name in ("fits", "wide_code", "wide_page")
        for width in ("desktop", "phone")
    ]
