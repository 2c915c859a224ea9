"""services.cache: report and dashboard results cached in Django's cache framework, on
locmem and on a real Redis (db 15), keyed by arguments, settings and the data versions
aggregation bumps; never past the permission check; a broken cache is skipped."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

import pytest
from django.core import checks
from django.core.cache import caches
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_engagement.services import aggregation, cache, reports
from django_engagement.services.aggregation import aggregate_daily, aggregate_period
from django_engagement.services.analytics import DateWindow
from django_engagement.services.dashboard import build_dashboard
from tests.conftest import require_service
from tests.helpers import events, redis_available

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

REDIS_URL = "redis://127.0.0.1:6379/15"
BACKENDS = {
    "locmem": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "engagement-test-cache",
    },
    "redis": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
}


@pytest.fixture(params=list(BACKENDS))
def report_cache(request, settings, engagement_settings):
    """Caching on, in CACHES["reports"]: a LocMemCache, then a real Redis (db 15)."""
    if request.param == "redis":
        require_service(redis_available(), "Redis is not running on 127.0.0.1:6379")
    settings.CACHES = {**settings.CACHES, "reports": BACKENDS[request.param]}
    engagement_settings.update(CACHE="reports", CACHE_TIMEOUT=300)
    store = caches["reports"]
    store.clear()
    yield store
    store.clear()


def day(offset: int) -> date:
    """``offset`` days before today (TIME_ZONE)."""
    return aggregation.today() - timedelta(days=offset)


def noon(offset: int) -> datetime:
    return datetime.combine(day(offset), time(12), aggregation.day_bounds(day(0))[0].tzinfo)


@pytest.fixture
def data(user, other_user):
    """Two days ago: 3 page_views by alice, 1 login by bob; yesterday: 1 page_view by bob."""
    Event = events().model
    Event.objects.bulk_create(
        [Event(event_type="page_view", user=user, created_at=noon(2)) for _ in range(3)]
        + [
            Event(event_type="login", user=other_user, created_at=noon(2)),
            Event(event_type="page_view", user=other_user, created_at=noon(1)),
        ]
    )


def test_a_warm_dashboard_costs_no_query(report_cache, data, django_assert_num_queries):
    cold = build_dashboard(7)
    with django_assert_num_queries(0):
        warm = build_dashboard(7)

    assert warm == cold
    assert cold["totals"]["events"] == 5
    assert cold["events_by_type"] == [
        {"event_type": "page_view", "count": 4},
        {"event_type": "login", "count": 1},
    ]


def test_aggregating_a_covered_day_invalidates(
    report_cache, data, user, django_capture_on_commit_callbacks
):
    assert build_dashboard(7)["totals"]["events"] == 5
    events().create(event_type="page_view", user=user, created_at=noon(2))
    # Raw days carry no version: the cached result stands until its days are aggregated.
    assert build_dashboard(7)["totals"]["events"] == 5

    with django_capture_on_commit_callbacks(execute=True):
        aggregate_daily(day(2))

    fresh = build_dashboard(7)
    assert fresh["totals"]["events"] == 6
    assert fresh["events_per_day"][-3] == {"date": day(2).isoformat(), "count": 5}


def test_aggregating_other_days_keeps_the_entry(
    report_cache, data, django_assert_num_queries, django_capture_on_commit_callbacks
):
    build_dashboard(7)
    with django_capture_on_commit_callbacks(execute=True) as bumps:
        aggregate_daily(day(30))
        aggregate_period("month", day(60))
    assert len(bumps) == 2
    with django_assert_num_queries(0):
        assert build_dashboard(7)["totals"]["events"] == 5

    with django_capture_on_commit_callbacks(execute=True):
        aggregate_period("week", day(2))  # the days of a week in the window: recomputed
    with CaptureQueriesContext(connection) as queries:
        assert build_dashboard(7)["totals"]["events"] == 5
    assert len(queries) > 0


def test_a_bump_inside_a_rolled_back_transaction_is_not_sent(
    report_cache, data, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as bumps:
        with pytest.raises(RuntimeError), transaction.atomic():
            aggregate_daily(day(2))
            raise RuntimeError
    assert bumps == []
    assert cache.day_versions(report_cache, aggregation_window(2)) == ["0"]


def aggregation_window(offset: int) -> DateWindow:
    return DateWindow.single(day(offset))


def test_arguments_and_settings_are_part_of_the_key(
    report_cache, data, engagement_settings, django_assert_num_queries
):
    seven, thirty = build_dashboard(7), build_dashboard(30)
    assert (seven["days"], thirty["days"]) == (7, 30)
    summary = reports.daily_summary(day(2))
    assert summary["total_events"] == 4
    assert reports.daily_summary(day(1))["total_events"] == 1
    with django_assert_num_queries(0):
        assert reports.daily_summary(day(2)) == summary
        assert build_dashboard(30) == thirty

    engagement_settings.update(JOIN_EVENT="page_view")
    assert build_dashboard(7)["totals"]["joins"] == 4


def test_top_values_and_active_users_are_cached(report_cache, user, django_assert_num_queries):
    events().create(event_type="purchase", user=user, data={"sku": "a"}, created_at=noon(1))
    top = reports.top_values("sku", date_from=day(3), date_to=day(0))
    active = reports.active_users(day(1))
    with django_assert_num_queries(0):
        assert reports.top_values("sku", date_from=day(3), date_to=day(0)) == top
        assert reports.active_users(day(1)) == active
    assert top == [{"value": "a", "count": 1}]
    assert active["daily_active_users"] == 1
    with pytest.raises(ValueError, match="key must be"):
        reports.top_values("no-dashes", date_from=day(3), date_to=day(0))


def test_spans_over_max_cached_days_are_computed_without_the_cache(
    report_cache, user, django_assert_num_queries
):
    """A key holds one version per day: centuries of days would cost more than the query."""
    events().create(event_type="purchase", user=user, data={"sku": "a"}, created_at=noon(1))
    longest = {"date_from": day(cache.MAX_CACHED_DAYS - 1), "date_to": day(0)}
    reports.top_values("sku", **longest)
    with django_assert_num_queries(0):
        assert reports.top_values("sku", **longest) == [{"value": "a", "count": 1}]
    centuries = {"date_from": date(139, 6, 24), "date_to": date(8165, 5, 28)}
    assert reports.top_values("sku", **centuries) == [{"value": "a", "count": 1}]
    with django_assert_num_queries(1):
        assert reports.top_values("sku", **centuries) == [{"value": "a", "count": 1}]


def test_a_result_that_depends_on_who_asks_is_keyed_by_it(report_cache, user, other_user):
    calls = []

    @cache.cached("test_per_user", days=lambda viewer, when: aggregation_window(1))
    def per_user(viewer, when):
        calls.append(viewer.username)
        return {"viewer": viewer.username}

    assert per_user(user, day(1)) == {"viewer": "alice"}
    assert per_user(other_user, day(1)) == {"viewer": "bob"}
    assert per_user(user, when=day(1)) == {"viewer": "alice"}
    assert calls == ["alice", "bob"]


def test_the_permission_check_runs_before_the_cache(
    report_cache, data, admin_client_api, auth_client, api_client
):
    url = reverse("django_engagement:engagement-reports-dashboard")
    first = admin_client_api.get(url, {"days": 7})
    assert first.status_code == 200
    assert first.json()["totals"]["events"] == 5
    assert admin_client_api.get(url, {"days": 7}).json() == first.json()

    assert auth_client.get(url, {"days": 7}).status_code == 403
    assert api_client.get(url, {"days": 7}).status_code in (401, 403)


def test_timeout_zero_or_none_turns_caching_off(
    report_cache, data, engagement_settings, django_assert_max_num_queries
):
    for timeout in (0, None):
        engagement_settings.update(CACHE_TIMEOUT=timeout)
        assert cache.backend() is None
        build_dashboard(7)
        with django_assert_max_num_queries(20) as queries:
            build_dashboard(7)
        assert len(queries) > 0
    assert report_cache.get_many([cache.version_key(day(2))]) == {}


def test_bad_arguments_raise_before_the_cache(report_cache):
    with pytest.raises(ValueError, match="days must be an integer between 1 and 365"):
        build_dashboard(0)
    with pytest.raises(ValueError, match="after end"):
        reports.top_values("sku", date_from=day(0), date_to=day(3))


def test_bumps_give_new_versions(report_cache):
    window = aggregation_window(5)
    assert cache.day_versions(report_cache, window) == ["0"]
    cache.bump_days([day(5)])
    first = cache.day_versions(report_cache, window)
    cache.bump_days([day(5)])
    second = cache.day_versions(report_cache, window)
    assert len({"0", first[0], second[0]}) == 3


def test_a_broken_cache_is_skipped(
    settings, engagement_settings, data, caplog, django_capture_on_commit_callbacks
):
    settings.CACHES = {
        **settings.CACHES,
        # Port 9 (discard) refuses connections: every cache call fails.
        "broken": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        },
    }
    engagement_settings.update(CACHE="broken", CACHE_TIMEOUT=300)
    with caplog.at_level(logging.WARNING, logger="django_engagement.services.cache"):
        assert build_dashboard(7)["totals"]["events"] == 5
        with django_capture_on_commit_callbacks(execute=True):
            aggregate_daily(day(2))
    assert [record.getMessage() for record in caplog.records] == [
        "report cache unavailable; computing dashboard",
        "could not bump the report cache versions",
    ]


# -- checks --------------------------------------------------------------------------------


def cache_messages():
    return [
        m
        for m in checks.run_checks()
        if m.id in ("django_engagement.E018", "django_engagement.W009")
    ]


def test_checks_pass_with_a_shared_cache_or_caching_off(settings, engagement_settings):
    settings.CACHES = {**settings.CACHES, "reports": BACKENDS["redis"]}
    engagement_settings.update(CACHE="reports", CACHE_TIMEOUT=60)
    assert cache_messages() == []
    engagement_settings.update(CACHE="missing", CACHE_TIMEOUT=0)
    assert cache_messages() == []


def test_e018_bad_timeout_or_alias(settings, engagement_settings):
    engagement_settings.update(CACHE_TIMEOUT="5 minutes")
    assert cache_messages() == [
        checks.Error(
            "ENGAGEMENT CACHE_TIMEOUT must be a number of seconds or None, got '5 minutes'.",
            hint="0 or None turns the report cache off.",
            id="django_engagement.E018",
        )
    ]
    engagement_settings.update(CACHE_TIMEOUT=-1)
    assert [m.id for m in cache_messages()] == ["django_engagement.E018"]
    engagement_settings.update(CACHE="reports", CACHE_TIMEOUT=60)
    assert cache_messages() == [
        checks.Error(
            "ENGAGEMENT CACHE 'reports' is not an alias of settings.CACHES.",
            hint="Use one of: default.",
            id="django_engagement.E018",
        )
    ]


def test_w009_locmem_cache(settings, engagement_settings):
    engagement_settings.update(CACHE_TIMEOUT=60)
    assert cache_messages() == [
        checks.Warning(
            "ENGAGEMENT caches reports in a LocMemCache (CACHES['default']): each process "
            "keeps its own copy, which aggregation run in another process (a cron job, a "
            "Celery worker) cannot invalidate.",
            hint="Point CACHE at a cache all processes share (Redis, Memcached), or set "
            "CACHE_TIMEOUT to a few seconds or 0.",
            id="django_engagement.W009",
        )
    ]
