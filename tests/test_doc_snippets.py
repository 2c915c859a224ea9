"""Every code block of README, installation and quickstart is marked for .ci/check_snippets.py.

The script itself (run by .ci/run) executes the blocks in fresh projects; this cheap test
keeps an unmarked, hence untested, example from landing in the first place.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("check_snippets", ROOT / ".ci/check_snippets.py")
check_snippets = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("check_snippets", check_snippets)  # dataclasses look the module up
_spec.loader.exec_module(check_snippets)


@pytest.mark.parametrize("document", check_snippets.DOCUMENTS)
def test_every_block_is_marked(document):
    kinds = {block.kind for block in check_snippets.extract(document)}
    assert kinds <= set(check_snippets.KINDS)
    assert {"settings", "urls", "shell"} <= kinds


def test_an_unmarked_block_fails(tmp_path, monkeypatch):
    (tmp_path / "page.md").write_text(
        "<!-- snippet: shell -->\n```\necho ok\n```\n\ntext\n\n```python\nx = 1\n```\n"
    )
    monkeypatch.setattr(check_snippets, "ROOT", tmp_path)
    with pytest.raises(check_snippets.SnippetError, match=r"page.md:8: code block without"):
        check_snippets.extract("page.md")


def test_http_lines_with_bodies_and_comments():
    block = check_snippets.Block(
        "page.md",
        1,
        "http",
        "",
        'GET /a/   # note\nPOST /b/ {"x": 1}\n\nPOST /c/\n{"events": [\n  {"y": 2}]}\n',
    )
    assert check_snippets.http_requests(block) == [
        ("GET", "/a/", None),
        ("POST", "/b/", {"x": 1}),
        ("POST", "/c/", {"events": [{"y": 2}]}),
    ]
