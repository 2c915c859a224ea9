"""Properties of ingestion payloads (issue 9): accepted means stored as sent.

For any JSON object sent as ``payload`` to ``POST events/``:

- if the API answers 201, the stored event's ``data`` equals the payload, read back
  from the database (on PostgreSQL, from jsonb);
- otherwise the answer is a 400 (or 413 for size) whose body names ``payload``.

Examples are bounded (``max_examples``) so the file runs in seconds on both databases.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from django_engagement.models import get_event_model  # noqa: E402
from tests.helpers import post_raw  # noqa: E402

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking", "no_throttle")]

#: Any JSON text, NUL and lone surrogates included; finite numbers (inf and 1e999 are
#: pinned by tests/test_ingestion_limits.py).
ANY_TEXT = st.text(st.characters(codec=None), max_size=12)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | FINITE | ANY_TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
PAYLOADS = st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=5)

PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def no_throttle(engagement_settings):
    """Examples of one test share the cache; the throttle is not what is tested."""
    engagement_settings.update(INGEST_THROTTLE_RATE=None)


def as_json_numbers(value: Any) -> Any:
    """``value`` with every number as a Decimal: jsonb keeps the decimal digits, so
    ``1.3226144644375762e+17`` comes back as the int 132261446443757620, the same number."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


def wire(payload: dict[str, Any]) -> str:
    """The body a client sends (``\\u`` escapes carry NUL and lone surrogates)."""
    return json.dumps({"event_type": "page_view", "payload": payload})


@PROPERTY_SETTINGS
@given(payload=PAYLOADS)
def test_accepted_payloads_come_back_equal_and_rejected_ones_name_the_field(api_client, payload):
    Event = get_event_model()
    before = Event._default_manager.count()

    response = post_raw(api_client, wire(payload))

    if response.status_code == 201:
        stored = Event._default_manager.get(uuid=response.json()["event_id"])
        assert as_json_numbers(stored.data) == as_json_numbers(payload)
        assert Event._default_manager.count() == before + 1
    else:
        assert response.status_code in (400, 413), response.content
        assert list(response.json()) == ["payload"]
        assert Event._default_manager.count() == before


STORABLE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
STORABLE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | FINITE | STORABLE_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(STORABLE_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


@PROPERTY_SETTINGS
@given(payload=st.dictionaries(STORABLE_TEXT, STORABLE_VALUES, max_size=5))
def test_every_storable_small_payload_is_accepted(api_client, payload):
    response = post_raw(api_client, wire(payload))

    assert response.status_code == 201, response.content
    stored = get_event_model()._default_manager.get(uuid=response.json()["event_id"])
    assert as_json_numbers(stored.data) == as_json_numbers(payload)
