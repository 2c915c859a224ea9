"""populate_feed and the populate_activity_feeds command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.utils import timezone

from django_engagement.models import get_event_model
from django_engagement.services.feed import populate_feed
from tests.helpers import command_output, counter_statements, feed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


@pytest.fixture
def history(user, other_user, campaign):
    """Past events stored without fan-out, as before the package's feed existed.

    alice joined and left (she is no longer a member); bob is a member.
    """
    campaign.members.add(other_user)
    Event = get_event_model()
    now = timezone.now()

    def event(event_type, days_ago, **fields):
        return Event(event_type=event_type, created_at=now - timedelta(days=days_ago), **fields)

    Event._default_manager.bulk_create(
        [
            event("target_joined", 10, user=user, target=campaign),
            event("target_left", 5, user=user, target=campaign),
            event("target_joined", 3, user=other_user, target=campaign),
            event("milestone_reached", 2, target=campaign, data={"threshold": 2}),
            event("page_view", 1, user=user),
            event("target_joined", 45, user=other_user, target=campaign),
        ]
    )
    return user, other_user


def test_populate_is_exact_and_idempotent(history):
    user, other_user = history
    result = populate_feed()
    # 3 actor items in the window + the milestone for bob, its only participant then.
    assert result.created_count == 4
    assert result.end - result.start == timedelta(days=30)
    assert sorted(feed().values_list("user_id", "activity_type")) == sorted(
        [
            (user.pk, "target_join"),
            (user.pk, "target_leave"),
            (other_user.pk, "target_join"),
            (other_user.pk, "milestone"),
        ]
    )
    assert populate_feed().created_count == 0
    assert populate_feed(days_back=60).created_count == 1
    assert feed().count() == 5


def test_dry_run_counts_and_writes_nothing(history):
    assert populate_feed(dry_run=True).created_count == 4
    assert feed().count() == 0


def test_small_batches_give_the_same_result(history):
    progress = []
    result = populate_feed(batch_size=2, on_batch=lambda label, done: progress.append(done))
    assert result.created_count == 4
    assert progress == [2, 4]  # the 4 rule-matching events in the window


def test_one_user(history):
    user, other_user = history
    assert populate_feed(user=other_user).created_count == 2
    assert sorted(feed().values_list("user_id", "activity_type")) == [
        (other_user.pk, "milestone"),
        (other_user.pk, "target_join"),
    ]
    assert populate_feed(user=user).created_count == 2
    assert populate_feed().created_count == 0


def test_days_back_must_be_positive():
    with pytest.raises(ValueError, match="days_back must be at least 1"):
        populate_feed(days_back=0)


def run(*args):
    return command_output("populate_activity_feeds", *args)


def test_command(history):
    user, _ = history
    assert run("--dry-run").startswith("Would create 4 activity feed items from events between ")
    assert run("--user-id", str(user.pk)).startswith(
        "Created 2 activity feed items for user alice from events between "
    )
    assert run("--days-back", "90").startswith("Created 3 activity feed items")
    assert run("--days-back", "90").startswith("Created 0 activity feed items")
    assert run("-v", "0") == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user-id", "999999"], "No user with id '999999'."),
        (["--user-id", "abc"], "No user with id 'abc'."),
        (["--days-back", "0"], "--days-back must be at least 1."),
    ],
)
def test_command_errors(args, message):
    with pytest.raises(CommandError, match=f"^{message}$".replace(".", r"\.")):
        run(*args)


@pytest.mark.django_db
@pytest.mark.parametrize("days", ["3000000", "1000000000"])
def test_command_days_back_past_the_calendar_is_a_command_error(days):
    with pytest.raises(CommandError, match=r"^--days-back reaches past the supported dates\.$"):
        command_output("populate_activity_feeds", "--days-back", days)


# -- backfills show the past as it was ------------------------------------------------


@pytest.fixture
def membership_history(user_factory, campaign):
    """A target created 20 days ago that reached a milestone 8 days ago, and seven users.

    Each user's JOIN/LEAVE history (days ago) and whether they are a member today:

    ========  ================================  =======  ==========  ==========
    user      history                           member   at day 20   at day 8
    ========  ================================  =======  ==========  ==========
    early     joined 30                         yes      yes         yes
    later     joined 15                         yes      no          yes
    gone      joined 30, left 12                no       yes         no
    silent    (none)                            yes      yes         yes
    newcomer  joined 5                          yes      no          no
    back      joined 30, left 25, joined 10     yes      no          yes
    untold    left 3 (rejoined unrecorded)      yes      yes         yes
    ========  ================================  =======  ==========  ==========
    """
    now = timezone.now()
    users = {
        name: user_factory(username=name)
        for name in ("early", "later", "gone", "silent", "newcomer", "back", "untold")
    }
    campaign.members.add(*(u for name, u in users.items() if name != "gone"))
    Event = get_event_model()

    def at(days_ago):
        return now - timedelta(days=days_ago)

    history = {
        "early": [("target_joined", 30)],
        "later": [("target_joined", 15)],
        "gone": [("target_joined", 30), ("target_left", 12)],
        "newcomer": [("target_joined", 5)],
        "back": [("target_joined", 30), ("target_left", 25), ("target_joined", 10)],
        "untold": [("target_left", 3)],
    }
    rows = [
        Event(event_type=code, user=users[name], target=campaign, created_at=at(days))
        for name, entries in history.items()
        for code, days in entries
    ]
    rows += [
        Event(event_type="target_created", target=campaign, created_at=at(20)),
        Event(
            event_type="milestone_reached",
            target=campaign,
            created_at=at(8),
            data={"threshold": 5},
        ),
    ]
    Event._default_manager.bulk_create(rows)
    return users


def recipients_of(activity_type):
    return sorted(
        feed().filter(activity_type=activity_type).values_list("user__username", flat=True)
    )


def test_backfill_reaches_the_participants_of_the_events_time(membership_history):
    result = populate_feed(days_back=60)

    # 9 join/leave items for their actors + 4 "has started" + 5 milestone items.
    assert result.created_count == 18
    assert recipients_of("target_start") == ["early", "gone", "silent", "untold"]
    assert recipients_of("milestone") == ["back", "early", "later", "silent", "untold"]
    assert feed().filter(activity_type__in=["target_join", "target_leave"]).count() == 9
    assert populate_feed(days_back=60).created_count == 0


def test_backfill_keeps_the_events_time(membership_history):
    populate_feed(days_back=60)

    mismatched = [
        item.pk
        for item in feed().select_related("event")
        if item.created_at != item.event.created_at
    ]
    assert mismatched == []
    assert feed().filter(created_at__gte=timezone.now() - timedelta(days=1)).count() == 0


def test_backfill_for_one_user_follows_the_same_history(membership_history):
    assert populate_feed(user=membership_history["later"], days_back=60).created_count == 2
    assert populate_feed(user=membership_history["newcomer"], days_back=60).created_count == 1
    assert sorted(feed().values_list("user__username", "activity_type")) == [
        ("later", "milestone"),
        ("later", "target_join"),
        ("newcomer", "target_join"),
    ]
    assert populate_feed(days_back=60).created_count == 15


def test_backfill_participants_is_one_insert_per_event(
    membership_history, django_assert_max_num_queries
):
    # Event page + target prefetch + savepoint pair + actor INSERT + 2 participant INSERTs
    # + the next (empty) page: constant in the number of users and members. Each INSERT
    # moves the unread counters in its own statement on PostgreSQL, with one more elsewhere.
    with django_assert_max_num_queries(9 + counter_statements(4)):
        assert populate_feed(days_back=60).created_count == 18
