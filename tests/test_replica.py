"""Reports read from ``READ_DATABASE``: a REAL PostgreSQL streaming replica.

``.ci/run`` starts a hot standby of the primary on 5433 (``setup_replica``) and runs
this file with ``ENGAGEMENT_REPLICA_URL``; tests/settings.py then adds the alias
``replica`` as a test mirror, so it reads the replicated test database.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.db import connections
from django.db.utils import InternalError, NotSupportedError, OperationalError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_engagement import build_engagement_report, record_event
from django_engagement.models import get_event_model
from django_engagement.services import reports
from django_engagement.services.dashboard import build_dashboard
from tests.helpers import wait_for

REPLICA = "replica" in settings.DATABASES
pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "replica"] if REPLICA else ["default"]
)


@pytest.fixture
def replica(engagement_settings, no_tracking):
    if not REPLICA:
        # Opt-in: .ci/run starts a streaming replica and runs this file with the URL set.
        pytest.skip("no streaming replica (set ENGAGEMENT_REPLICA_URL; .ci/run does)")
    engagement_settings.update(READ_DATABASE="replica")
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone() == (True,), "ENGAGEMENT_REPLICA_URL is not a standby"
    yield connections["replica"]
    connections["replica"].close()


def replayed() -> None:
    """Wait until the replica has replayed everything the primary committed so far."""
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        (lsn,) = cursor.fetchone()

    def caught_up() -> bool:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])
            return cursor.fetchone()[0]

    assert wait_for(caught_up, timeout=30), "replica did not catch up in 30 s"


def test_daily_summary_and_dashboard_read_the_replica_writes_go_to_the_primary(replica, user):
    for event_type in ("page_view", "page_view", "signup"):
        assert record_event(event_type, user=user) is not None  # a write: on the primary
    replayed()
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(replica) as on_replica,
    ):
        summary = reports.daily_summary(timezone.localdate())
        dashboard = build_dashboard(7)
    assert summary["total_events"] == 3
    assert summary["events_by_type"] == {"page_view": 2, "signup": 1}
    assert dashboard["totals"]["events"] == 3
    assert [q["sql"] for q in primary.captured_queries] == []
    assert len(on_replica.captured_queries) >= 2


def test_engagement_report_reads_the_replica(replica, user):
    record_event("page_view", user=user)
    replayed()
    with CaptureQueriesContext(connections["default"]) as primary:
        report = build_engagement_report(timezone.localdate(), timezone.localdate())
    assert report["other_metrics"]["events_by_type"] == {"page_view": 1}
    assert report["other_metrics"]["active_users"] == 1
    assert [q["sql"] for q in primary.captured_queries] == []


def test_the_replica_refuses_writes(replica):
    Event = get_event_model()
    with pytest.raises((InternalError, NotSupportedError, OperationalError), match="read-only"):
        Event.objects.using("replica").create(event_type="page_view")
    assert Event.objects.count() == 0


def test_read_database_must_name_a_database_alias(engagement_settings):
    engagement_settings.update(READ_DATABASE="nope")
    errors = [message for message in run_checks() if message.id == "django_engagement.E012"]
    assert [error.msg for error in errors] == [
        "ENGAGEMENT READ_DATABASE 'nope' is not an alias in DATABASES."
    ]
