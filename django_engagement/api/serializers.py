"""Request and response serializers of the ingestion and activity feed endpoints.

Request serializers validate only: views hand ``validated_data`` to the
services. Every request serializer rejects fields it does not know, so a typo
(``payloda``) is a 400 naming the field instead of data silently dropped.
Response serializers describe exactly what the views return, so the OpenAPI
schema (drf-spectacular) matches the wire format.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .. import validators
from ..conf import engagement_settings, reserved_event_types
from ..models import AbstractActivityFeedItem, column_limit
from ..services.analytics import target_json_id, target_type
from .schema import extend_schema_field

#: Deepest nesting accepted in an event payload; real payloads are flat.
MAX_PAYLOAD_DEPTH = 32
#: Most feed item ids accepted by one ``mark-read`` request.
MAX_MARK_READ_IDS = 1000
#: Largest feed item id (a 64-bit primary key); SQLite cannot even bind a larger int.
MAX_FEED_ITEM_ID = 2**63 - 1
#: How far in the future a client clock may put an event.
MAX_CLOCK_SKEW = timedelta(days=1)
#: Error code of an oversize payload; the ingestion view answers 413 for it.
PAYLOAD_TOO_LARGE = "payload_too_large"

UNKNOWN_FIELD_HINTS = {"data": _("Unknown field; send the event data as 'payload'.")}


class StrictFieldsMixin(serializers.Serializer):
    """Reject keys that are not declared fields, each one named in the errors.

    The OpenAPI schema says so too (``additionalProperties: false``, see
    ``api/schema.py``); ``schema_properties()`` adds what the fields' own
    attributes cannot express (patterns that depend on settings).
    """

    @classmethod
    def schema_properties(cls) -> dict[str, dict[str, Any]]:
        """Extra OpenAPI keywords per property, merged into the generated schema."""
        return {}

    @classmethod
    def schema_keywords(cls) -> dict[str, Any]:
        """Extra OpenAPI keywords of the object itself (rules across fields)."""
        return {}

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            unknown = {
                key: [str(UNKNOWN_FIELD_HINTS.get(key, _("Unknown field.")))]
                for key in data
                if key not in self.fields
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**unknown, **exc.detail}) from exc
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


#: Text PostgreSQL can store: no NUL, no lone surrogate (the schema's ``pattern``).
STORABLE_TEXT_PATTERN = r"^[^\u0000\ud800-\udfff]*$"


class StrictCharField(serializers.CharField):
    """A ``CharField`` that refuses numbers, booleans and text PostgreSQL cannot store.

    Numbers are refused instead of stringified; a NUL or a lone surrogate is a 400
    naming the field instead of a database error.
    """

    default_error_messages = {"not_a_string": _("Not a valid string.")}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        reason = validators.unstorable_text_reason(data)
        if reason:
            raise serializers.ValidationError(_("This field %s.") % reason, code="unstorable")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON ``true`` or ``false`` only: DRF's field also takes ``0``, ``"yes"``, ``"on"``."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def nesting_depth(value: Any) -> int:
    """Depth of nested objects/arrays, computed without recursion."""
    depth, level = 0, [value]
    while level:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            break
        depth += 1
        if depth > MAX_PAYLOAD_DEPTH:
            break
        level = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]
    return depth


class PayloadField(serializers.DictField):
    """A JSON object of at most ``MAX_EVENT_SIZE`` bytes (compact UTF-8) and 32 levels."""

    default_error_messages = {
        "too_deep": _("Payload is nested more than {max_depth} levels deep."),
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        if nesting_depth(data) > MAX_PAYLOAD_DEPTH:
            self.fail("too_deep", max_depth=MAX_PAYLOAD_DEPTH)
        try:
            # Before the size: a lone surrogate cannot even be encoded to be measured.
            validators.validate_storable_json(data)
        except validators.UnstorableValue as exc:
            raise serializers.ValidationError(exc.messages, code=exc.code) from exc
        try:
            validators.validate_payload_size(data)
        except validators.PayloadTooLarge as exc:
            raise serializers.ValidationError(exc.messages, code=PAYLOAD_TOO_LARGE) from exc
        return data


class EventInSerializer(StrictFieldsMixin, serializers.Serializer):
    """One client event. ``payload`` is stored as the event's ``data``."""

    # Limits are the active event model's columns (read once, at import: after the registry).
    event_type = StrictCharField(
        min_length=1,
        max_length=column_limit("event_type"),
        trim_whitespace=False,
        help_text=_("Code matching EVENT_TYPES (default: ^[a-z][a-z0-9_.:-]{0,63}$)."),
    )
    source = StrictCharField(  # type: ignore[assignment]  # a field named like Field.source
        max_length=column_limit("source"),
        default="web",
        help_text=_("One of SOURCES; defaults to 'web'."),
    )
    payload = PayloadField(
        default=dict, help_text=_("JSON object of at most MAX_EVENT_SIZE bytes (compact UTF-8).")
    )
    anonymous_id = StrictCharField(
        max_length=column_limit("anonymous_id"),
        required=False,
        allow_blank=True,
        help_text=_("Client-generated id; the X-Client-ANON-ID header is the alternative."),
    )
    idempotency_key = StrictCharField(
        min_length=1,
        max_length=column_limit("idempotency_key"),
        trim_whitespace=False,
        required=False,
        help_text=_("A retry with the same key stores nothing and returns the original event."),
    )
    timestamp = serializers.DateTimeField(
        required=False,
        help_text=_("When the event happened (ISO 8601); defaults to when it is received."),
    )

    @classmethod
    def schema_properties(cls) -> dict[str, dict[str, Any]]:
        """``event_type``, ``source`` and ``idempotency_key`` as the server checks them."""
        allowed = engagement_settings.EVENT_TYPES
        reserved = sorted(reserved_event_types())
        if allowed is not None:
            event_type: dict[str, Any] = {"enum": list(allowed)}
        else:
            event_type = {"pattern": validators.EVENT_TYPE_PATTERN.pattern}
        if reserved and not engagement_settings.ALLOW_CLIENT_RESERVED_EVENTS:
            event_type["not"] = {"enum": reserved}
        return {
            "event_type": event_type,
            "source": {"enum": list(engagement_settings.SOURCES)},
            "anonymous_id": {"pattern": STORABLE_TEXT_PATTERN},
            "idempotency_key": {"pattern": STORABLE_TEXT_PATTERN},
        }

    def validate_event_type(self, value: str) -> str:
        _run_django_validator(validators.validate_event_type, value)
        if value in reserved_event_types() and not engagement_settings.ALLOW_CLIENT_RESERVED_EVENTS:
            raise serializers.ValidationError(
                _(
                    "Event type %(code)r is recorded by the server only "
                    "(ALLOW_CLIENT_RESERVED_EVENTS)."
                )
                % {"code": value},
                code="reserved",
            )
        return value

    def validate_source(self, value: str) -> str:
        return _run_django_validator(validators.validate_source, value)

    def validate_timestamp(self, value: Any) -> Any:
        if value > timezone.now() + MAX_CLOCK_SKEW:
            raise serializers.ValidationError(_("Timestamp is more than a day in the future."))
        return value


def _run_django_validator(validator: Any, value: Any) -> Any:
    try:
        validator(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages, code=exc.code) from exc
    return value


class BulkEventsSerializer(StrictFieldsMixin, serializers.Serializer):
    """``{"events": [...]}``: 1 to ``MAX_BATCH_SIZE`` events, errors keyed by index."""

    @classmethod
    def schema_properties(cls) -> dict[str, dict[str, Any]]:
        return {"events": {"minItems": 1}}

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "events": serializers.ListField(
                child=EventInSerializer(),
                allow_empty=False,
                max_length=engagement_settings.MAX_BATCH_SIZE,
                help_text=_("1 to MAX_BATCH_SIZE events; stored all or nothing."),
            )
        }


class EventCreatedSerializer(serializers.Serializer):
    """Answer to a single event."""

    event_id = serializers.UUIDField(help_text=_("Public id of the stored event."))


class EventsCreatedSerializer(serializers.Serializer):
    """Answer to a batch; ``event_ids`` is in request order."""

    events_created = serializers.IntegerField()
    event_ids = serializers.ListField(
        child=serializers.UUIDField(), help_text=_("In the order the events were sent.")
    )


@extend_schema_field(
    {"oneOf": [{"type": "integer"}, {"type": "string"}], "nullable": True},
)
class TargetIdField(serializers.ReadOnlyField):
    """The target's primary key: a number for integer keys, a string otherwise (UUID)."""


def _content_type(item: AbstractActivityFeedItem) -> ContentType | None:
    """The item's target content type, from the loaded relation or Django's cache (no query)."""
    if item.target_content_type_id is None:
        return None
    field = type(item)._meta.get_field("target_content_type")
    if field.is_cached(item):
        return item.target_content_type
    return ContentType.objects.get_for_id(item.target_content_type_id)


def serialize_feed_item(item: AbstractActivityFeedItem) -> dict[str, Any]:
    """One feed item as the API's JSON; no query of its own (content types are cached).

    Timestamps go through DRF's ``DateTimeField``, so ``REST_FRAMEWORK["DATETIME_FORMAT"]``
    applies as it does to every other DRF response.
    """
    content_type = _content_type(item)
    timestamp = serializers.DateTimeField()
    return {
        "id": item.pk,
        "activity_type": item.activity_type,
        "activity_type_display": item.activity_type_display,
        "title": item.title,
        "description": item.description,
        "is_read": item.is_read,
        "read_at": None if item.read_at is None else timestamp.to_representation(item.read_at),
        "created_at": timestamp.to_representation(item.created_at),
        "age_display": item.age_display,
        "data": item.data,
        "target_type": target_type(content_type) if content_type else None,
        "target_id": target_json_id(content_type, item.target_object_id),
    }


class FeedItemSerializer(serializers.Serializer):
    """A feed item of the API; the dict itself comes from ``serialize_feed_item``."""

    id = serializers.IntegerField(read_only=True)
    activity_type = serializers.CharField(read_only=True)
    activity_type_display = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    is_read = serializers.BooleanField(read_only=True)
    read_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    age_display = serializers.CharField(read_only=True, help_text=_("e.g. '2h ago'."))
    data = serializers.DictField(read_only=True)  # type: ignore[assignment]  # named like .data
    target_type = serializers.CharField(
        read_only=True, allow_null=True, help_text=_("'app_label.model' of the target.")
    )
    target_id = TargetIdField(help_text=_("Primary key of the target."))

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return serialize_feed_item(instance)


class FeedSummarySerializer(serializers.Serializer):
    """Counts of the caller's whole feed and its 5 newest items."""

    total_items = serializers.IntegerField()
    unread_count = serializers.IntegerField()
    read_count = serializers.IntegerField()
    activity_types = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("Item count per activity type.")
    )
    recent_activity = FeedItemSerializer(many=True, help_text=_("The 5 newest items."))


class MarkReadSerializer(StrictFieldsMixin, serializers.Serializer):
    """Either ``activity_ids`` or ``mark_all: true``, not both."""

    #: No field is required alone, but an empty body is a 400 (see api/schema.py).
    body_required = True

    activity_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_FEED_ITEM_ID),
        max_length=MAX_MARK_READ_IDS,
        required=False,
        help_text=_("Ids of the caller's items; other users' ids are ignored."),
    )
    mark_all = StrictBooleanField(required=False, help_text=_("Mark every unread item."))

    @classmethod
    def schema_keywords(cls) -> dict[str, Any]:
        return {
            "oneOf": [
                {"required": ["activity_ids"]},
                {"required": ["mark_all"], "properties": {"mark_all": {"enum": [True]}}},
            ]
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        mark_all = attrs.get("mark_all", False)
        if mark_all and "activity_ids" in attrs:
            raise serializers.ValidationError(_("Send activity_ids or mark_all, not both."))
        if not mark_all and "activity_ids" not in attrs:
            raise serializers.ValidationError(
                _("Send activity_ids (a list of ids) or mark_all: true.")
            )
        return attrs


class MarkReadResultSerializer(serializers.Serializer):
    """How many unread items of the caller became read."""

    message = serializers.CharField()
    updated_count = serializers.IntegerField()


class UserField(serializers.PrimaryKeyRelatedField):
    """Primary key of any user of ``AUTH_USER_MODEL``, resolved per request.

    An integer key must be a JSON integer: DRF's field would turn ``1.5``, ``true``
    or ``"1"`` into user 1. The schema (``api/schema.py``) says integer or string
    after the user model's key.
    """

    default_error_messages = {"not_an_integer": _("A user id is an integer.")}

    def get_queryset(self) -> Any:
        return get_user_model()._default_manager.all()

    @staticmethod
    def integer_key() -> bool:
        """Whether ``AUTH_USER_MODEL``'s primary key is an integer column."""
        return isinstance(get_user_model()._meta.pk, models.IntegerField)

    def to_internal_value(self, data: Any) -> Any:
        if self.integer_key() and (not isinstance(data, int) or isinstance(data, bool)):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


class GenerateFeedSerializer(StrictFieldsMixin, serializers.Serializer):
    """Whose feed to build, from how many past days of events."""

    user_id = UserField(help_text=_("Primary key of the user whose feed is (re)built."))
    days_back = serializers.IntegerField(
        min_value=1, max_value=3650, default=30, help_text=_("Events of this many past days.")
    )


class DateRangeSerializer(serializers.Serializer):
    """The window of events ``generate`` read: ``[start, end)``."""

    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class GenerateFeedResultSerializer(serializers.Serializer):
    """How many feed items ``generate`` created (0 when run again)."""

    message = serializers.CharField()
    created_count = serializers.IntegerField()
    date_range = DateRangeSerializer()
