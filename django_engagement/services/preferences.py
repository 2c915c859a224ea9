"""Notification preferences: who receives an item, who gets it by email, muted targets.

Usage::

    from django_engagement.services.preferences import set_preferences, mute_target

    set_preferences(user, {"activity_types": {"milestone": {"email": "weekly"}}})
    mute_target(user, course, until=None)      # for good

Fan-out never loops over recipients in Python: ``receiving`` narrows the
recipients' queryset with correlated subqueries (the user's row for the type,
else the user's global row, else ``NOTIFICATION_DEFAULTS``) and a ``NOT EXISTS``
on active mutes, and a count of the last minute's items of the type
(``FEED_RATE_LIMIT``: past it, an item is dropped or, with ``"mode": "fold"``,
counted in the user's latest unread item of the type), so the feed's
``INSERT ... SELECT`` stays one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, models, router, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Value
from django.db.models.constants import OnConflict
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..conf import engagement_settings
from ..models import (
    AbstractActivityFeedItem,
    EmailFrequency,
    FeedEmail,
    NotificationPreference,
    TargetMute,
    column_of,
    get_feed_model,
)

FIELDS = ("in_feed", "email")
BUILTIN_DEFAULT = {"in_feed": True, "email": EmailFrequency.NEVER.value}


def defaults_for(activity_type: str) -> dict[str, Any]:
    """``NOTIFICATION_DEFAULTS`` for ``activity_type``: its entry over ``"*"``."""
    table = engagement_settings.NOTIFICATION_DEFAULTS or {}
    merged = {**BUILTIN_DEFAULT, **table.get("*", {})}
    if activity_type:
        merged.update(table.get(activity_type, {}))
    return merged


def _effective(field: str, activity_type: str, user_ref: str) -> Coalesce:
    """SQL for a user's ``field`` choice: type row, else global row, else the setting."""
    rows = NotificationPreference._default_manager.filter(user=OuterRef(user_ref)).order_by()
    output = NotificationPreference._meta.get_field(field)
    assert isinstance(output, models.Field)  # in_feed or email, both concrete
    return Coalesce(
        Subquery(rows.filter(activity_type=activity_type).values(field)[:1]),
        Subquery(rows.filter(activity_type=NotificationPreference.GLOBAL).values(field)[:1]),
        Value(defaults_for(activity_type)[field], output_field=output),
        output_field=output,
    )


RATE_LIMIT_MODES = ("drop", "fold")


@dataclass(frozen=True)
class RateLimit:
    """``FEED_RATE_LIMIT`` of one type: ``per_minute`` items, then ``mode`` drop or fold."""

    per_minute: int
    mode: str = "drop"

    @classmethod
    def from_setting(cls, activity_type: str, value: Any) -> RateLimit | None:
        """Parse one entry: a number (drop) or ``{"per_minute": N, "mode": "drop"|"fold"}``."""
        where = f"ENGAGEMENT FEED_RATE_LIMIT[{activity_type!r}]"
        if value is None or value == 0:
            return None
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"per_minute", "mode"})
            if unknown:
                raise ImproperlyConfigured(
                    f"{where} has unknown keys {unknown}; keys are per_minute and mode."
                )
            per_minute, mode = value.get("per_minute"), value.get("mode", "drop")
        else:
            per_minute, mode = value, "drop"
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ImproperlyConfigured(
                f"{where} must be a positive whole number of items per minute, got {per_minute!r}."
            )
        if mode not in RATE_LIMIT_MODES:
            raise ImproperlyConfigured(
                f"{where}['mode'] must be {' or '.join(map(repr, RATE_LIMIT_MODES))}, got {mode!r}."
            )
        return cls(per_minute=per_minute, mode=mode)


def rate_limit_table() -> dict[str, RateLimit | None]:
    """``FEED_RATE_LIMIT`` parsed, ``"*"`` included; raises ImproperlyConfigured."""
    table = engagement_settings.FEED_RATE_LIMIT or {}
    if not isinstance(table, dict):
        raise ImproperlyConfigured(
            f"ENGAGEMENT FEED_RATE_LIMIT must be a dict of activity types, got {table!r}."
        )
    return {key: RateLimit.from_setting(key, value) for key, value in table.items()}


def rate_limit_for(activity_type: str) -> RateLimit | None:
    """The flood limit of ``activity_type`` (``FEED_RATE_LIMIT``): its entry, else ``"*"``."""
    table = rate_limit_table()
    return table[activity_type] if activity_type in table else table.get("*")


def _wanted(recipients: models.QuerySet, item: AbstractActivityFeedItem) -> models.QuerySet:
    """``recipients`` who take ``item``'s type in their feed and have not muted its target."""
    wanted = recipients.alias(engagement_in_feed=_effective("in_feed", item.activity_type, "pk"))
    if defaults_for(item.activity_type)["in_feed"]:
        # Only a row can keep the type out. When no type or global row opts out (the
        # usual case), this uncorrelated test, run once per statement, spares the
        # two lookups per recipient.
        opted_out = NotificationPreference._default_manager.filter(
            activity_type__in=[item.activity_type, NotificationPreference.GLOBAL], in_feed=False
        )
        wanted = wanted.filter(Q(~Exists(opted_out)) | Q(engagement_in_feed=True))
    else:
        wanted = wanted.filter(engagement_in_feed=True)
    if item.target_content_type_id is None:
        return wanted
    mutes = TargetMute._default_manager.filter(
        Q(until__isnull=True) | Q(until__gt=timezone.now()),
        user=OuterRef("pk"),
        target_content_type_id=item.target_content_type_id,
        target_object_id=item.target_object_id,
    )
    return wanted.exclude(Exists(mutes))


def _with_recent(recipients: models.QuerySet, item: AbstractActivityFeedItem) -> models.QuerySet:
    """``recipients`` with ``engagement_recent``: their items of the type in the last minute."""
    recent = (
        get_feed_model()
        ._default_manager.filter(
            user=OuterRef("pk"),
            activity_type=item.activity_type,
            created_at__gt=timezone.now() - timedelta(minutes=1),
        )
        .order_by()
        .values("user")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return recipients.alias(engagement_recent=Coalesce(Subquery(recent), Value(0)))


def receiving(
    recipients: models.QuerySet,
    item: AbstractActivityFeedItem,
    *,
    exempt: Exists | None = None,
) -> models.QuerySet:
    """``recipients`` without the users who opted out of ``item``'s type or muted its target.

    ``item`` is the unsaved template of the copies to insert. Users at the type's
    ``FEED_RATE_LIMIT`` are left out too, unless ``exempt`` holds for them (a
    grouped item that folds into their open group adds no item).
    """
    wanted = _wanted(recipients, item)
    limit = rate_limit_for(item.activity_type)
    if limit is None:
        return wanted
    # Flood protection: users who got ``per_minute`` items of this type in the
    # last minute get no more until the minute has passed.
    allowed = Q(engagement_recent__lt=limit.per_minute)
    if exempt is not None:
        allowed |= Q(exempt)
    return _with_recent(wanted, item).filter(allowed)


def over_limit(
    recipients: models.QuerySet,
    item: AbstractActivityFeedItem,
    *,
    exempt: Exists | None = None,
) -> models.QuerySet | None:
    """The users ``receiving`` leaves out for the flood limit when its mode is ``"fold"``.

    None when the type has no limit or drops. ``exempt`` users are not among them.
    """
    limit = rate_limit_for(item.activity_type)
    if limit is None or limit.mode != "fold":
        return None
    over = _with_recent(_wanted(recipients, item), item).filter(
        engagement_recent__gte=limit.per_minute
    )
    return over if exempt is None else over.exclude(exempt)


def queue_emails(items: models.QuerySet, activity_type: str) -> int:
    """Outbox rows for ``items`` whose users want them by email; returns how many.

    One ``INSERT ... SELECT`` from the feed items with each user's frequency as a
    subquery; an item already queued is skipped (``FeedEmail`` is keyed by item).
    """
    frequency = _effective("email", activity_type, "user_id")
    rows = (
        items.order_by()
        .annotate(engagement_frequency=frequency)
        .exclude(engagement_frequency=EmailFrequency.NEVER)
        .values("pk", "user_id", "engagement_frequency")
    )
    connection = connections[router.db_for_write(FeedEmail)]
    quote = connection.ops.quote_name
    select_sql, params = rows.query.sql_with_params()
    names = ("item", "user", "frequency", "created_at")
    columns = ", ".join(quote(column_of(FeedEmail, name)) for name in names)
    created_at = FeedEmail._meta.get_field("created_at").get_db_prep_save(
        timezone.now(), connection
    )
    postgres = connection.vendor == "postgresql"
    placeholder = "CAST(%s AS timestamp with time zone)" if postgres else "%s"
    insert = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    suffix = connection.ops.on_conflict_suffix_sql(
        [FeedEmail._meta.pk], OnConflict.IGNORE, None, None
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert} {quote(FeedEmail._meta.db_table)} ({columns}) "
            f"SELECT rows.*, {placeholder} FROM ({select_sql}) rows {suffix}",
            [created_at, *params],
        )
        return cursor.rowcount


# -- reading and changing one user's preferences ----------------------------------------


@dataclass(frozen=True)
class Mute:
    """One muted target as the API shows it."""

    content_type: ContentType | None
    object_id: str
    until: datetime | None


def get_preferences(user: Any) -> dict[str, Any]:
    """The user's default, per-type overrides and active mutes; three queries."""
    rows = {
        row.activity_type: {field: getattr(row, field) for field in FIELDS}
        for row in NotificationPreference._default_manager.filter(user=user)
    }
    default = rows.pop(NotificationPreference.GLOBAL, None) or {
        field: defaults_for("")[field] for field in FIELDS
    }
    mutes = (
        TargetMute._default_manager.filter(user=user)
        .filter(Q(until__isnull=True) | Q(until__gt=timezone.now()))
        .select_related("target_content_type")
        .order_by("created_at", "pk")
    )
    return {
        "default": default,
        "activity_types": dict(sorted(rows.items())),
        "muted_targets": [
            Mute(mute.target_content_type, mute.target_object_id, mute.until) for mute in mutes
        ],
    }


def _upsert(user: Any, activity_type: str, values: dict[str, Any]) -> None:
    """Write one preference row; fields not in ``values`` keep their effective value."""
    current = NotificationPreference._default_manager.filter(
        user=user, activity_type=activity_type
    ).first()
    if current is None:
        base = defaults_for(activity_type)
        if activity_type:
            global_row = NotificationPreference._default_manager.filter(
                user=user, activity_type=NotificationPreference.GLOBAL
            ).first()
            if global_row is not None:
                base = {field: getattr(global_row, field) for field in FIELDS}
        current = NotificationPreference(
            user=user, activity_type=activity_type, **{f: base[f] for f in FIELDS}
        )
    for field, value in values.items():
        setattr(current, field, value)
    current.save()


@transaction.atomic
def set_preferences(user: Any, changes: dict[str, Any], *, replace: bool = False) -> dict[str, Any]:
    """Apply validated ``changes`` (the API shape) to ``user``'s preferences.

    ``replace`` (PUT) makes the result exactly ``changes``: overrides and mutes not
    listed are deleted, a missing default goes back to the settings. Otherwise
    (PATCH) ``default`` and each listed type are merged field by field, a type
    given as None loses its override, and ``muted_targets``, when given, replaces
    the list. Returns ``get_preferences(user)``.
    """
    prefs = NotificationPreference._default_manager.filter(user=user)
    if replace:
        prefs.delete()
    if changes.get("default"):
        _upsert(user, NotificationPreference.GLOBAL, changes["default"])
    for activity_type, values in (changes.get("activity_types") or {}).items():
        if values is None:
            prefs.filter(activity_type=activity_type).delete()
        else:
            _upsert(user, activity_type, values)
    if replace or "muted_targets" in changes:
        TargetMute._default_manager.filter(user=user).delete()
        TargetMute._default_manager.bulk_create(
            [
                TargetMute(
                    user=user,
                    target_content_type=mute.content_type,
                    target_object_id=mute.object_id,
                    until=mute.until,
                )
                for mute in changes.get("muted_targets") or []
            ],
            ignore_conflicts=True,
        )
    return get_preferences(user)


def mute_target(user: Any, target: models.Model, *, until: datetime | None = None) -> TargetMute:
    """Silence ``target`` for ``user`` until ``until`` (None: for good)."""
    mute, _ = TargetMute._default_manager.update_or_create(
        user=user,
        target_content_type=ContentType.objects.get_for_model(target),
        target_object_id=str(target.pk),
        defaults={"until": until},
    )
    return mute


def unsubscribe(user_id: Any, activity_type: str) -> bool:
    """Email ``never`` for ``activity_type`` ("" = every type): the unsubscribe link's action.

    False when the user no longer exists (an old link of a deleted account).
    """
    if not get_user_model()._default_manager.filter(pk=user_id).exists():
        return False
    NotificationPreference._default_manager.update_or_create(
        user_id=user_id,
        activity_type=activity_type,
        defaults={"email": EmailFrequency.NEVER},
        create_defaults={
            "email": EmailFrequency.NEVER,
            "in_feed": defaults_for(activity_type)["in_feed"],
        },
    )
    if not activity_type:
        # "Every type": the per-type overrides must not keep sending.
        NotificationPreference._default_manager.filter(user_id=user_id).exclude(
            email=EmailFrequency.NEVER
        ).update(email=EmailFrequency.NEVER)
    return True
