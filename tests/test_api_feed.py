"""activity-feed/: list, filters, pagination, retrieve, summary, mark-read, generate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_engagement.models import get_event_model, get_feed_model
from tests.helpers import feed
from tests.testapp.models import Course

LIST_URL = reverse("django_engagement:engagement-activity-feed-list")
SUMMARY_URL = reverse("django_engagement:engagement-activity-feed-summary")
MARK_READ_URL = reverse("django_engagement:engagement-activity-feed-mark-read")
GENERATE_URL = reverse("django_engagement:engagement-activity-feed-generate")

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]

NOW = timezone.now()
BAD_DATE = ["Enter an ISO 8601 date (YYYY-MM-DD) or date and time."]
EITHER = ["Send activity_ids (a list of ids) or mark_all: true."]


def detail_url(pk) -> str:
    return reverse("django_engagement:engagement-activity-feed-detail", args=[pk])


def make_items(user, count, *, target=None, activity_type="event", start=None, **fields):
    """``count`` items one minute apart, the first at ``start`` (now), newest last."""
    Feed = get_feed_model()
    start = timezone.now() if start is None else start
    content_type = ContentType.objects.get_for_model(target) if target is not None else None
    items = [
        Feed(
            user=user,
            activity_type=activity_type,
            title=f"{activity_type} {n}",
            created_at=start + timedelta(minutes=n),
            target_content_type=content_type,
            target_object_id=str(target.pk) if target is not None else "",
            **fields,
        )
        for n in range(count)
    ]
    return feed().bulk_create(items)


# Access


def test_anonymous_is_refused(api_client):
    assert api_client.get(LIST_URL).status_code == 403
    assert api_client.get(SUMMARY_URL).status_code == 403
    assert api_client.post(MARK_READ_URL, {"mark_all": True}, format="json").status_code == 403


def test_list_shows_only_own_items_newest_first(auth_client, user, other_user, campaign):
    course = Course.objects.create(title="Icons 101")
    make_items(
        user, 1, target=campaign, activity_type="target_join", start=NOW - timedelta(hours=2)
    )
    make_items(user, 1, target=course, activity_type="milestone", data={"threshold": 10})
    make_items(other_user, 3)

    response = auth_client.get(LIST_URL)

    assert response.status_code == 200
    body = response.json()
    assert (body["count"], body["next"], body["previous"]) == (2, None, None)
    newest, oldest = body["results"]
    assert newest == {
        "id": newest["id"],
        "activity_type": "milestone",
        "activity_type_display": "Milestone reached",
        "title": "milestone 0",
        "description": "",
        "is_read": False,
        "read_at": None,
        "created_at": newest["created_at"],
        "age_display": "just now",
        "data": {"threshold": 10},
        "target_type": "testapp.course",
        "target_id": course.pk,
    }
    assert (oldest["target_type"], oldest["target_id"]) == ("testapp.campaign", str(campaign.pk))
    assert (oldest["activity_type_display"], oldest["age_display"]) == ("Joined campaign", "2h ago")


# Filters


def test_filter_by_activity_type_and_read_state(auth_client, user):
    make_items(user, 2, activity_type="target_join")
    make_items(user, 3, activity_type="milestone", is_read=True, read_at=NOW)

    def count(query):
        response = auth_client.get(LIST_URL, query)
        assert response.status_code == 200
        return response.json()["count"]

    assert count({"activity_type": "target_join"}) == 2
    assert count({"activity_type": "nothing"}) == 0
    assert count({"is_read": "true"}) == 3
    assert count({"is_read": "false"}) == 2
    assert count({"is_read": "0", "activity_type": "milestone"}) == 0


def test_date_filters_take_dates_and_datetimes(auth_client, user):
    for day in (1, 2, 3):
        make_items(user, 1, start=datetime(2024, 1, day, 12, 0, tzinfo=UTC))

    def titles(query):
        response = auth_client.get(LIST_URL, query)
        assert response.status_code == 200
        return [item["created_at"][:10] for item in response.json()["results"]]

    assert titles({"start_date": "2024-01-02"}) == ["2024-01-03", "2024-01-02"]
    assert titles({"end_date": "2024-01-02"}) == ["2024-01-02", "2024-01-01"]
    assert titles({"start_date": "2024-01-02", "end_date": "2024-01-02"}) == ["2024-01-02"]
    assert titles({"start_date": "2024-01-02T12:00:01"}) == ["2024-01-03"]
    assert titles({"end_date": "2024-01-02T12:00:00Z"}) == ["2024-01-02", "2024-01-01"]


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({"start_date": "yesterday"}, {"start_date": BAD_DATE}),
        ({"end_date": "2024-02-30"}, {"end_date": BAD_DATE}),
        ({"is_read": "maybe"}, {"is_read": ["Use true or false."]}),
        # No midnight after 9999-12-31, no UTC instant for year 1 at +05:00: not a 500.
        ({"end_date": "9999-12-31"}, {"end_date": ["Date out of range."]}),
        ({"start_date": "0001-01-01T00:00:00+05:00"}, {"start_date": ["Date out of range."]}),
        (
            {"activity_type": "x" * 65},
            {"activity_type": ["Ensure this value has at most 64 characters (it has 65)."]},
        ),
    ],
)
def test_bad_filter_values_are_400_naming_the_parameter(auth_client, query, errors):
    response = auth_client.get(LIST_URL, query)

    assert response.status_code == 400
    assert response.json() == errors


# Pagination and query counts


def test_pagination_defaults_and_page_size(auth_client, user):
    make_items(user, 105)

    first = auth_client.get(LIST_URL).json()
    small = auth_client.get(LIST_URL, {"page_size": 5, "page": 2}).json()
    capped = auth_client.get(LIST_URL, {"page_size": 1000}).json()

    assert (first["count"], len(first["results"])) == (105, 20)
    assert first["next"].endswith("?page=2")
    assert first["results"][0]["title"] == "event 104"
    assert [item["title"] for item in small["results"]] == [f"event {n}" for n in range(99, 94, -1)]
    assert small["previous"].endswith("?page_size=5")
    assert len(capped["results"]) == 100
    assert auth_client.get(LIST_URL, {"page": 99}).status_code == 404


def list_queries(client, page_size: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, {"page_size": page_size})
    assert response.status_code == 200
    assert len(response.json()["results"]) == page_size
    return len(queries)


def test_list_query_count_is_constant_with_mixed_targets(auth_client, user, campaign):
    courses = [Course.objects.create(title=f"Course {n}") for n in range(3)]
    for n in range(60):
        make_items(user, 1, target=[campaign, *courses][n % 4], start=NOW - timedelta(minutes=n))
    list_queries(auth_client, 5)  # the first request caches the two content types

    five, fifty = list_queries(auth_client, 5), list_queries(auth_client, 50)

    # COUNT, the page, then one query per target type (Campaign, Course)
    assert five == fifty == 4


# Retrieve


def test_retrieve_own_item_only(auth_client, user, other_user, campaign):
    [mine] = make_items(user, 1, target=campaign, activity_type="target_join")
    [theirs] = make_items(other_user, 1)

    response = auth_client.get(detail_url(mine.pk))

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["target_id"]) == (mine.pk, str(campaign.pk))
    assert auth_client.get(detail_url(theirs.pk)).status_code == 404
    not_an_id = auth_client.get(detail_url(mine.pk).replace(f"/{mine.pk}/", "/abc/"))
    assert (not_an_id.status_code, not_an_id["Content-Type"]) == (404, "application/json")


# Summary


def test_summary_counts(auth_client, user, other_user):
    make_items(user, 3, activity_type="target_join")
    make_items(user, 2, activity_type="milestone", is_read=True, start=NOW - timedelta(hours=1))
    make_items(user, 2, activity_type="reminder", start=NOW + timedelta(hours=1))
    make_items(other_user, 4)

    with CaptureQueriesContext(connection) as queries:
        response = auth_client.get(SUMMARY_URL)

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("total_items", "unread_count", "read_count")} == {
        "total_items": 7,
        "unread_count": 5,
        "read_count": 2,
    }
    assert body["activity_types"] == {"target_join": 3, "reminder": 2, "milestone": 2}
    assert [item["title"] for item in body["recent_activity"]] == [
        "reminder 1",
        "reminder 0",
        "target_join 2",
        "target_join 1",
        "target_join 0",
    ]
    assert len(queries) <= 3


# Mark read


def test_mark_read_by_ids_touches_only_own_unread_items(auth_client, user, other_user):
    mine = make_items(user, 3)
    [already_read] = make_items(user, 1, is_read=True, read_at=NOW - timedelta(days=1))
    theirs = make_items(other_user, 2)
    ids = [mine[0].pk, mine[1].pk, already_read.pk, theirs[0].pk]

    response = auth_client.post(MARK_READ_URL, {"activity_ids": ids}, format="json")

    assert response.status_code == 200
    assert response.json() == {"message": "Marked 2 items as read", "updated_count": 2}
    assert sorted(feed().filter(is_read=True).values_list("pk", flat=True)) == sorted(
        [mine[0].pk, mine[1].pk, already_read.pk]
    )
    assert feed().get(pk=already_read.pk).read_at == NOW - timedelta(days=1)
    assert feed().filter(user=other_user, is_read=False).count() == 2


def test_mark_all(auth_client, user, other_user):
    make_items(user, 4)
    make_items(other_user, 2)

    response = auth_client.post(MARK_READ_URL, {"mark_all": True}, format="json")
    again = auth_client.post(MARK_READ_URL, {"mark_all": True}, format="json")

    assert response.json() == {"message": "Marked 4 items as read", "updated_count": 4}
    assert again.json() == {"message": "Marked 0 items as read", "updated_count": 0}
    assert feed().filter(user=other_user, is_read=False).count() == 2
    assert feed().filter(user=user, read_at__isnull=True).count() == 0


def test_mark_one_item_message(auth_client, user):
    [item] = make_items(user, 1)

    response = auth_client.post(MARK_READ_URL, {"activity_ids": [item.pk]}, format="json")

    assert response.json() == {"message": "Marked 1 item as read", "updated_count": 1}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"non_field_errors": EITHER}),
        ({"mark_all": False}, {"non_field_errors": EITHER}),
        (
            {"mark_all": True, "activity_ids": [1]},
            {"non_field_errors": ["Send activity_ids or mark_all, not both."]},
        ),
        ({"activity_ids": ["x"]}, {"activity_ids": {"0": ["A valid integer is required."]}}),
        # Past 64 bits: SQLite raised OverflowError (a 500) binding it.
        (
            {"activity_ids": [2**63]},
            {
                "activity_ids": {
                    "0": ["Ensure this value is less than or equal to 9223372036854775807."]
                }
            },
        ),
        ({"activity_ids": 5}, {"activity_ids": ['Expected a list of items but got type "int".']}),
        (
            {"activity_ids": list(range(1, 1002))},
            {"activity_ids": ["Ensure this field has no more than 1000 elements."]},
        ),
        ({"ids": [1]}, {"ids": ["Unknown field."]}),
    ],
)
def test_mark_read_bad_body_is_400(auth_client, user, body, errors):
    make_items(user, 1)

    response = auth_client.post(MARK_READ_URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert feed().filter(is_read=True).count() == 0


# Generate


def joined_events(user, campaign, days_ago):
    Event = get_event_model()
    content_type = ContentType.objects.get_for_model(campaign)
    Event._default_manager.bulk_create(
        Event(
            event_type="target_joined",
            user=user,
            target_content_type=content_type,
            target_object_id=str(campaign.pk),
            created_at=NOW - timedelta(days=days),
        )
        for days in days_ago
    )


def test_generate_is_admin_only(auth_client, user):
    response = auth_client.post(GENERATE_URL, {"user_id": user.pk}, format="json")

    assert response.status_code == 403


def test_generate_builds_feed_idempotently(admin_client_api, user, campaign):
    joined_events(user, campaign, days_ago=[0, 1, 2, 9, 20])  # 20 is out of range

    first = admin_client_api.post(GENERATE_URL, {"user_id": user.pk, "days_back": 10}, "json")
    second = admin_client_api.post(GENERATE_URL, {"user_id": user.pk, "days_back": 10}, "json")

    assert first.status_code == 200
    body = first.json()
    assert body["message"] == "Generated 4 activity feed items for user alice"
    assert body["created_count"] == 4
    start = datetime.fromisoformat(body["date_range"]["start"])
    end = datetime.fromisoformat(body["date_range"]["end"])
    assert end - start == timedelta(days=10)
    assert second.json()["created_count"] == 0
    assert second.json()["message"] == "Generated 0 activity feed items for user alice"
    assert feed().filter(user=user, activity_type="target_join").count() == 4


def test_generate_skips_what_happened_before_the_user_joined(admin_client_api, user, campaign):
    """A target created before she joined does not "start" in her feed; her join does show."""
    campaign.members.add(user)
    get_event_model()._default_manager.create(
        event_type="target_created", target=campaign, created_at=NOW - timedelta(days=6)
    )
    joined_events(user, campaign, days_ago=[3])

    response = admin_client_api.post(GENERATE_URL, {"user_id": user.pk, "days_back": 10}, "json")

    assert response.json()["created_count"] == 1
    assert list(feed().values_list("activity_type", "created_at")) == [
        ("target_join", NOW - timedelta(days=3))
    ]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"user_id": ["This field is required."]}),
        ({"user_id": 99999}, {"user_id": ['Invalid pk "99999" - object does not exist.']}),
        ({"user_id": "abc"}, {"user_id": ["A user id is an integer."]}),
        (
            {"user_id": "admin", "days_back": 0},
            {"days_back": ["Ensure this value is greater than or equal to 1."]},
        ),
        ({"user_id": "admin", "days": 3}, {"days": ["Unknown field."]}),
    ],
)
def test_generate_bad_body_is_400(admin_client_api, admin_user, body, errors):
    if body.get("user_id") == "admin":
        body = {**body, "user_id": admin_user.pk}
    response = admin_client_api.post(GENERATE_URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == errors
