"""The admin: changelists, search, filters, actions, paginator and the dashboard page."""

from __future__ import annotations

import csv
import io
import re

import django
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.utils import timezone

from django_engagement.admin import setup_admin
from django_engagement.admin.dashboard import install_dashboard
from django_engagement.admin.filters import EventTypeListFilter
from django_engagement.admin.paginator import EstimatedCountPaginator
from django_engagement.models import EventAggregateDaily, get_event_model, get_feed_model
from django_engagement.services.dashboard import build_dashboard
from tests.test_services_dashboard import (
    KNOWN_WEEK_TOTALS,
    NO_TRACKING,
    local_noon,
    make_known_events,
)
from tests.testapp.models import Campaign

DASHBOARD_URL = "/admin/django_engagement/dashboard/"

# A second admin site, as a host with a custom AdminSite would set it up.
custom_site = admin.AdminSite(name="custom")
setup_admin(custom_site)
custom_site.register(get_user_model())
custom_site.register(Campaign)
# A site with the dashboard only (the host registers its own ModelAdmins, or none).
bare_site = admin.AdminSite(name="bare")
install_dashboard(bare_site)
urlpatterns = [path("custom-admin/", custom_site.urls), path("bare-admin/", bare_site.urls)]


@pytest.fixture
def quiet(engagement_settings):
    engagement_settings.update(TRACK=NO_TRACKING)
    return engagement_settings


@pytest.fixture
def known(quiet, django_user_model):
    return make_known_events(django_user_model)


@pytest.fixture
def superuser_client(client, quiet, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    return client


def changelist(model) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


def add_more_data(django_user_model, count: int = 6, prefix: str = "more") -> None:
    """More users, targets, events and feed items: query counts must not move."""
    Event, Feed = get_event_model(), get_feed_model()
    for n in range(count):
        name = f"{prefix}{n}"
        user = django_user_model.objects.create_user(name, f"{name}@example.com", "pw")
        campaign = Campaign.objects.create(name=f"More {n}")
        events = Event._default_manager.bulk_create(
            Event(event_type=kind, user=user, target=campaign, created_at=local_noon(n))
            for kind in ("target_joined", "page_view")
        )
        Feed._default_manager.bulk_create(
            Feed(user=user, activity_type="event", title="x", event=event, target=campaign)
            for event in events
        )


def result_count(response) -> int:
    return response.context["cl"].result_count


# -- changelists ----------------------------------------------------------------------

MODELS = {
    "event": get_event_model,
    "feed": get_feed_model,
    "aggregate": lambda: EventAggregateDaily,
}
CHANGELIST_QUERIES = [
    ("event", ""),
    ("event", "?q=alice"),
    ("event", "?q=anon-1"),
    ("event", "?event_type=target_joined&source=web"),
    ("event", "?created_at__year=2020"),
    ("feed", ""),
    ("feed", "?is_read__exact=0&activity_type=event"),
    ("feed", "?q=alice"),
    ("aggregate", "?source=web"),
]


@pytest.mark.parametrize(("model", "query"), CHANGELIST_QUERIES)
def test_changelists_answer_with_constant_queries(
    known, superuser_client, django_user_model, model, query
):
    url = changelist(MODELS[model]()) + query
    add_more_data(django_user_model, count=1, prefix="first")  # every kind of row is on the page
    with CaptureQueriesContext(connection) as small:
        assert superuser_client.get(url).status_code == 200
    add_more_data(django_user_model)
    with CaptureQueriesContext(connection) as large:
        assert superuser_client.get(url).status_code == 200
    assert len(large) == len(small)
    assert len(small) <= 12


def test_changelists_name_targets_without_a_query_per_row(
    known, superuser_client, django_assert_max_num_queries
):
    """TARGET_NAME_FIELD for the target model, str() for others, the id when it is gone."""
    gone = Campaign.objects.create(name="Deleted later")
    get_event_model()._default_manager.create(event_type="target_joined", target=gone)
    gone_pk = gone.pk
    gone.delete()
    add_more_data(get_user_model(), count=20)  # 20 more campaigns on the page
    url = changelist(get_event_model()) + "?event_type=target_joined"

    with django_assert_max_num_queries(12):
        response = superuser_client.get(url)

    rows = list(response.context["cl"].result_list)
    assert len(rows) == 27
    assert {row._engagement_target_name for row in rows} == {
        "Advent",
        "Bible Study 101",
        "Great Lent",
        None,  # the deleted campaign
        *[f"More {n}" for n in range(20)],
    }
    html = response.content.decode()
    assert '<td class="field-target_display">Great Lent</td>' in html
    assert '<td class="field-target_display">Bible Study 101</td>' in html
    assert f'<td class="field-target_display">campaign #{gone_pk}</td>' in html
    assert "campaign #" not in html.replace(f"campaign #{gone_pk}", "")


def test_event_search_and_filters_select_exact_rows(known, superuser_client):
    url = changelist(get_event_model())
    assert result_count(superuser_client.get(url)) == 17
    assert result_count(superuser_client.get(url, {"q": "alice"})) == 7
    assert result_count(superuser_client.get(url, {"q": "ali"})) == 7  # username prefix
    assert result_count(superuser_client.get(url, {"q": "anon-1"})) == 2
    assert result_count(superuser_client.get(url, {"q": "page_view"})) == 9
    assert result_count(superuser_client.get(url, {"q": "page"})) == 0  # types match exactly
    assert result_count(superuser_client.get(url, {"event_type": "target_joined"})) == 6
    assert result_count(superuser_client.get(url, {"source": "server"})) == 0
    today = timezone.localdate()
    hierarchy = {"created_at__year": today.year, "created_at__month": today.month}
    assert result_count(superuser_client.get(url, {**hierarchy, "created_at__day": today.day})) == 7


def test_feed_search_and_filters_select_exact_rows(known, superuser_client):
    url = changelist(get_feed_model())
    assert result_count(superuser_client.get(url, {"q": "alice"})) == 3
    assert result_count(superuser_client.get(url, {"q": "bob"})) == 0
    assert result_count(superuser_client.get(url, {"is_read__exact": "0"})) == 3
    assert result_count(superuser_client.get(url, {"activity_type": "milestone"})) == 0


def test_event_type_filter_lists_aggregated_types_without_the_all_row(known, superuser_client):
    url = changelist(get_event_model())
    response = superuser_client.get(url)
    spec = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "event_type")
    assert [choice for choice, _label in spec.lookup_choices] == [
        "login",
        "page_view",
        "target_joined",
        "target_left",
    ]
    EventAggregateDaily.objects.bulk_create(
        EventAggregateDaily(date=timezone.localdate(), event_type=kind, source="web", count=1)
        for kind in ("checkout", "page_view")
    )
    response = superuser_client.get(url)
    spec = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "event_type")
    assert [choice for choice, _label in spec.lookup_choices] == ["checkout", "page_view"]


def test_event_type_filter_uses_configured_types(quiet, superuser_client):
    quiet.update(TRACK=NO_TRACKING, EVENT_TYPES=["signup", "checkout"])
    request = superuser_client.get(changelist(get_event_model())).wsgi_request
    lookups = EventTypeListFilter(
        request, {}, get_event_model(), admin.site._registry[get_event_model()]
    ).lookup_choices
    assert lookups == [("checkout", "checkout"), ("signup", "signup")]


# -- events are append-only --------------------------------------------------------------


def test_events_cannot_be_added_or_edited(known, superuser_client):
    Event = get_event_model()
    event = Event._default_manager.get(event_type="login")
    opts = Event._meta
    add_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[event.pk])
    assert superuser_client.get(add_url).status_code == 403
    response = superuser_client.get(change_url)
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert b"carol" in response.content
    assert superuser_client.post(change_url, {"event_type": "hacked"}).status_code == 403
    assert Event._default_manager.get(pk=event.pk).event_type == "login"


def test_event_detail_links_the_target(known, superuser_client):
    Event = get_event_model()
    event = Event._default_manager.filter(event_type="target_left").get()
    opts = Event._meta
    response = superuser_client.get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[event.pk])
    )
    assert "Great Lent" in response.content.decode()


# -- actions ---------------------------------------------------------------------------


def run_action(client, model, action: str, ids):
    return client.post(
        changelist(model),
        {"action": action, "_selected_action": [str(pk) for pk in ids], "index": "0"},
    )


@pytest.fixture
def feed_items(quiet, user, other_user):
    Feed = get_feed_model()
    items = Feed._default_manager.bulk_create(
        [
            Feed(user=user, activity_type="event", title="a"),
            Feed(user=user, activity_type="event", title="b"),
            Feed(user=user, activity_type="event", title="c"),
            Feed(user=other_user, activity_type="event", title="d", is_read=True,
                 read_at=timezone.now()),
        ]
    )  # fmt: skip
    return [item.pk for item in items]


def read_state(ids) -> list[tuple[bool, bool]]:
    rows = get_feed_model()._default_manager.filter(pk__in=ids).order_by("title")
    return [(item.is_read, item.read_at is not None) for item in rows]


def updates(context) -> list[str]:
    # On PostgreSQL the UPDATE is the first part of a statement that also moves the counters.
    starts = ("UPDATE", "WITH changed AS (UPDATE")
    return [q["sql"] for q in context.captured_queries if q["sql"].startswith(starts)]


def test_mark_read_action_updates_exactly_the_selected_unread_items(feed_items, superuser_client):
    a, b, c, d = feed_items
    with CaptureQueriesContext(connection) as context:
        response = run_action(superuser_client, get_feed_model(), "mark_read", [a, b, d])
    assert response.status_code == 302
    assert len(updates(context)) == 1
    assert read_state(feed_items) == [(True, True), (True, True), (False, False), (True, True)]
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["2 items marked as read."]


def test_mark_unread_action_updates_exactly_the_selected_read_items(feed_items, superuser_client):
    a, b, c, d = feed_items
    run_action(superuser_client, get_feed_model(), "mark_read", [a, b])
    with CaptureQueriesContext(connection) as context:
        response = run_action(superuser_client, get_feed_model(), "mark_unread", [a, c, d])
    assert len(updates(context)) == 1
    assert read_state(feed_items) == [(False, False), (True, True), (False, False), (False, False)]
    assert [str(m) for m in response.wsgi_request._messages][-1] == "2 items marked as unread."


def test_csv_export_action_streams_the_selected_events(quiet, superuser_client, user):
    Event = get_event_model()
    first, second = Event._default_manager.bulk_create(
        [
            Event(event_type="page_view", user=user, source="web", ip_address="10.0.0.0",
                  data={"b": 1, "a": "é"}, created_at=local_noon(1)),
            Event(event_type="login", anonymous_id="anon-9", created_at=local_noon(0)),
        ]
    )  # fmt: skip
    Event._default_manager.create(event_type="not_selected")
    response = run_action(superuser_client, Event, "export_csv", [first.pk, second.pk])
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="events-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["id", "created_at", "event_type", "user_id", "anonymous_id", "source", "ip_address",
         "payload"],
        [str(second.uuid), f"{local_noon(0):%Y-%m-%dT%H:%M:%S}Z", "login", "",
         "anon-9", "server", "", "{}"],
        [str(first.uuid), f"{local_noon(1):%Y-%m-%dT%H:%M:%S}Z", "page_view",
         str(user.pk), "", "web", "10.0.0.0", '{"a":"é","b":1}'],
    ]  # fmt: skip


# -- paginator -------------------------------------------------------------------------


def test_paginator_counts_exactly_on_small_or_filtered_tables(known, django_assert_num_queries):
    events = get_event_model()._default_manager.all()
    with django_assert_num_queries(1 if connection.vendor != "postgresql" else 2):
        assert EstimatedCountPaginator(events, 10).count == 17
    filtered = events.filter(event_type="page_view")
    with django_assert_num_queries(1):
        assert EstimatedCountPaginator(filtered, 10).count == 9


@pytest.mark.skipif(connection.vendor != "postgresql", reason="reltuples is PostgreSQL's")
def test_paginator_uses_the_planner_estimate_for_big_unfiltered_tables(known):
    Event = get_event_model()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(Event._meta.db_table)}")
    Event._default_manager.bulk_create(Event(event_type="late") for _ in range(3))

    class EstimateAlways(EstimatedCountPaginator):
        estimate_above = 0

    # The estimate predates the 3 new rows: proof that no COUNT(*) ran.
    assert EstimateAlways(Event._default_manager.all(), 10).count == 17
    assert EstimateAlways(Event._default_manager.filter(event_type="late"), 10).count == 3


# -- dashboard -------------------------------------------------------------------------


def test_dashboard_redirects_anonymous_and_non_staff_to_login(quiet, client, user):
    response = client.get(DASHBOARD_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    client.force_login(user)
    response = client.get(DASHBOARD_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_dashboard_needs_permission_to_view_events(quiet, client, user):
    user.is_staff = True
    user.save()
    client.force_login(user)
    assert client.get(DASHBOARD_URL).status_code == 403
    opts = get_event_model()._meta
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label=opts.app_label, codename=f"view_{opts.model_name}"
        )
    )
    assert client.get(DASHBOARD_URL).status_code == 200


def test_dashboard_url_name():
    assert reverse("admin:django_engagement_dashboard") == DASHBOARD_URL


def test_dashboard_context_has_exact_numbers(known, superuser_client):
    response = superuser_client.get(DASHBOARD_URL)
    assert response.status_code == 200
    context = response.context
    assert context["days"] == 7
    assert {key: kpi["value"] for key, kpi in context["dashboard"]["kpis"].items()} == (
        KNOWN_WEEK_TOTALS
    )
    assert (
        context["dashboard"]["events_per_day"][-1]["count"]
        == build_dashboard(7)["events_per_day"][-1]["count"]
    )
    # Neither the user model nor the target model is registered on admin.site: no links.
    assert [(row["username"], row["count"], row["admin_url"]) for row in context["top_users"]] == [
        ("alice", 6, None),
        ("bob", 3, None),
        ("carol", 3, None),
    ]
    assert [(row["name"], row["admin_url"]) for row in context["top_targets"]] == [
        ("Great Lent", None),
        ("Bible Study 101", None),
        ("Advent", None),
    ]
    html = response.content.decode()
    assert '<script id="engagement-dashboard-data" type="application/json">' in html
    assert '<script src="/static/django_engagement/dashboard.js" defer></script>' in html


@pytest.mark.parametrize(
    ("query", "days"),
    [("", 7), ("?days=30", 30), ("?days=365", 365), ("?days=14", 14), ("?days=abc", 7),
     ("?days=0", 7), ("?days=-3", 7), ("?days=366", 7), ("?days=1e3", 7)],
)  # fmt: skip
def test_dashboard_days_fall_back_to_seven(known, superuser_client, query, days):
    response = superuser_client.get(DASHBOARD_URL + query)
    assert response.status_code == 200
    assert response.context["days"] == days
    assert len(response.context["dashboard"]["events_per_day"]) == days


def test_dashboard_page_has_constant_queries(known, superuser_client, django_user_model):
    with CaptureQueriesContext(connection) as small:
        superuser_client.get(DASHBOARD_URL + "?days=30")
    add_more_data(django_user_model, count=12)
    with CaptureQueriesContext(connection) as large:
        response = superuser_client.get(DASHBOARD_URL + "?days=30")
    assert len(response.context["top_targets"]) == 10
    assert len(large) == len(small)


def test_dashboard_is_listed_in_the_engagement_app(known, superuser_client):
    for url in (reverse("admin:index"), reverse("admin:app_list", args=["django_engagement"])):
        response = superuser_client.get(url)
        engagement = next(
            app for app in response.context["app_list"] if app["app_label"] == "django_engagement"
        )
        assert engagement["models"][0]["admin_url"] == DASHBOARD_URL
        assert f'href="{DASHBOARD_URL}"' in response.content.decode()


def test_dashboard_is_not_listed_without_event_permission(quiet, client, user):
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_eventaggregatedaily"))
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert DASHBOARD_URL not in response.content.decode()


@pytest.mark.urls(__name__)
def test_setup_admin_serves_a_custom_admin_site(known, superuser_client):
    url = reverse("custom:django_engagement_dashboard")
    assert url == "/custom-admin/django_engagement/dashboard/"
    response = superuser_client.get(url)
    assert response.status_code == 200
    assert response.context["dashboard"]["kpis"]["events"]["value"] == 15
    # Registered on this site: rows link to the user's and the campaign's admin pages.
    alice, lent = known["alice"], known["lent"]
    assert response.context["top_users"][0]["admin_url"] == (
        f"/custom-admin/testapp/user/{alice.pk}/change/"
    )
    targets = response.context["top_targets"]
    assert targets[0]["admin_url"] == f"/custom-admin/testapp/campaign/{lent.pk}/change/"
    assert targets[1]["admin_url"] is None  # a Course: not the target model
    assert f'href="/custom-admin/testapp/user/{alice.pk}/change/"' in response.content.decode()
    opts = get_event_model()._meta
    events_url = reverse(f"custom:{opts.app_label}_{opts.model_name}_changelist")
    assert superuser_client.get(events_url).status_code == 200
    install_dashboard(custom_site)  # idempotent
    names = [getattr(p, "name", None) for p in custom_site.get_urls()]
    assert names.count("django_engagement_dashboard") == 1


@pytest.mark.urls(__name__)
def test_install_dashboard_alone_on_a_site_without_package_models(known, superuser_client):
    response = superuser_client.get("/bare-admin/django_engagement/dashboard/")
    assert response.status_code == 200
    assert response.context["app_url"] is None
    assert response.context["dashboard"]["kpis"]["joins"]["value"] == 6


def breadcrumbs_tag(html: str) -> str:
    """The element of ``class="breadcrumbs"``: ``ol`` (Django 6.1+) or ``div`` (before)."""
    return re.search(r'<(\w+) class="breadcrumbs">', html).group(1)


def test_dashboard_breadcrumbs_use_the_markup_of_the_installed_admin(known, superuser_client):
    django_page = superuser_client.get(reverse("admin:app_list", args=["django_engagement"]))
    dashboard = superuser_client.get(DASHBOARD_URL).content.decode()

    assert breadcrumbs_tag(dashboard) == breadcrumbs_tag(django_page.content.decode())
    assert breadcrumbs_tag(dashboard) == ("ol" if django.VERSION >= (6, 1) else "div")
    if django.VERSION >= (6, 1):
        assert '<li aria-current="page">Dashboard</li>' in dashboard
