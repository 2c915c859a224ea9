"""Recording events: the write path behind receivers, the ingestion API and hosts' code.

Usage::

    from django_engagement import record_event, record_events

    record_event("page_view", user=request.user, data={"page": "home"}, request=request)
    record_events([{"event_type": "page_view", "anonymous_id": "anon-1"}, ...])

Every event is validated first (``validate_event_spec``, once: the ingestion API, whose
serializers run the same rules per field, hands its items to ``store_validated_events``),
then stored with set-based inserts; a repeated
``idempotency_key`` stores nothing and returns the original event (the partial
unique constraints decide, so concurrent retries are safe too). Keys are scoped
per client: the event's user, else its ``anonymous_id``, else the server's scope
(see ``idempotency_scope``), so one client can neither see nor suppress another's. Feed fan-out
(``FEED_RULES``) runs in the same transaction, or as a Celery task when
``ASYNC_FEED`` is on, and ``event_recorded`` is sent after commit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from ..conf import engagement_settings
from ..models import AbstractEvent, column_limit, get_event_model
from ..signals import event_recorded
from ..validators import (
    validate_event_type,
    validate_payload_size,
    validate_source,
    validate_storable_json,
    validate_storable_text,
)
from .feed import feed_rule_table, reschedule_pending, schedule_fan_out

# Keys a ``record_events`` item may have: record_event's keywords minus ``request``.
EVENT_KEYS = frozenset(
    {
        "event_type",
        "user",
        "target",
        "data",
        "source",
        "anonymous_id",
        "title",
        "description",
        "timestamp",
        "idempotency_key",
        "ip_address",
        "user_agent",
        "fan_out",
    }
)


def anonymize_ip(ip: str) -> str:
    """Zero the last octet of an IPv4 address, or the last 80 bits of an IPv6 one."""
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _clean_ip(ip: str | None) -> str | None:
    """Apply ``CAPTURE_IP``/``ANONYMIZE_IP``; unparsable addresses are dropped, not stored."""
    if not ip or not engagement_settings.CAPTURE_IP:
        return None
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return None
    return anonymize_ip(ip) if engagement_settings.ANONYMIZE_IP else ip


def utf8_header(value: str, errors: str = "strict") -> str:
    """A header value as the UTF-8 text the client sent.

    WSGI and ASGI hand headers over decoded as latin-1, so ``café`` arrives as
    ``cafÃ©``; re-encoding gives the bytes back. Raises ``UnicodeDecodeError`` for
    bytes that are not UTF-8 (unless ``errors="replace"``). A value that is not
    latin-1 was never bytes from the wire (the test client) and is returned as is.
    """
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    return raw.decode("utf-8", errors)


def request_context(request: Any) -> dict[str, Any]:
    """The user, IP address and user agent of ``request``, as ``record_events`` takes them.

    The IP is ``REMOTE_ADDR``: behind a proxy, the host must set it from its trusted
    forwarding header in its own middleware (the package never trusts
    ``X-Forwarded-For``, which any client can send).
    """
    user = getattr(request, "user", None)
    return {
        "user": user if user is not None and user.is_authenticated else None,
        "ip_address": _clean_ip(request.META.get("REMOTE_ADDR")),
        "user_agent": utf8_header(request.META.get("HTTP_USER_AGENT", ""), "replace").replace(
            "\x00", ""
        )[: column_limit("user_agent")],
    }


def _check_length(name: str, value: str | None) -> None:
    limit = column_limit(name)
    if value and len(value) > limit:
        raise ValidationError(f"{name} is {len(value)} characters long; the limit is {limit}.")


def validate_event_spec(spec: dict[str, Any]) -> None:
    """Every rule of one ``record_events`` item; raises ``ValidationError`` naming the problem.

    Keys, event type and source (``validators``), ``data`` (an object of storable JSON
    within ``MAX_EVENT_SIZE``), text lengths (the event model's columns) and text
    PostgreSQL cannot store. The timestamp is checked when the event is built.
    """
    unknown = set(spec) - EVENT_KEYS
    if unknown:
        raise ValidationError(f"Unknown event keys: {', '.join(sorted(unknown))}.")
    validate_event_type(spec.get("event_type"))
    validate_source(spec.get("source") or AbstractEvent.Source.SERVER)
    data = spec.get("data")
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValidationError("data must be a JSON object.")
    validate_storable_json(data, "data")
    validate_payload_size(data)
    for name in ("anonymous_id", "title", "idempotency_key"):
        _check_length(name, spec.get(name))
    for name in ("anonymous_id", "title", "description", "idempotency_key"):
        validate_storable_text(name, spec.get(name))


def _build_event(Event: type[AbstractEvent], spec: dict[str, Any]) -> AbstractEvent:
    """An unsaved event of a spec that passed ``validate_event_spec``.

    Normalises only: defaults, the timestamp to an aware UTC datetime (``ValidationError``
    when it has no UTC equivalent), ``CAPTURE_IP`` / ``ANONYMIZE_IP``, the user agent cut
    to its column.
    """
    event_type = spec["event_type"]
    source = spec.get("source") or AbstractEvent.Source.SERVER
    data = spec.get("data")
    data = {} if data is None else data
    anonymous_id = spec.get("anonymous_id") or ""
    title = spec.get("title") or ""
    description = spec.get("description") or ""
    idempotency_key = spec.get("idempotency_key") or None

    timestamp = spec.get("timestamp")
    if timestamp is None:
        timestamp = timezone.now()
    elif not isinstance(timestamp, datetime):
        raise ValidationError("timestamp must be a datetime.")
    elif timezone.is_naive(timestamp):
        timestamp = timezone.make_aware(timestamp)
    if settings.USE_TZ:
        # PostgreSQL refuses UTC offsets beyond +-15:59 that Python accepts (up to 23:59).
        try:
            timestamp = timestamp.astimezone(UTC)
        except OverflowError:
            raise ValidationError("timestamp has no UTC equivalent (out of range).") from None

    event = Event(
        event_type=event_type,
        source=source,
        data=data,
        anonymous_id=anonymous_id,
        title=title,
        description=description,
        created_at=timestamp,
        idempotency_key=idempotency_key,
        ip_address=_clean_ip(spec.get("ip_address")),
        user_agent=(spec.get("user_agent") or "")[: column_limit("user_agent")],
    )
    # False for backfilled events (SDK history imports): stored, but no feed items.
    event._engagement_fan_out = spec.get("fan_out", True)
    user = spec.get("user")
    if isinstance(user, models.Model):
        event.user = user  # type: ignore[assignment]  # an instance of AUTH_USER_MODEL
    elif user is not None and getattr(user, "is_authenticated", True):
        # A user id; an AnonymousUser (request.user of a visitor) records no user.
        # Cast like the column, so "5" and 5 are one idempotency scope.
        event.user_id = Event._meta.get_field("user").target_field.to_python(user)
    target = spec.get("target")
    if target is not None:
        # Through the generic FK, so fan-out finds the instance cached (no query).
        event.target = target
        event.target_object_id = str(target.pk)
    return event


def idempotency_scope(event: AbstractEvent) -> tuple[str, Any]:
    """The namespace of ``event``'s idempotency key: its user, else its anonymous id.

    Events with neither (``anonymous_id == ""``) share the server's scope, which the
    HTTP API never writes to (it refuses keys from clients without an identity).
    The two partial unique constraints on the event model enforce the same split.
    """
    if event.user_id is not None:
        return ("user", event.user_id)
    return ("anonymous", event.anonymous_id)


def _stored_with_keys(keyed: Sequence[AbstractEvent]) -> Q:
    """One filter for the stored rows of ``keyed``: two terms whatever the batch size.

    It may also match a row of one of the batch's scopes under another of the
    batch's keys; the caller maps rows by ``(scope, key)``, so that is harmless,
    and rows of clients outside the batch are never read.
    """
    keys = {event.idempotency_key for event in keyed}
    user_ids = {event.user_id for event in keyed if event.user_id is not None}
    anonymous_ids = {event.anonymous_id for event in keyed if event.user_id is None}
    # Each arm repeats the key filter, so it implies one partial unique index's
    # condition and PostgreSQL can read that index (a BitmapOr of the two).
    scopes = Q(pk__in=[])
    if user_ids:
        scopes |= Q(idempotency_key__in=keys, user_id__in=user_ids)
    if anonymous_ids:
        scopes |= Q(idempotency_key__in=keys, user__isnull=True, anonymous_id__in=anonymous_ids)
    return scopes


def _store(events: Sequence[AbstractEvent]) -> list[tuple[AbstractEvent, bool]]:
    """Insert one batch; return ``(stored event, created)`` per input, in input order.

    Without idempotency keys this is one ``bulk_create`` (it returns primary keys on
    SQLite and PostgreSQL). With keys, conflicting rows are skipped by the database
    (``ignore_conflicts``, which waits for a concurrent inserter to commit), then one
    SELECT fetches what is stored: the new rows by uuid and the originals by
    ``(scope, key)`` (see ``idempotency_scope``).
    """
    Event = type(events[0])
    manager = Event._default_manager
    if not any(event.idempotency_key for event in events):
        if len(events) == 1:
            # save() is one INSERT in autocommit; bulk_create() adds BEGIN and COMMIT.
            events[0].save(force_insert=True)
        else:
            manager.bulk_create(events)
        return [(event, True) for event in events]

    def scoped_key(event: AbstractEvent) -> tuple[tuple[str, Any], str | None]:
        return (idempotency_scope(event), event.idempotency_key)

    first_by_key: dict[tuple[tuple[str, Any], str | None], AbstractEvent] = {}
    to_insert = []
    for event in events:
        if event.idempotency_key is None:
            to_insert.append(event)
        elif scoped_key(event) not in first_by_key:
            to_insert.append(event)
            first_by_key[scoped_key(event)] = event
    manager.bulk_create(to_insert, ignore_conflicts=True)
    plain = [event.uuid for event in to_insert if event.idempotency_key is None]
    keyed = list(first_by_key.values())
    stored = manager.filter(Q(uuid__in=plain) | _stored_with_keys(keyed)).order_by()
    by_uuid = {event.uuid: event for event in stored}
    by_key = {scoped_key(row): row for row in by_uuid.values() if row.idempotency_key}

    result = []
    for event in events:
        row = by_key[scoped_key(event)] if event.idempotency_key else by_uuid[event.uuid]
        created = row.uuid == event.uuid
        if created:
            # Return the caller's instance (it holds the target object) with its new pk.
            event.pk = row.pk
            row = event
        result.append((row, created))
    return result


def _record(built: Sequence[AbstractEvent]) -> list[tuple[AbstractEvent, bool]]:
    """Store validated events in batches in one transaction, fan out, signal after commit."""
    Event = type(built[0])

    batch_size = engagement_settings.MAX_BATCH_SIZE
    table = feed_rule_table()
    # One INSERT that no feed rule follows is atomic by itself; skipping BEGIN/COMMIT
    # saves two round trips on the hottest path (a page view, a click).
    single_write = (
        len(built) <= batch_size
        and table is not None
        and not any(event.event_type in table for event in built)
    )
    results: list[tuple[AbstractEvent, bool]] = []
    with nullcontext() if single_write else transaction.atomic():
        for start in range(0, len(built), batch_size):
            results.extend(_store(built[start : start + batch_size]))
        new = [event for event, created in results if created]
        replayed = [event for event, created in results if not created]
        live = [event for event in new if getattr(event, "_engagement_fan_out", True)]
        if live:
            schedule_fan_out(live)
        if replayed:
            reschedule_pending(replayed)
        for events, created in ((new, True), (replayed, False)):
            if events:
                transaction.on_commit(
                    partial(event_recorded.send, sender=Event, events=events, created=created)
                )
    return results


def _built(events: Iterable[dict[str, Any]], *, validate: bool) -> list[AbstractEvent]:
    """Unsaved events of ``events``; a ``ValidationError`` names its item (``events[<index>]``)."""
    Event = get_event_model()
    built = []
    for index, spec in enumerate(events):
        try:
            if validate:
                validate_event_spec(spec)
            built.append(_build_event(Event, spec))
        except ValidationError as exc:
            message = f"events[{index}]: {'; '.join(exc.messages)}"
            raise type(exc)(message, code=getattr(exc, "code", None)) from exc
    return built


def store_events(events: Iterable[dict[str, Any]]) -> list[tuple[AbstractEvent, bool]]:
    """``record_events`` that also says, per event, whether it is new (False: a replayed key)."""
    if not engagement_settings.ENABLED:
        return []
    built = _built(events, validate=True)
    return _record(built) if built else []


def store_validated_events(events: Iterable[dict[str, Any]]) -> list[tuple[AbstractEvent, bool]]:
    """``store_events`` for items a face has already validated: internal to the package.

    The ingestion API's serializers (``api/serializers.py``) run the rules of
    ``validate_event_spec`` per field, with the same ``validators`` and the same column
    limits, to name the field in a 400; this entry point skips running them a second
    time and only normalises (see ``_build_event``). Items must hold only the keys
    of ``EVENT_KEYS`` and ``data`` must be a dict. Everything else calls ``store_events``.
    """
    if not engagement_settings.ENABLED:
        return []
    built = _built(events, validate=False)
    return _record(built) if built else []


def record_events(events: Iterable[dict[str, Any]]) -> list[AbstractEvent]:
    """Record many events at once: all or nothing, one bulk insert per batch.

    Each dict takes ``record_event``'s keywords (except ``request``) plus
    ``ip_address``, ``user_agent`` and ``fan_out`` (False: store without feed items,
    for backfilled history). Returns the stored events in input order;
    an item whose ``idempotency_key`` is already used in its scope (its user, else
    its ``anonymous_id``, else the server's) yields the original event.
    ``ValidationError``/``PayloadTooLarge`` messages start with ``events[<index>]``.
    """
    return [event for event, _ in store_events(events)]


def record_event(
    event_type: str,
    *,
    user: Any = None,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
    request: Any = None,
    source: str = "server",
    anonymous_id: str | None = None,
    title: str = "",
    description: str = "",
    timestamp: datetime | None = None,
    idempotency_key: str | None = None,
) -> AbstractEvent | None:
    """Record one event and return it (or the original one for a repeated key).

    With ``request``, the authenticated user (unless ``user`` is given), the IP
    address and the user agent come from it. Returns None and stores nothing
    when ``ENABLED`` is False. ``idempotency_key`` is unique per scope: the
    event's user, else its ``anonymous_id``, else the server's scope (neither),
    which only server code can write to.
    """
    if not engagement_settings.ENABLED:
        return None
    spec: dict[str, Any] = {
        "event_type": event_type,
        "user": user,
        "target": target,
        "data": data,
        "source": source,
        "anonymous_id": anonymous_id,
        "title": title,
        "description": description,
        "timestamp": timestamp,
        "idempotency_key": idempotency_key,
    }
    if request is not None:
        context = request_context(request)
        if user is None:
            spec["user"] = context["user"]
        spec["ip_address"] = context["ip_address"]
        spec["user_agent"] = context["user_agent"]
    validate_event_spec(spec)
    [(event, _)] = _record([_build_event(get_event_model(), spec)])
    return event
