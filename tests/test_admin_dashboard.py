"""Dashboard 2.0 in the admin: scopes, custom ranges, comparisons, links, CSV, 400s,
and a bounded number of queries whatever the period."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from django_engagement.models import get_event_model
from tests.test_services_dashboard import NO_TRACKING, day, make_known_events

DASHBOARD_URL = "/admin/django_engagement/dashboard/"


@pytest.fixture
def known(engagement_settings, django_user_model):
    engagement_settings.update(TRACK=NO_TRACKING)
    return make_known_events(django_user_model)


@pytest.fixture
def staff(client, known, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.org", "pw"))
    return client


def get(client, query: str = "", status: int = 200):
    response = client.get(DASHBOARD_URL + query)
    assert response.status_code == status, response.content[:500]
    return response


def test_kpis_compare_with_the_previous_period(staff):
    kpis = get(staff).context["dashboard"]["kpis"]
    # Days 0-6 against days 7-13: dave's page view 7 days ago is the whole previous week.
    meta = get_event_model()._meta
    changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
    assert kpis["events"].pop("url").startswith(f"{changelist}?")
    assert kpis["events"] == {
        "value": 15,
        "previous": 1,
        "change": 14,
        "percent": 1400.0,
        "series": [1, 1, 0, 3, 0, 3, 7],
    }
    assert kpis["unique_users"]["previous"] == 1
    assert kpis["unique_users"]["series"] == [1, 1, 0, 2, 0, 1, 2]
    assert kpis["joins"]["series"] == [0, 1, 0, 3, 0, 0, 2]
    assert kpis["leaves"]["value"] == 1 and kpis["leaves"]["percent"] is None
    assert kpis["feed_items"]["previous"] == 1  # the item of 10 days ago
    html = get(staff).content.decode()
    assert 'data-change="14"' in html and "+14 (+1400.0%)" in html


def test_active_users_and_daily_users(staff):
    data = get(staff).context["dashboard"]
    assert data["active_users"] == {
        "dau": 2,
        "wau": 3,
        "mau": 4,
        "dau_average": 0.3,  # 9 user-days over 30 days
        "stickiness": 0.075,
    }
    assert [row["users"] for row in data["daily_users"]] == [1, 1, 0, 2, 0, 1, 2]
    assert [row["anonymous"] for row in data["daily_users"]] == [0, 0, 0, 0, 0, 1, 1]


def test_event_types_are_labelled(staff):
    by_type = get(staff).context["dashboard"]["events_by_type"]
    assert [(row["event_type"], row["label"], row["count"]) for row in by_type] == [
        ("page_view", "Page view", 7),
        ("target_joined", "Joined campaign", 6),
        ("login", "Login", 1),
        ("target_left", "Left campaign", 1),
    ]


def test_target_and_group_scope_every_chart(staff, known):
    lent = known["lent"]
    data = get(staff, f"?target={lent.pk}").context["dashboard"]
    assert {key: kpi["value"] for key, kpi in data["kpis"].items()} == {
        "events": 4,
        "unique_users": 3,
        "unique_anonymous": 0,
        "feed_items": 0,
        "joins": 3,
        "leaves": 1,
    }
    assert [row["username"] for row in data["top_users"]] == ["bob", "alice", "carol"]
    assert [row["name"] for row in data["top_targets"]] == ["Great Lent"]
    # Club "St. Mary" holds lent and advent (the course is not a campaign).
    group = get(staff, "?group=St.+Mary").context
    assert group["dashboard"]["kpis"]["joins"]["value"] == 4
    assert [row["name"] for row in group["dashboard"]["top_targets"]] == ["Great Lent", "Advent"]
    assert group["scope_name"] == "St. Mary"
    assert ("St. Mary") in group["group_choices"]
    assert (str(lent.pk), "Great Lent") in group["target_choices"]


def test_custom_range_and_funnel(staff):
    start, end = day(6), day(3)
    response = get(staff, f"?start={start}&end={end}&step=target_joined&step=target_left")
    data = response.context["dashboard"]
    assert (data["start"], data["end"], data["days"]) == (start, end, 4)
    assert data["previous"] == {"start": day(10), "end": day(7)}
    assert data["kpis"]["events"]["value"] == 5
    assert response.context["days"] is None  # no preset is marked
    # Within days 6..3 carol and alice joined and nobody left.
    assert [s["users"] for s in data["funnel"]] == [2, 0]
    # Over the week bob left lent (yesterday) before he joined it (today): order counts.
    week = get(staff, "?days=7&step=target_left&step=target_joined").context["dashboard"]
    assert [(s["label"], s["users"]) for s in week["funnel"]] == [
        ("Left campaign", 1),
        ("Joined campaign", 1),
    ]
    week = get(staff, "?days=7&step=target_joined&step=target_left").context["dashboard"]
    assert [s["users"] for s in week["funnel"]] == [3, 0]


def test_retention_heatmap(staff):
    context = get(staff, "?days=30").context
    cohorts = context["dashboard"]["retention"]["cohorts"]
    # bob, carol and dave are new in the window; alice was first seen 40 days ago.
    assert sum(cohort["users"] for cohort in cohorts) == 3
    assert all(cohort["active"][0] == cohort["users"] for cohort in cohorts)
    rows = context["retention_rows"]
    assert all(row["url"] for row in rows)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?start=2026-01-01", "needs both start and end"),
        ("?start=2026-13-01&end=2026-12-01", "start must be a date"),
        ("?start=2026-02-01&end=2026-01-01", "is after end"),
        ("?start=2024-01-01&end=2026-01-01", "at most 365 days"),
        ("?start=9999-12-31&end=9999-12-31", "start must be a date"),
        ("?target=nope", "is not a campaign id"),
        ("?target=1&group=x", "not both"),
        ("?step=login", "2 to 5 steps"),
        ("?" + "&".join(["step=a"] * 6), "2 to 5 steps"),
        ("?step=login&step=Bad%20Type", "is not an event type code"),
        ("?download=nope", "download must be one of"),
    ],
)
def test_bad_input_is_a_400_with_its_reason(staff, query, message):
    response = get(staff, query, status=400)
    assert message in response.context["error"]
    assert message in response.content.decode().replace("&#x27;", "'")


def test_csv_downloads(staff, known):
    response = get(staff, "?days=7&download=events_by_type")
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == (
        f'attachment; filename="engagement-events_by_type-{day(6)}-{day(0)}.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["event_type", "label", "events"],
        ["page_view", "Page view", "7"],
        ["target_joined", "Joined campaign", "6"],
        ["login", "Login", "1"],
        ["target_left", "Left campaign", "1"],
    ]
    kpis = get(staff, f"?target={known['lent'].pk}&download=kpis")
    rows = list(csv.reader(io.StringIO(b"".join(kpis.streaming_content).decode())))
    assert rows[1] == ["events", "4", "0", "4", ""]
    for chart in ("events_per_day", "daily_users", "active_users", "joins_leaves_per_day",
                  "retention", "top_users", "top_targets"):  # fmt: skip
        response = get(staff, f"?download={chart}")
        text = b"".join(response.streaming_content).decode()
        assert text.count("\n") >= 2, chart
    funnel = get(staff, "?step=target_joined&step=target_left&download=funnel")
    assert b"".join(funnel.streaming_content).decode().splitlines() == [
        "step,event_type,label,users",
        "1,target_joined,Joined campaign,3",
        "2,target_left,Left campaign,0",
    ]


def changelist_count(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    assert "e=1" not in response.get("Location", "")
    return response.context["cl"].result_count


def test_every_link_opens_the_matching_changelist(staff, known):
    data = get(staff, "?step=target_joined&step=target_left").context["dashboard"]
    for row in data["events_per_day"]:
        assert changelist_count(staff, row["links"]["count"]) == row["count"], row["date"]
    for row in data["joins_leaves_per_day"]:
        assert changelist_count(staff, row["links"]["joins"]) == row["joins"]
        assert changelist_count(staff, row["links"]["leaves"]) == row["leaves"]
    for row in data["events_by_type"]:
        assert changelist_count(staff, row["url"]) == row["count"]
    for row in data["top_users"]:
        assert changelist_count(staff, row["events_url"]) == row["count"]
    for row in data["top_targets"]:
        assert changelist_count(staff, row["events_url"]) == row["count"]
    assert changelist_count(staff, data["kpis"]["events"]["url"]) == 15
    assert changelist_count(staff, data["kpis"]["joins"]["url"]) == 6
    # Scoped: the links keep the target (or the group's targets).
    lent = known["lent"]
    scoped = get(staff, f"?target={lent.pk}").context["dashboard"]
    query = parse_qs(urlsplit(scoped["events_per_day"][-1]["links"]["count"]).query)
    assert query["target_object_id"] == [str(lent.pk)]
    assert changelist_count(staff, scoped["kpis"]["events"]["url"]) == 4
    group = get(staff, "?group=St.+Mary").context["dashboard"]
    assert changelist_count(staff, group["kpis"]["joins"]["url"]) == 4
    for row in group["events_by_type"]:
        assert changelist_count(staff, row["url"]) == row["count"]


@pytest.mark.parametrize("query", ["?days=7", "?days=365"])
def test_queries_are_bounded_whatever_the_period(
    staff, known, query, django_assert_max_num_queries
):
    steps = "&step=page_view&step=target_joined&step=target_left"
    with django_assert_max_num_queries(28):
        get(staff, query + steps)
    with django_assert_max_num_queries(28):
        get(staff, f"{query}&group=St.+Mary{steps}")


def test_query_count_does_not_grow_with_the_period(staff, known):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = []
    for query in ("?days=7", "?days=365", f"?start={day(364)}&end={day(0)}"):
        with CaptureQueriesContext(connection) as queries:
            get(staff, query + "&step=page_view&step=login")
        counts.append(len(queries))
    # 20 on both databases today, sessions and auth included; the point is the equality.
    assert counts[0] == counts[1] == counts[2], counts
