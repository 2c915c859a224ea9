import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_engagement.models import (
    AbstractActivityFeedItem,
    AbstractEvent,
    get_event_model,
    get_feed_model,
    get_target_model,
)
from tests.helpers import counter_statements
from tests.testapp.models import Campaign, Course

pytestmark = pytest.mark.django_db

# The active models: the defaults, or the swapped ones under tests.settings_swapped.
Event = get_event_model()
ActivityFeedItem = get_feed_model()


@pytest.mark.parametrize(
    ("getter", "setting", "base"),
    [
        (get_event_model, "ENGAGEMENT_EVENT_MODEL", AbstractEvent),
        (get_feed_model, "ENGAGEMENT_FEED_MODEL", AbstractActivityFeedItem),
    ],
)
def test_getters_return_active_models(settings, getter, setting, base):
    model = getter()
    assert model._meta.label == getattr(settings, setting)
    assert issubclass(model, base)
    assert not model._meta.swapped


def test_target_getter():
    assert get_target_model() is Campaign
    with override_settings(ENGAGEMENT_TARGET_MODEL=None):
        assert get_target_model() is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nodot", "ENGAGEMENT_TARGET_MODEL must be of the form 'app_label.model_name'"),
        ("hub.Fast", "ENGAGEMENT_TARGET_MODEL refers to model 'hub.Fast' that has not been"),
    ],
)
def test_getter_errors_name_the_setting(value, message):
    with (
        override_settings(ENGAGEMENT_TARGET_MODEL=value),
        pytest.raises(ImproperlyConfigured, match=message),
    ):
        get_target_model()


def test_generic_target_with_uuid_and_int_keys(user, campaign):
    course = Course.objects.create(title="Intro")
    on_campaign = Event.objects.create(event_type="view", user=user, target=campaign)
    on_course = Event.objects.create(event_type="view", user=user, target=course)
    on_campaign.refresh_from_db()
    on_course.refresh_from_db()
    assert on_campaign.target == campaign
    assert on_campaign.target_object_id == str(campaign.pk)
    assert on_campaign.target_type == "testapp.campaign"
    assert on_course.target == course
    assert Event.objects.for_target(campaign).of_type("view").get() == on_campaign
    assert isinstance(on_campaign.uuid, uuid.UUID)


def test_feed_queryset_scopes_and_marks_read(user, other_user, django_assert_num_queries):
    for number in range(3):
        ActivityFeedItem.objects.create(user=user, activity_type="milestone", title=f"m{number}")
    theirs = ActivityFeedItem.objects.create(user=other_user, activity_type="event", title="x")
    mine = list(ActivityFeedItem.objects.for_user(user).values_list("pk", flat=True))
    with django_assert_num_queries(1 + counter_statements()):
        updated = ActivityFeedItem.objects.for_user(user).mark_read(ids=[mine[0], theirs.pk])
    assert updated == 1
    assert ActivityFeedItem.objects.for_user(user).unread().count() == 2
    assert ActivityFeedItem.objects.for_user(user).read().get().read_at is not None
    assert ActivityFeedItem.objects.for_user(user).mark_read() == 2
    assert ActivityFeedItem.objects.for_user(user).mark_read() == 0
    assert ActivityFeedItem.objects.for_user(user).filter(pk=mine[0]).mark_unread() == 1
    assert ActivityFeedItem.objects.for_user(user).unread().get().read_at is None
    theirs.refresh_from_db()
    assert theirs.is_read is False


def test_feed_targets_load_in_constant_queries(user, django_assert_num_queries):
    campaigns = [Campaign.objects.create(name=f"c{i}") for i in range(5)]
    courses = [Course.objects.create(title=f"t{i}") for i in range(5)]
    for target in campaigns + courses:
        ActivityFeedItem.objects.create(user=user, activity_type="event", title="t", target=target)
    ContentType.objects.clear_cache()
    ContentType.objects.get_for_models(Campaign, Course)
    with django_assert_num_queries(3):  # items + one per target type
        items = list(ActivityFeedItem.objects.for_user(user).with_targets())
        names = {str(item.target) for item in items}
    assert names == {f"c{i}" for i in range(5)} | {f"t{i}" for i in range(5)}


def test_display_helpers(user):
    item = ActivityFeedItem.objects.create(user=user, activity_type="target_join", title="t")
    assert item.activity_type_display == "Joined campaign"
    assert item.age_display == "just now"
    assert ActivityFeedItem(activity_type="custom_thing").activity_type_display == "Custom thing"


def test_idempotency_key_is_unique_per_scope(user, other_user):
    """Unique per user, else per anonymous id (the server's scope is anonymous_id "")."""
    from django.db import IntegrityError, transaction

    Event.objects.create(event_type="a", idempotency_key="k1")
    Event.objects.create(event_type="a")
    Event.objects.create(event_type="a")  # NULL keys never collide
    Event.objects.create(event_type="a", idempotency_key="k1", anonymous_id="anon-a")
    Event.objects.create(event_type="a", idempotency_key="k1", user=user)
    Event.objects.create(event_type="a", idempotency_key="k1", user=other_user)
    # A signed-in user's scope ignores the anonymous id.
    Event.objects.create(event_type="a", idempotency_key="k2", user=user, anonymous_id="x")
    duplicates = [
        {},
        {"anonymous_id": "anon-a"},
        {"user": user},
        {"user": user, "anonymous_id": "anon-a"},
        {"user": user, "anonymous_id": "y", "idempotency_key": "k2"},
    ]
    for fields in duplicates:
        with pytest.raises(IntegrityError), transaction.atomic():
            Event.objects.create(**{"event_type": "a", "idempotency_key": "k1", **fields})
    assert Event.objects.filter(event_type="a").count() == 7


def test_anonymizing_a_user_clears_their_keys(user, engagement_settings):
    """The user's keys would collide in the anonymous scope (here with the server's)."""
    engagement_settings.update(ON_USER_DELETE="anonymize")
    Event.objects.create(event_type="a", idempotency_key="k1")
    Event.objects.create(event_type="a", idempotency_key="k1", user=user)
    Event.objects.create(event_type="b", idempotency_key="k2", user=user, anonymous_id="a")
    Event.objects.create(event_type="b", idempotency_key="k2", anonymous_id="a")
    user.delete()
    rows = Event.objects.filter(event_type__in=["a", "b"]).values_list(
        "event_type", "user", "idempotency_key"
    )
    assert set(rows) == {("a", None, None), ("a", None, "k1"), ("b", None, None), ("b", None, "k2")}


def test_user_delete_policy(user_factory, engagement_settings):
    keep, gone = user_factory(), user_factory()
    engagement_settings.update(ON_USER_DELETE="anonymize")
    Event.objects.create(event_type="a", user=keep)
    keep.delete()
    assert Event.objects.filter(event_type="a", user__isnull=True).count() == 1
    engagement_settings.update(ON_USER_DELETE="delete")
    Event.objects.create(event_type="a", user=gone)
    ActivityFeedItem.objects.create(user=gone, activity_type="event", title="t")
    gone.delete()
    assert Event.objects.filter(event_type="a").count() == 1
    assert ActivityFeedItem.objects.count() == 0


def test_swapped_models_migrate(tmp_path):
    """A project that swaps both models migrates from scratch and has no pending changes."""
    env = {
        "DJANGO_SETTINGS_MODULE": "tests.settings_swapped",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'swapped.sqlite3'}",
        "PYTHONPATH": str(Path(__file__).parent.parent),
        "PATH": "/usr/bin:/bin",
    }
    admin = [sys.executable, "-m", "django"]
    for args in (["migrate", "-v0"], ["makemigrations", "--check", "--dry-run"]):
        result = subprocess.run([*admin, *args], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    tables = subprocess.run(
        [
            *admin,
            "shell",
            "-c",
            "from django.db import connection; "
            "print(sorted(t for t in connection.introspection.table_names() if 'engagement' in t "
            "or 'swapped' in t))",
        ],
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    assert "swapped_swappedevent" in tables
    assert "swapped_swappedfeeditem" in tables
    assert "django_engagement_event'" not in tables
    assert "django_engagement_activityfeeditem" not in tables
    assert "django_engagement_eventaggregatedaily" in tables


# django-model-utils timestamps of the preference and outbox models


def test_preference_updated_at_is_the_time_of_each_row_and_save(user):
    """Two rows created at two times keep two times (model-utils' AutoLastModifiedField
    would give both the first one: jazzband/django-model-utils#520)."""
    from datetime import UTC, datetime
    from unittest import mock

    from django_engagement.models import NotificationPreference

    times = [datetime(2026, 1, 4, 10, tzinfo=UTC), datetime(2026, 1, 5, 11, tzinfo=UTC)]
    rows = []
    for moment, activity_type in zip(times, ["reminder", "milestone"], strict=True):
        with mock.patch("django.utils.timezone.now", return_value=moment):
            rows.append(
                NotificationPreference.objects.create(user=user, activity_type=activity_type)
            )
    saved_at = datetime(2026, 1, 6, 12, tzinfo=UTC)
    with mock.patch("django.utils.timezone.now", return_value=saved_at):
        rows[0].email = "daily"
        rows[0].save()

    stored = dict(NotificationPreference.objects.values_list("activity_type", "updated_at"))
    assert stored == {"reminder": saved_at, "milestone": times[1]}


def test_outbox_and_mute_created_at_is_set_once_and_not_editable(user, campaign):
    from datetime import UTC, datetime

    from django.forms import modelform_factory
    from django.utils import timezone
    from model_utils.fields import AutoCreatedField

    from django_engagement.models import FeedEmail, PendingFanOut, TargetMute

    before = timezone.now()
    mute = TargetMute.objects.create(user=user, target=campaign)
    created_at = mute.created_at
    mute.until = datetime(2026, 2, 1, tzinfo=UTC)
    mute.save()

    assert before <= created_at <= timezone.now()
    assert TargetMute.objects.values_list("created_at", flat=True).get() == created_at
    for model in (FeedEmail, PendingFanOut, TargetMute):
        assert type(model._meta.get_field("created_at")) is AutoCreatedField
    assert "created_at" not in modelform_factory(TargetMute, exclude=[])().fields
