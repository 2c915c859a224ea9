"""activity-feed/ with keyset cursors, per request or by FEED_PAGINATION; pages stay the default."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_engagement.models import get_feed_model
from tests.helpers import feed

LIST_URL = reverse("django_engagement:engagement-activity-feed-list")
NOW = timezone.now()

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


def make_items(user, count: int, *, same_time_every: int = 1, days_ago: int = 1) -> list:
    """``count`` items, newest last; groups of ``same_time_every`` share one ``created_at``."""
    Feed = get_feed_model()
    return feed().bulk_create(
        Feed(
            user=user,
            activity_type="event",
            title=f"item {n}",
            created_at=NOW - timedelta(days=days_ago) + timedelta(minutes=n // same_time_every),
            is_read=n % 3 == 0,
        )
        for n in range(count)
    )


def walk(client, url: str) -> tuple[list[int], list[int]]:
    """Every id on every page, following ``next``; and the SQL query count of each page."""
    ids, queries = [], []
    while url:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, response.json()
        body = response.json()
        assert set(body) == {"next", "previous", "results"}
        ids += [item["id"] for item in body["results"]]
        queries.append(len(captured))
        url = body["next"]
    return ids, queries


def newest_first(items) -> list[int]:
    return [item.pk for item in sorted(items, key=lambda i: (i.created_at, i.pk), reverse=True)]


def test_page_numbers_stay_the_default(auth_client, user):
    make_items(user, 25)
    body = auth_client.get(LIST_URL).json()
    assert body["count"] == 25
    assert len(body["results"]) == 20
    assert body["next"].endswith("?page=2")


@pytest.mark.parametrize("same_time_every", [1, 7])
def test_cursor_walk_returns_every_item_once_newest_first(auth_client, user, same_time_every):
    """Ties on created_at (7 items per minute) are neither skipped nor repeated."""
    items = make_items(user, 53, same_time_every=same_time_every)
    ids, queries = walk(auth_client, f"{LIST_URL}?pagination=cursor&page_size=10")
    assert ids == newest_first(items)
    assert len(queries) == 6


def test_a_deep_page_costs_the_queries_of_the_first(auth_client, user):
    make_items(user, 100)
    _, queries = walk(auth_client, f"{LIST_URL}?pagination=cursor&page_size=10")
    assert len(queries) == 10
    # Session + user, then the page itself: no COUNT(*), no OFFSET growing with depth.
    assert set(queries) == {queries[0]}


def test_filters_and_other_users_apply_to_cursor_pages(auth_client, user, other_user):
    items = make_items(user, 30)
    make_items(other_user, 30)
    ids, _ = walk(auth_client, f"{LIST_URL}?pagination=cursor&is_read=false&page_size=8")
    assert ids == newest_first([item for item in items if not item.is_read])
    assert len(ids) == 20


def test_setting_makes_cursor_the_default(auth_client, user, engagement_settings):
    engagement_settings.update(FEED_PAGINATION="cursor")
    items = make_items(user, 25)
    ids, queries = walk(auth_client, LIST_URL)
    assert ids == newest_first(items)
    assert len(queries) == 2
    body = auth_client.get(f"{LIST_URL}?pagination=page").json()
    assert body["count"] == 25


def test_a_cursor_parameter_alone_selects_cursor_pages(auth_client, user):
    make_items(user, 25)
    first = auth_client.get(f"{LIST_URL}?pagination=cursor").json()
    assert "pagination=cursor" in first["next"]
    next_url = first["next"].replace("pagination=cursor&", "").replace("&pagination=cursor", "")
    assert "pagination" not in next_url
    body = auth_client.get(next_url).json()
    assert len(body["results"]) == 5
    assert "count" not in body


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("pagination=offset", 400, {"pagination": ["Use page or cursor."]}),
        ("cursor=not-a-cursor", 404, {"detail": "Invalid cursor"}),
        ("pagination=cursor&cursor=cD1hYmM%3D", 404, {"detail": "Invalid cursor"}),
    ],
)
def test_bad_pagination_input_is_a_clear_4xx(auth_client, user, query, status, error):
    make_items(user, 3)
    response = auth_client.get(f"{LIST_URL}?{query}")
    assert response.status_code == status
    assert response.json() == error


def test_unknown_setting_value_is_a_configuration_error(auth_client, engagement_settings):
    engagement_settings.update(FEED_PAGINATION="offset")
    with pytest.raises(ImproperlyConfigured, match="FEED_PAGINATION must be 'page' or 'cursor'"):
        auth_client.get(LIST_URL)


def deep_page_sql(auth_client, user, other_user) -> str:
    """The SELECT of the fourth cursor page of 10 (the feed query, not session or user).

    Another user's 500 older items make the user filter the selective one, as in a real
    table (were they newer, the cursor's ``created_at <`` bound alone would pick the rows).
    """
    make_items(user, 50)
    make_items(other_user, 500, days_ago=30)
    url = f"{LIST_URL}?pagination=cursor&page_size=10"
    for _ in range(3):
        url = auth_client.get(url).json()["next"]
    with CaptureQueriesContext(connection) as captured:
        assert auth_client.get(url).status_code == 200
    table = get_feed_model()._meta.db_table
    [sql] = [q["sql"] for q in captured.captured_queries if f'FROM "{table}"' in q["sql"]]
    return sql


def test_deep_cursor_page_seeks_through_the_user_index(auth_client, user, other_user):
    """The deep page is an index lookup of the user's rows, without OFFSET."""
    sql = deep_page_sql(auth_client, user, other_user)
    assert "OFFSET" not in sql
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Fresh statistics (earlier tests may have left the table analysed empty), and
            # no sequential scan: 50 rows would be read whole, whatever the indexes.
            cursor.execute(f"ANALYZE {connection.ops.quote_name(get_feed_model()._meta.db_table)}")
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        plan = " ".join(str(column) for row in cursor.fetchall() for column in row)
    # An index lookup by user (which one the planner takes on 550 rows varies with the
    # statistics; docs/performance.md shows the plan on 100,000 rows).
    if connection.vendor == "postgresql":
        assert re.search(r"Index Cond: \(+user_id = ", plan), plan
    else:
        assert "USING INDEX" in plan and "user_id=?" in plan, plan
