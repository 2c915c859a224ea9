"""Events from the Segment, RudderStack and PostHog SDKs, mapped onto the event model.

The HTTP faces (``django_engagement.api.sdk``) parse and authenticate a request and
hand its messages here::

    from django_engagement.services.sdk import SdkBatch, ingest_posthog, ingest_segment

    batch = SdkBatch(source="web", ip_address="203.0.113.9", user_agent="...")
    ingest_segment([{"type": "track", "event": "Order Completed", ...}], batch)

Each message becomes one ``store_events`` item (so the validation, anonymisation and
idempotency of ``POST events/`` apply), the whole request is one transaction and one
bulk insert, and one bad message fails the request with a message naming its index.

Identity: ``identify``/``alias`` (``$identify``/``$create_alias``) messages are stored
as ``identify``/``alias`` events that carry both the anonymous id and the user; they
are the links. Storing one also sets the user on the earlier anonymous events of that
id, and later anonymous events of a linked id get the user at ingestion (one indexed
query per request). User ids are resolved by ``SDK_USER_RESOLVER`` (default
``resolve_users``: ``SDK_USER_FIELD`` of ``AUTH_USER_MODEL``, the primary key by default).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from ..conf import engagement_settings
from ..models import get_event_model, resolve_lookup
from .events import store_events

PAGE_EVENT = "page_view"
SCREEN_EVENT = "screen_view"
IDENTIFY_EVENT = "identify"
ALIAS_EVENT = "alias"
GROUP_EVENT = "group"
#: Event types whose rows link an anonymous id to a user.
LINK_EVENTS = (IDENTIFY_EVENT, ALIAS_EVENT)

SEGMENT_TYPES = ("track", "page", "screen", "identify", "group", "alias")
#: PostHog's own events with a fixed meaning; any other name goes through the normaliser.
POSTHOG_EVENTS = {
    "$pageview": PAGE_EVENT,
    "$screen": SCREEN_EVENT,
    "$identify": IDENTIFY_EVENT,
    "$create_alias": ALIAS_EVENT,
    "$groupidentify": GROUP_EVENT,
}
#: PostHog's ``$``-properties kept in the payload; the rest (browser, OS, screen size,
#: library and flag bookkeeping) are dropped so events stay within ``MAX_EVENT_SIZE``.
POSTHOG_KEPT_PROPERTIES = frozenset(
    {"$current_url", "$pathname", "$host", "$referrer", "$screen_name", "$session_id", "$title"}
)
#: Properties PostHog uses for routing, never payload.
POSTHOG_ROUTING_PROPERTIES = frozenset({"token", "distinct_id"})

_INVALID_RUN = re.compile(r"[^a-z0-9_.:-]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def normalize_event_type(name: str) -> str:
    """The package's code for an SDK event name: ``"Order Completed"`` -> ``order_completed``.

    camelCase boundaries and runs of characters outside ``[a-z0-9_.:-]`` become one
    ``_``; leading and trailing ``_`` are dropped (``"$pageleave"`` -> ``pageleave``);
    a name not starting with a letter gets ``e_`` in front; the result is cut to 64
    characters. Hosts replace it with ``ENGAGEMENT["SDK_EVENT_TYPE_NORMALIZER"]``.
    """
    code = _INVALID_RUN.sub("_", _CAMEL_BOUNDARY.sub("_", name.strip()).lower()).strip("_")
    if not code[:1].isalpha():
        code = f"e_{code}".rstrip("_")
    return code[:64]


def event_type_for(name: Any) -> Any:
    """``name`` as given when ``EVENT_TYPES`` lists it, else the normaliser's code."""
    allowed = engagement_settings.EVENT_TYPES
    if not isinstance(name, str) or (allowed is not None and name in allowed):
        return name
    normalizer = engagement_settings.SDK_EVENT_TYPE_NORMALIZER
    if isinstance(normalizer, str):
        normalizer = import_string(normalizer)
    return normalizer(name)


def resolve_users(ids: Iterable[str]) -> dict[str, Any]:
    """Primary keys of the users whose ``SDK_USER_FIELD`` is one of ``ids``: ``{id: pk}``.

    One query. Ids the field cannot hold (``"anon-1"`` for an integer pk) match no one.
    """
    User = get_user_model()
    lookup = engagement_settings.SDK_USER_FIELD
    target = User._meta.pk if lookup == "pk" else resolve_lookup(User, lookup)[-1]
    values = {}
    for raw in ids:
        try:
            values[raw] = target.to_python(raw)
        except (ValidationError, TypeError, ValueError):
            continue
    if not values:
        return {}
    rows = User._default_manager.filter(**{f"{lookup}__in": set(values.values())})
    pk_by_value = {str(value): pk for value, pk in rows.values_list(lookup, "pk")}
    return {
        raw: pk_by_value[str(value)] for raw, value in values.items() if str(value) in pk_by_value
    }


def _user_resolver() -> Callable[[Iterable[str]], dict[str, Any]]:
    resolver = engagement_settings.SDK_USER_RESOLVER
    return import_string(resolver) if isinstance(resolver, str) else resolver


@dataclass
class SdkBatch:
    """What a request says about all its messages: the key's options and the client."""

    source: str = "web"
    ip_address: str | None = None
    user_agent: str = ""
    sent_at: Any = None
    #: Bytes of the decoded request body: when within ``SDK_MAX_MESSAGE_SIZE`` no message
    #: can be over it, and measuring each one is skipped.
    body_size: int | None = None
    historical: bool = False
    received_at: datetime = field(default_factory=lambda: timezone.now())

    @cached_property
    def sent_at_time(self) -> datetime | None:
        """The batch's ``sentAt``, parsed once for all its messages."""
        return _parse_time(self.sent_at, "sentAt")


@dataclass
class _Message:
    """One SDK message reduced to what the event model stores."""

    event_type: Any
    data: Any
    anonymous_id: str = ""
    user_ref: str = ""
    link_ref: str = ""
    title: str = ""
    timestamp: Any = None
    sent_at: Any = None
    message_id: Any = None
    ip_address: Any = None
    user_agent: Any = None


def _text(value: Any) -> str:
    """An SDK id as text: numbers are allowed (``userId: 42``), anything else is ''."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float | str):
        return str(value).strip()
    return ""


def _parse_time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValidationError(f"{name} is not an ISO 8601 date-time: {value!r}.")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def happened_at(message: _Message, batch: SdkBatch) -> datetime:
    """When a message happened: its timestamp corrected for the client's clock skew.

    With ``sentAt`` (the message's or the batch's) the client's clock is taken to
    differ from ours by ``sentAt - received_at``: ``received_at - (sentAt - timestamp)``,
    Segment's rule. Never later than ``received_at``; no timestamp means ``received_at``.
    """
    received = batch.received_at
    timestamp = _parse_time(message.timestamp, "timestamp")
    if timestamp is None:
        return received
    sent_at = _parse_time(message.sent_at, "sentAt") or batch.sent_at_time
    if sent_at is not None:
        timestamp = received - (sent_at - timestamp)
    return min(timestamp, received)


def _segment_message(message: dict[str, Any]) -> _Message:
    kind = message.get("type")
    if kind not in SEGMENT_TYPES:
        raise ValidationError(f"type must be one of {', '.join(SEGMENT_TYPES)}, got {kind!r}.")
    context = message.get("context")
    if not isinstance(context, dict):
        context = {}
    user_ref = _text(message.get("userId"))
    anonymous_id = _text(message.get("anonymousId"))
    title = ""
    link_ref = ""
    if kind == "track":
        event_type = event_type_for(message.get("event"))
        data = message.get("properties")
    elif kind in ("page", "screen"):
        event_type = PAGE_EVENT if kind == "page" else SCREEN_EVENT
        data = message.get("properties")
        title = _text(message.get("name"))
    elif kind == "identify":
        # RudderStack puts identify traits in context.traits.
        event_type, data = IDENTIFY_EVENT, message.get("traits") or context.get("traits")
        link_ref = anonymous_id
    elif kind == "group":
        event_type, data = GROUP_EVENT, message.get("traits")
        title = _text(message.get("groupId"))
    else:  # alias: previousId was the anonymous (or an older) id of userId
        event_type, data = ALIAS_EVENT, message.get("traits")
        link_ref = anonymous_id = _text(message.get("previousId")) or anonymous_id
    return _Message(
        event_type=event_type,
        data={} if data is None else data,
        anonymous_id=anonymous_id,
        user_ref=user_ref,
        link_ref=link_ref,
        title=title,
        timestamp=message.get("timestamp") or message.get("originalTimestamp"),
        sent_at=message.get("sentAt"),
        message_id=message.get("messageId"),
        ip_address=context.get("ip"),
        user_agent=context.get("userAgent"),
    )


def _traits(message: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """PostHog's person properties: ``$set`` on the event (posthog-js) or in properties."""
    traits = message.get("$set") or properties.get("$set")
    return traits if isinstance(traits, dict) else {}


def _posthog_message(message: dict[str, Any]) -> _Message:
    name = message.get("event")
    if not isinstance(name, str) or not name:
        raise ValidationError(f"event must be a non-empty string, got {name!r}.")
    properties = message.get("properties")
    properties = {} if properties is None else properties
    if not isinstance(properties, dict):
        raise ValidationError("properties must be a JSON object.")
    distinct_id = _text(message.get("distinct_id")) or _text(properties.get("distinct_id"))
    if not distinct_id:
        raise ValidationError("distinct_id is required.")
    data = {
        key: value
        for key, value in properties.items()
        if key not in POSTHOG_ROUTING_PROPERTIES
        and (not key.startswith("$") or key in POSTHOG_KEPT_PROPERTIES)
    }
    link_ref = ""
    anonymous_id = _text(properties.get("$device_id"))
    if name == "$identify":
        link_ref = _text(properties.get("$anon_distinct_id"))
        anonymous_id = link_ref or anonymous_id
        data.update(_traits(message, properties))
    elif name == "$create_alias":
        # alias(previous_id, distinct_id): the event is sent as previous_id.
        link_ref = distinct_id
        anonymous_id = distinct_id
        distinct_id = _text(properties.get("alias")) or distinct_id
    elif name == "$set":
        data.update(_traits(message, properties))
    return _Message(
        event_type=POSTHOG_EVENTS.get(name) or event_type_for(name),
        data=data,
        anonymous_id=anonymous_id,
        user_ref=distinct_id,
        link_ref=link_ref,
        title=_text(properties.get("$screen_name") or properties.get("title")),
        timestamp=message.get("timestamp"),
        sent_at=message.get("sent_at"),
        message_id=message.get("uuid"),
        ip_address=properties.get("$ip"),
        user_agent=properties.get("$raw_user_agent"),
    )


def message_size(message: Any) -> int:
    """Bytes of one message as compact UTF-8 JSON, the size ``SDK_MAX_MESSAGE_SIZE`` limits."""
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class MessageTooLarge(ValidationError):
    """One message is over ``SDK_MAX_MESSAGE_SIZE`` bytes (the HTTP face answers 413)."""


def _parse(
    messages: list[Any], parse: Callable[[dict[str, Any]], _Message], batch: SdkBatch
) -> list[_Message]:
    limit = engagement_settings.SDK_MAX_MESSAGE_SIZE
    small = batch.body_size is not None and batch.body_size <= limit
    parsed = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValidationError(f"batch[{index}]: a message must be a JSON object.")
        size = 0 if small else message_size(message)
        if size > limit:
            raise MessageTooLarge(
                f"batch[{index}]: message is {size} bytes; the limit is {limit} bytes "
                "(SDK_MAX_MESSAGE_SIZE).",
                code="message_too_large",
            )
        try:
            parsed.append(parse(message))
        except ValidationError as exc:
            raise ValidationError(f"batch[{index}]: {'; '.join(exc.messages)}") from exc
    return parsed


def _linked_users(Event: Any, anonymous_ids: set[str]) -> dict[str, Any]:
    """``{anonymous_id: user pk}`` from stored link events (identify/alias rows)."""
    if not anonymous_ids:
        return {}
    rows = Event._default_manager.filter(
        event_type__in=LINK_EVENTS, anonymous_id__in=anonymous_ids, user__isnull=False
    ).order_by("created_at")
    return dict(rows.values_list("anonymous_id", "user_id"))


def _ingest(messages: list[_Message], batch: SdkBatch) -> int:
    """Resolve users, build ``store_events`` items, store them and backfill new links."""
    Event = get_event_model()
    users = _user_resolver()({m.user_ref for m in messages if m.user_ref})
    new_links = {
        m.link_ref: users[m.user_ref] for m in messages if m.link_ref and m.user_ref in users
    }
    unresolved = {m.anonymous_id for m in messages if m.anonymous_id and m.user_ref not in users}
    links = {**_linked_users(Event, unresolved - set(new_links)), **new_links}
    cutoff = batch.received_at - timedelta(seconds=engagement_settings.SDK_LIVE_WINDOW)

    specs = []
    for index, message in enumerate(messages):
        try:
            timestamp = happened_at(message, batch)
        except ValidationError as exc:
            raise ValidationError(f"batch[{index}]: {'; '.join(exc.messages)}") from exc
        user = users.get(message.user_ref) or links.get(message.anonymous_id)
        anonymous_id = message.anonymous_id
        if not anonymous_id and message.user_ref not in users:
            anonymous_id = message.user_ref  # an id of no known user is kept, not dropped
        message_id = message.message_id
        specs.append(
            {
                "event_type": message.event_type,
                "user": user,
                "source": batch.source,
                "anonymous_id": anonymous_id,
                "title": message.title[:255],
                "data": message.data,
                "timestamp": timestamp,
                "idempotency_key": _text(message_id) or None,
                "ip_address": message.ip_address
                if isinstance(message.ip_address, str)
                else batch.ip_address,
                "user_agent": message.user_agent
                if isinstance(message.user_agent, str)
                else batch.user_agent,
                "fan_out": not batch.historical and timestamp >= cutoff,
            }
        )
    with transaction.atomic():
        try:
            stored = store_events(specs)
        except ValidationError as exc:
            raise type(exc)(
                "; ".join(exc.messages).replace("events[", "batch[", 1),
                code=getattr(exc, "code", None),
            ) from exc
        for anonymous_id, user in new_links.items():
            # Earlier anonymous events of a newly linked id become the user's. One whose
            # key the user already has is a second delivery of that message (a retry that
            # raced the link, or sent once with the user id): it goes, so the key stays
            # unique in the user's scope instead of failing the batch.
            anonymous = Event._default_manager.filter(anonymous_id=anonymous_id, user__isnull=True)
            users_key = Event._default_manager.filter(
                user=user, idempotency_key=OuterRef("idempotency_key")
            )
            anonymous.filter(Exists(users_key)).delete()
            anonymous.update(user=user)
    return sum(created for _, created in stored)


def ingest_segment(messages: list[Any], batch: SdkBatch) -> int:
    """Store Segment/RudderStack messages; returns how many events are new (0 on a retry)."""
    return _ingest(_parse(messages, _segment_message, batch), batch)


def ingest_posthog(messages: list[Any], batch: SdkBatch) -> int:
    """Store PostHog capture messages; returns how many events are new (0 on a retry)."""
    return _ingest(_parse(messages, _posthog_message, batch), batch)
