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

# Furo: a fluid layout (sidebar, content and page outline at desktop widths, a single
# column on phones) with light and dark themes. .ci/check_docs_layout.py checks the
# built pages in Chromium for horizontal overflow.
html_theme = "furo"
html_title = f"django-engagement {release}"
html_static_path = ["_static"]
html_css_files = ["layout.css"]
# Unlabelled blocks are shell sessions, HTTP exchanges and output: no Python colouring.
highlight_language = "text"


# Long identifiers in table cells (django_engagement.track_target_saved) may break after
# "." or "_", like a hyphenated word, so tables fit the column instead of overflowing.
_TABLE = re.compile(r"<table.*?</table>", re.S)
_LITERAL = re.compile(r'(<span class="pre">)([^<]+)(</span>)')


def _break_table_literals(app, pagename, templatename, context, doctree) -> None:
    def literal(match: re.Match) -> str:
        return match[1] + re.sub(r"([._/])(?=\w)", r"\1<wbr>", match[2]) + match[3]

    if context.get("body"):
        context["body"] = _TABLE.sub(lambda table: _LITERAL.sub(literal, table[0]), context["body"])


def setup(app) -> None:
    app.connect("html-page-context", _break_table_literals)
