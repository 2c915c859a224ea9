"""JSON Lines (one JSON object a line, ``application/x-ndjson``) for streaming exports.

Usage::

    from django_engagement.services.json_lines import json_lines_chunks

    StreamingHttpResponse(json_lines_chunks(records), content_type=JSON_LINES_MEDIA_TYPE)

Each record is written as compact JSON (UTF-8, not ASCII-escaped) and a ``\\n``; text
never holds a raw newline, so every line parses alone. Memory stays flat whatever
the number of records: ``LINES_PER_CHUNK`` at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

__all__ = ["JSON_LINES_MEDIA_TYPE", "LINES_PER_CHUNK", "json_lines_chunks"]

JSON_LINES_MEDIA_TYPE = "application/x-ndjson"
#: Records per chunk handed to a streaming response: one write per chunk, not per line.
LINES_PER_CHUNK = 500

_encode = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=DjangoJSONEncoder().default
).encode


def json_lines_chunks(records: Iterable[Any]) -> Iterator[str]:
    """``records`` as JSON Lines text, ``LINES_PER_CHUNK`` lines per chunk (no chunk
    when there are no records: an empty export is an empty body)."""
    records = iter(records)
    while batch := list(islice(records, LINES_PER_CHUNK)):
        yield "".join(f"{_encode(record)}\n" for record in batch)
