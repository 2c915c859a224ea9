"""JSON Lines (one JSON object a line, ``application/x-ndjson``) for streaming exports.

Usage::

    from django_engagement.services.json_lines import json_lines_chunks

    StreamingHttpResponse(json_lines_chunks(records), content_type=JSON_LINES_MEDIA_TYPE)

Each record is written as compact JSON (UTF-8, not ASCII-escaped) and a ``\\n``. No
record holds a raw line break: JSON escapes control characters, and the three other
characters ``str.splitlines()`` breaks at (U+0085, U+2028, U+2029) are escaped too, so
every line parses alone whatever splits them. Memory stays flat whatever the number of
records: ``LINES_PER_CHUNK`` at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

__all__ = ["JSON_LINES_MEDIA_TYPE", "LINES_PER_CHUNK", "json_line", "json_lines_chunks"]

JSON_LINES_MEDIA_TYPE = "application/x-ndjson"
#: Records per chunk handed to a streaming response: one write per chunk, not per line.
LINES_PER_CHUNK = 500

_encode = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=DjangoJSONEncoder().default
).encode
#: Line breaks to ``str.splitlines()`` that JSON leaves raw with ``ensure_ascii=False``.
_UNICODE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_line(record: Any) -> str:
    """``record`` as one line of JSON Lines, ``\\n`` included."""
    return _encode(record).translate(_UNICODE_BREAKS) + "\n"


def json_lines_chunks(records: Iterable[Any]) -> Iterator[str]:
    """``records`` as JSON Lines text, ``LINES_PER_CHUNK`` lines per chunk (no chunk
    when there are no records: an empty export is an empty body)."""
    records = iter(records)
    while batch := list(islice(records, LINES_PER_CHUNK)):
        yield "".join(map(json_line, batch))
