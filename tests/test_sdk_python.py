"""The Segment, RudderStack and PostHog Python SDKs, unmodified, against a live server.

Each SDK sends the scenario of ``tests.sdk_helpers`` over real HTTP on 127.0.0.1
(pytest-django's threaded ``live_server``), then the stored rows are compared exactly.
"""

from __future__ import annotations

import pytest

from tests.sdk_helpers import BATCH, assert_scenario, configure

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sdk_user(no_tracking, user_factory, engagement_settings):
    configure(engagement_settings)
    return user_factory(username="sdk-user")


def segment_style_scenario(client, user) -> None:
    """Segment and RudderStack share the analytics-python interface."""
    client.track(anonymous_id="anon-1", event="Order Completed", properties={"total": 30})
    client.page(anonymous_id="anon-1", name="Home", properties={"path": "/home"})
    client.identify(user_id=str(user.pk), anonymous_id="anon-1", traits={"plan": "pro"})
    client.track(user_id=str(user.pk), event="Signed Up")
    client.track(anonymous_id="anon-1", event="Clicked Button", properties={"button": "buy"})
    client.flush()
    for _attempt in range(2):  # the second run is a retry: same message ids
        for n in range(BATCH):
            client.track(
                anonymous_id="anon-batch",
                event="Viewed Item",
                properties={"n": n},
                message_id=f"batch-{n}",
            )
        client.flush()


def test_segment_analytics_python(live_server, sdk_user):
    from segment.analytics import Client

    errors = []
    client = Client(
        "wk_web",
        host=f"{live_server.url}/api/engagement/segment",
        on_error=lambda error, batch: errors.append(error),
        upload_size=BATCH,
        max_retries=0,
    )
    segment_style_scenario(client, sdk_user)
    client.shutdown()
    assert errors == []
    assert_scenario(sdk_user, source="web", anonymous_id="anon-1")


def test_rudder_sdk_python(live_server, sdk_user):
    from rudderstack.analytics import Client

    errors = []
    client = Client(
        "wk_ios",
        host=f"{live_server.url}/api/engagement/segment",
        on_error=lambda error, batch: errors.append(error),
        upload_size=BATCH,
        max_retries=0,
    )  # gzip=True is its default
    segment_style_scenario(client, sdk_user)
    client.shutdown()
    assert errors == []
    assert_scenario(sdk_user, source="ios", anonymous_id="anon-1")


def test_posthog_python(live_server, sdk_user):
    from posthog import Posthog

    client = Posthog(
        "phc_android",
        host=f"{live_server.url}/api/engagement/posthog",
        flush_at=BATCH,
        max_retries=0,
        enable_exception_autocapture=False,
    )
    pk = str(sdk_user.pk)
    client.capture("Order Completed", distinct_id="anon-1", properties={"total": 30})
    client.capture("$pageview", distinct_id="anon-1", properties={"title": "Home", "path": "/home"})
    client.alias(previous_id="anon-1", distinct_id=pk)
    client.capture("Signed Up", distinct_id=pk)
    client.capture("Clicked Button", distinct_id="anon-1", properties={"button": "buy"})
    client.flush()
    for _attempt in range(2):
        for n in range(BATCH):
            client.capture(
                "Viewed Item",
                distinct_id="anon-batch",
                properties={"n": n},
                uuid=f"00000000-0000-4000-8000-{n:012d}",
            )
        client.flush()
    client.shutdown()
    assert_scenario(sdk_user, source="android", anonymous_id="anon-1", link_type="alias")
