"""populate_feed and the populate_activity_feeds command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError
from django.utils import timezone

from django_engagement.models import get_event_model
from django_engagement.services.feed import populate_feed
from tests.helpers import command_output, feed

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_tracking")]


@pytest.fixture
def history(user, other_user, campaign):
    """Past events stored without fan-out, as before the package's feed existed."""
    campaign.members.add(user, other_user)
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
    # 3 actor items in the window + the milestone for 2 participants.
    assert result.created_count == 5
    assert result.end - result.start == timedelta(days=30)
    assert sorted(feed().values_list("user_id", "activity_type")) == sorted(
        [
            (user.pk, "fast_join"),
            (user.pk, "fast_leave"),
            (other_user.pk, "fast_join"),
            (user.pk, "milestone"),
            (other_user.pk, "milestone"),
        ]
    )
    assert populate_feed().created_count == 0
    assert populate_feed(days_back=60).created_count == 1
    assert feed().count() == 6


def test_dry_run_counts_and_writes_nothing(history):
    assert populate_feed(dry_run=True).created_count == 5
    assert feed().count() == 0


def test_small_batches_give_the_same_result(history):
    progress = []
    result = populate_feed(batch_size=2, on_batch=lambda label, done: progress.append(done))
    assert result.created_count == 5
    assert progress == [2, 4]  # the 4 rule-matching events in the window


def test_one_user(history):
    user, other_user = history
    assert populate_feed(user=other_user).created_count == 2
    assert sorted(feed().values_list("user_id", "activity_type")) == [
        (other_user.pk, "fast_join"),
        (other_user.pk, "milestone"),
    ]
    assert populate_feed(user=user).created_count == 3
    assert populate_feed().created_count == 0


def test_days_back_must_be_positive():
    with pytest.raises(ValueError, match="days_back must be at least 1"):
        populate_feed(days_back=0)


def run(*args):
    return command_output("populate_activity_feeds", *args)


def test_command(history):
    user, _ = history
    assert run("--dry-run").startswith("Would create 5 activity feed items from events between ")
    assert run("--user-id", str(user.pk)).startswith(
        "Created 3 activity feed items for user alice from events between "
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
