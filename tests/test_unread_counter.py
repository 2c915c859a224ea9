"""The unread badge as a counter row per user (``FeedUnreadCount``, services/unread.py).

Every write path is checked against the truth, a ``COUNT(*)`` of each user's unread
items, on known data; the badge reads are checked for their query counts; a threaded
test on PostgreSQL checks exactness under concurrency.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError
from django.db import connection, connections
from django.db.models import Case, Count, Value, When

from django_engagement import feed_summary, notify, record_event
from django_engagement.models import FeedUnreadCount, get_feed_model
from django_engagement.services import partitions
from django_engagement.services.feed import mark_read, populate_feed
from django_engagement.services.retention import apply_retention
from django_engagement.services.unread import rebuild_unread, unread_count, unread_counts
from tests.helpers import command_output, feed, make_users

pytestmark = pytest.mark.django_db

POSTGRES = connection.vendor == "postgresql"
DAY = timedelta(days=1)


def counters() -> dict:
    """Every non-zero counter, ``user id -> unread``."""
    return dict(FeedUnreadCount.objects.exclude(unread=0).values_list("user_id", "unread"))


def truth() -> dict:
    """What the counters must say: each user's unread items, counted."""
    rows = feed().filter(is_read=False).order_by().values("user_id").annotate(n=Count("pk"))
    return {row["user_id"]: row["n"] for row in rows}


def items(user, count: int, **fields) -> list:
    Feed = get_feed_model()
    return Feed.objects.bulk_create(
        [Feed(user=user, activity_type="event", title=str(n), **fields) for n in range(count)]
    )


# -- writes ---------------------------------------------------------------------------


def test_notify_counts_the_rows_inserted_per_user(campaign):
    members = make_users(3)
    event = record_event("page_view", user=members[0])
    User = get_user_model()
    recipients = User.objects.filter(username__startswith="member")
    assert notify(recipients, "reminder", title="one", event=event) == 3
    # The same event again: the unique key skips every row, the counters stay.
    assert notify(recipients, "reminder", title="again", event=event) == 0
    assert notify([members[0].pk, members[1].pk, 10**9], "reminder", title="ids") == 2
    assert counters() == {members[0].pk: 2, members[1].pk: 2, members[2].pk: 1} == truth()


def test_notify_nobody_writes_no_counter():
    assert notify(get_user_model().objects.none(), "reminder", title="x") == 0
    assert notify([], "reminder", title="x") == 0
    assert counters() == {}


@pytest.mark.usefixtures("no_tracking")  # no join events from members.add()
def test_fan_out_and_populate_count_actor_and_participant_items(user, other_user, campaign):
    campaign.members.add(user, other_user)
    record_event("target_joined", user=user, target=campaign)  # actor item for user
    record_event("target_created", user=user, target=campaign)  # participant items, both
    assert counters() == {user.pk: 2, other_user.pk: 1} == truth()
    # A backfill re-run inserts nothing new and counts nothing new.
    assert populate_feed(days_back=1).created_count == 0
    assert counters() == {user.pk: 2, other_user.pk: 1}


def test_mark_read_and_unread_move_the_counter_by_the_rows_changed(user, other_user):
    mine = items(user, 4)
    items(other_user, 2)
    assert counters() == {user.pk: 4, other_user.pk: 2}
    assert mark_read(user, ids=[mine[0].pk, mine[0].pk, mine[1].pk]) == 2
    assert mark_read(user, ids=[mine[0].pk]) == 0  # already read: no change
    assert counters() == {user.pk: 2, other_user.pk: 2}
    assert feed().filter(pk=mine[0].pk).mark_unread() == 1
    assert feed().mark_unread() == 1  # only mine[1] is still read
    assert counters() == {user.pk: 4, other_user.pk: 2}
    assert mark_read(user) == 4
    assert feed().mark_read() == 2  # every user at once: grouped per user
    assert counters() == {} == truth()


def test_queryset_update_of_is_read_keeps_counters_exact(user, other_user):
    items(user, 3)
    items(other_user, 2, is_read=True)
    # Rows already read are updated too, but only the three that flip count.
    assert feed().update(is_read=True) == 5
    assert counters() == {}
    assert feed().filter(user=other_user).update(is_read=False, title="again") == 2
    assert counters() == {other_user.pk: 2}
    # An expression: applied, then the users' counters recounted.
    assert (
        feed().update(is_read=Case(When(is_read=True, then=Value(False)), default=Value(True))) == 5
    )
    assert counters() == {user.pk: 3} == truth()
    assert feed().update(title="no read state") == 5
    assert counters() == {user.pk: 3}


def test_orm_saves_deletes_and_bulk_creates_keep_counters_exact(user, other_user):
    Feed = get_feed_model()
    item = Feed.objects.create(user=user, activity_type="event", title="a")
    Feed.objects.create(user=user, activity_type="event", title="b", is_read=True)
    assert counters() == {user.pk: 1}
    item.is_read = True
    item.save()
    item.save()  # no change of state, no change of count
    assert counters() == {}
    item.is_read = False
    item.save(update_fields=["title"])  # is_read not saved: the stored row stays read
    assert counters() == {}
    item.save()
    assert counters() == {user.pk: 1}
    item.delete()
    assert counters() == {}
    items(other_user, 3)
    Feed.objects.bulk_create(
        [Feed(user=user, activity_type="event", title="c")], ignore_conflicts=True
    )
    assert counters() == {user.pk: 1, other_user.pk: 3}
    assert feed().filter(user=other_user, title__in=["0", "1"]).delete()[0] == 2
    assert counters() == {user.pk: 1, other_user.pk: 1} == truth()


def test_deleting_a_user_deletes_their_counter(user, other_user):
    items(user, 2)
    items(other_user, 1)
    user.delete()
    assert counters() == {other_user.pk: 1} == truth()


@pytest.mark.usefixtures("no_tracking", "frozen_now")
@pytest.mark.parametrize("archive", [False, True], ids=["in-place", "archived"])
def test_retention_subtracts_the_unread_rows_it_deletes(user, other_user, archive, tmp_path):
    from tests.conftest import FROZEN_NOW

    old = FROZEN_NOW - 400 * DAY
    items(user, 3, created_at=old)
    items(user, 2, created_at=old, is_read=True)
    items(user, 1)
    items(other_user, 2, created_at=old)
    result = apply_retention(batch_size=2, archive_to=str(tmp_path) if archive else None)
    assert result.total == 7
    assert counters() == {user.pk: 1} == truth()


@pytest.mark.skipif(not POSTGRES, reason="partitioning is PostgreSQL-only")
@pytest.mark.usefixtures("no_tracking", "frozen_now")
def test_partition_drop_subtracts_the_months_unread_rows(user, other_user):
    from tests.conftest import FROZEN_NOW

    Feed = get_feed_model()
    old = FROZEN_NOW - 400 * DAY
    items(user, 3, created_at=old)
    items(user, 1, created_at=old, is_read=True)
    items(other_user, 2, created_at=old)
    items(other_user, 1)
    partitions.convert(Feed, months_ahead=0)
    assert counters() == {user.pk: 3, other_user.pk: 3}
    result = apply_retention()
    assert result.total == 6
    assert not any(p.start and p.start <= old < p.end for p in partitions.list_partitions(Feed))
    assert counters() == {other_user.pk: 1} == truth()


# -- reads ----------------------------------------------------------------------------


def test_unread_count_is_one_primary_key_read(user, other_user, django_assert_num_queries):
    items(user, 3)
    with django_assert_num_queries(1) as captured:
        assert unread_count(user) == 3
    assert "feedunreadcount" in captured.captured_queries[0]["sql"]
    with django_assert_num_queries(1):
        assert unread_count(other_user) == 0  # no row yet
    with django_assert_num_queries(1):
        assert unread_counts([user.pk, other_user.pk]) == {user.pk: 3, other_user.pk: 0}


def test_feed_summary_reads_the_counter_in_two_queries(user, django_assert_num_queries):
    items(user, 3)
    items(user, 2, is_read=True)
    with django_assert_num_queries(2) as captured:
        summary = feed_summary(user)
    assert (summary["total_items"], summary["unread_count"], summary["read_count"]) == (5, 3, 2)
    # The count groups by type only: read state comes from the counter row.
    assert "is_read" not in captured.captured_queries[0]["sql"].split("GROUP BY")[1]
    FeedUnreadCount.objects.filter(pk=user.pk).update(unread=4)  # out of step, on purpose
    assert feed_summary(user)["unread_count"] == 4


def test_unread_list_count_is_the_counter(auth_client, user, django_assert_num_queries):
    items(user, 3)
    items(user, 2, is_read=True)
    FeedUnreadCount.objects.filter(pk=user.pk).update(unread=2)  # proves which is read
    response = auth_client.get("/api/engagement/activity-feed/?is_read=false&page_size=1")
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 2
    assert len(response.json()["results"]) == 1
    # Any other filter (or read items) counts the items.
    filtered = auth_client.get("/api/engagement/activity-feed/?is_read=false&activity_type=event")
    assert filtered.json()["count"] == 3
    assert auth_client.get("/api/engagement/activity-feed/?is_read=true").json()["count"] == 2
    assert auth_client.get("/api/engagement/activity-feed/").json()["count"] == 5


# -- rebuild --------------------------------------------------------------------------


def test_rebuild_repairs_counters_a_raw_update_left_behind(user, other_user):
    items(user, 3)
    items(other_user, 2)
    table = connection.ops.quote_name(get_feed_model()._meta.db_table)
    with connection.cursor() as cursor:  # a host's raw SQL, around the package
        cursor.execute(f"UPDATE {table} SET is_read = %s WHERE user_id = %s", [True, user.pk])
    FeedUnreadCount.objects.filter(pk=other_user.pk).delete()
    assert counters() == {user.pk: 3}
    assert rebuild_unread(dry_run=True) == 2
    assert counters() == {user.pk: 3}
    assert rebuild_unread(users=[other_user]) == 1
    assert counters() == {user.pk: 3, other_user.pk: 2}
    assert rebuild_unread() == 1
    assert counters() == {other_user.pk: 2} == truth()
    assert rebuild_unread() == 0


def test_rebuild_command(user, other_user):
    items(user, 2)
    FeedUnreadCount.objects.filter(pk=user.pk).update(unread=9)
    FeedUnreadCount.objects.create(user=other_user, unread=1)
    out = command_output("engagement_rebuild_unread_counts", "--dry-run")
    assert out == "Would correct 2 unread counters.\n"
    out = command_output("engagement_rebuild_unread_counts", "--user-id", str(user.pk))
    assert out == "Corrected 1 unread counters.\n"
    assert counters() == {user.pk: 2, other_user.pk: 1}
    assert command_output("engagement_rebuild_unread_counts") == "Corrected 1 unread counters.\n"
    assert counters() == {user.pk: 2}


@pytest.mark.parametrize("value", ["abc", "999999", "\x00", "-1"])
def test_rebuild_command_refuses_an_unknown_user(value):
    with pytest.raises(CommandError, match="No user with id"):
        command_output("engagement_rebuild_unread_counts", "--user-id", value)


def test_migration_fills_counters_of_an_existing_install(user, other_user):
    items(user, 3)
    items(other_user, 1, is_read=True)
    FeedUnreadCount.objects.all().delete()
    migration = __import__(
        "django_engagement.migrations.0010_unread_counters", fromlist=["fill_counters"]
    )
    migration.fill_counters(apps, SimpleNamespace(connection=connection))
    assert counters() == {user.pk: 3} == truth()


# -- concurrency ----------------------------------------------------------------------


@pytest.mark.skipif(not POSTGRES, reason="SQLite in memory has one connection, no concurrency")
@pytest.mark.django_db(transaction=True)
def test_counters_stay_exact_with_eight_threads_notifying_and_reading():
    users = make_users(6, prefix="racer")
    User = get_user_model()
    ids = [u.pk for u in users]
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for round_ in range(15):
                if n % 2:
                    recipients = User.objects.filter(pk__in=ids[n % 3 :])
                    notify(recipients, "reminder", title=f"{n}-{round_}")
                    notify(ids[: 1 + round_ % 6], "reminder", title=f"{n}-{round_} ids")
                else:
                    user = users[(n + round_) % 6]
                    mark_read(user)
                    feed().filter(user=user, title__endswith="ids").mark_unread()
                    feed().filter(user=users[round_ % 6]).mark_read()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # 15 rounds of 5 + 6 + 4 + 5 queryset recipients, and 4 x (1 + 2 + ... ) id lists.
    assert feed().count() == 15 * 20 + 4 * sum(1 + r % 6 for r in range(15)) == 492
    assert counters() == truth()
    assert 0 < sum(truth().values()) < 492
    assert rebuild_unread() == 0
