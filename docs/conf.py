"""Sphinx configuration: Markdown pages (myst-parser) under guide/ and reference/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

project = "django-engagement"
author = "django-engagement developers"
copyright = "django-engagement developers"  # noqa: A001
# Read, not imported: building the docs needs neither Django nor the package installed.
release = re.search(
    r'^__version__ = "([^"]+)"', (ROOT / "django_engagement" / "__init__.py").read_text(), re.M
).group(1)
version = release

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "requirements.txt"]

myst_enable_extensions = ["colon_fence", "deflist"]
# Anchors for `[text](page.md#some-heading)` links down to ### headings.
myst_heading_anchors = 3
# Links to files outside the docs tree (../example_project/README.md, source files) are
# not Sphinx documents; everything else must still resolve.
suppress_warnings = [
    "myst.xref_missing",
    # Illustrative JSON with "..." elisions cannot be lexed strictly; Pygments falls back
    # to plain text, which is what such examples should look like anyway.
    "misc.highlighting_failure",
]

html_theme = "alabaster"
html_title = f"django-engagement {release}"
html_theme_options = {
    "description": "Event tracking, activity feeds and engagement reports for Django.",
    "fixed_sidebar": True,
}
