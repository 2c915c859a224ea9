import pytest
from django.test import override_settings
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated

from django_engagement.conf import DEFAULTS, engagement_settings


def test_defaults_match_spec():
    with override_settings(ENGAGEMENT={}):
        assert engagement_settings.ENABLED is True
        assert engagement_settings.MAX_EVENT_SIZE == 2048
        assert engagement_settings.MAX_BATCH_SIZE == 500
        assert engagement_settings.EVENT_TYPES is None
        assert engagement_settings.SOURCES == ["web", "android", "ios", "kiosk", "admin", "server"]
        assert engagement_settings.CAPTURE_IP is True
        assert engagement_settings.ANONYMIZE_IP is True
        assert engagement_settings.EVENT_RETENTION_DAYS == 90
        assert engagement_settings.FEED_RETENTION == {
            "reminder": 30,
            "target_start": 90,
            "content_available": 90,
            "target_join": 180,
            "target_leave": 180,
            "milestone": 365,
            "event": 180,
        }
        assert engagement_settings.FEED_RETENTION_DEFAULT == 180
        assert engagement_settings.ASYNC_FEED is False
        assert engagement_settings.TARGET_LABEL == "target"
        assert engagement_settings.TARGET_GROUP_LABEL == "group"
        assert engagement_settings.TARGET_NAME_FIELD == "name"
        assert engagement_settings.TARGET_GROUP_FIELD is None
        assert engagement_settings.TARGET_PARTICIPANTS is None
        assert engagement_settings.JOIN_EVENT == "target_joined"
        assert engagement_settings.LEAVE_EVENT == "target_left"
        assert engagement_settings.TRACK == dict.fromkeys(
            ["login", "logout", "signup", "membership", "target_lifecycle"], True
        )
        assert engagement_settings.MILESTONES == [10, 50, 100, 250, 500, 1000]
        assert engagement_settings.INGEST_PERMISSION_CLASSES == [AllowAny]
        assert engagement_settings.REPORT_PERMISSION_CLASSES == [IsAdminUser]
        assert engagement_settings.INGEST_THROTTLE_RATE == "120/min"
        assert engagement_settings.ON_USER_DELETE == "delete"
        assert engagement_settings.REPORT_STORAGE is None


def test_override_and_reload_on_setting_changed():
    assert engagement_settings.MAX_BATCH_SIZE == 500
    with override_settings(ENGAGEMENT={"MAX_BATCH_SIZE": 7}):
        assert engagement_settings.MAX_BATCH_SIZE == 7
    assert engagement_settings.MAX_BATCH_SIZE == 500


def test_import_strings_are_imported():
    path = "rest_framework.permissions.IsAuthenticated"
    with override_settings(ENGAGEMENT={"INGEST_PERMISSION_CLASSES": [path]}):
        assert engagement_settings.INGEST_PERMISSION_CLASSES == [IsAuthenticated]


def test_track_is_merged_over_defaults():
    with override_settings(ENGAGEMENT={"TRACK": {"login": False}}):
        assert engagement_settings.TRACK["login"] is False
        assert engagement_settings.TRACK["signup"] is True


def test_model_settings_are_top_level():
    with override_settings(ENGAGEMENT_TARGET_MODEL=None):
        assert engagement_settings.TARGET_MODEL is None
    assert engagement_settings.TARGET_MODEL == "testapp.Campaign"
    with override_settings(ENGAGEMENT_EVENT_MODEL="custom.Event"):
        assert engagement_settings.EVENT_MODEL == "custom.Event"


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="Invalid django-engagement setting"):
        getattr(engagement_settings, "NOT_A_SETTING")  # noqa: B009


def test_every_default_key_is_documented():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "reference" / "settings.md").read_text()
    missing = [key for key in DEFAULTS if f"`{key}`" not in doc]
    assert missing == []
