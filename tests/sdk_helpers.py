"""Shared by the SDK tests: write keys, the scenario every SDK sends, and its assertions."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django_engagement.models import get_event_model

WRITE_KEYS = {
    "wk_web": {"source": "web", "throttle_rate": None},
    "wk_ios": {"source": "ios", "throttle_rate": None},
    "phc_android": {"source": "android", "throttle_rate": None},
}
BATCH = 250


def configure(engagement_settings: Any, **extra: Any) -> None:
    engagement_settings.update(WRITE_KEYS=WRITE_KEYS, **extra)


def rows() -> list[Any]:
    return list(get_event_model().objects.order_by("created_at", "pk"))


def assert_scenario(
    user: Any, *, source: str, anonymous_id: str, link_type: str = "identify"
) -> None:
    """What the scenario stores: 5 single calls and 250 batched events, each exactly once.

    Calls: track (anonymous), page (anonymous), identify (anonymous id -> user), track
    (by user id), track (anonymous again), then 250 tracks by another anonymous id,
    sent twice with the same message ids.
    """
    events = rows()
    assert len(events) == 5 + BATCH
    assert {event.source for event in events} == {source}
    singles = [event for event in events if event.anonymous_id != "anon-batch"]
    by_type = {event.event_type: event for event in singles}
    assert sorted(by_type) == sorted(
        ["order_completed", "page_view", link_type, "signed_up", "clicked_button"]
    )
    # Before and after identify, the anonymous events are the user's.
    assert {event.event_type: event.user_id for event in singles} == dict.fromkeys(by_type, user.pk)
    assert by_type["order_completed"].data == {"total": 30}
    assert by_type["order_completed"].anonymous_id == anonymous_id
    assert by_type["page_view"].title == "Home"
    assert by_type["page_view"].data.get("path") == "/home"
    assert by_type[link_type].anonymous_id == anonymous_id
    if link_type == "identify":
        assert by_type[link_type].data.get("plan") == "pro"
    assert by_type["clicked_button"].anonymous_id == anonymous_id
    assert by_type["clicked_button"].data == {"button": "buy"}

    batch = [event for event in events if event.anonymous_id == "anon-batch"]
    assert len(batch) == BATCH
    assert Counter(event.event_type for event in batch) == {"viewed_item": BATCH}
    assert sorted(event.data["n"] for event in batch) == list(range(BATCH))
    assert {event.user_id for event in batch} == {None}
    assert len({event.idempotency_key for event in events}) == len(events)
