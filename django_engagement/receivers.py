"""Package receivers, connected in ``EngagementConfig.ready()`` according to ``TRACK``.

Each is a plain function connected with ``dispatch_uid="django_engagement.<name>"``, so a
host can replace one::

    from django.db.models.signals import m2m_changed
    m2m_changed.disconnect(dispatch_uid="django_engagement.track_membership",
                           sender=Course.students.through)

Receivers also read ``TRACK`` when they run, so ``override_settings`` can switch
one off in tests. docs/reference/signals.md lists what each records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models, transaction
from django.db.models import Count
from django.db.models.signals import m2m_changed, post_save, pre_save

from .conf import (
    LOGIN_EVENT,
    LOGOUT_EVENT,
    MILESTONE_EVENT,
    SIGNUP_EVENT,
    TARGET_CREATED_EVENT,
    TARGET_UPDATED_EVENT,
    engagement_settings,
)
from .models import get_target_model, resolve_lookup
from .services.events import record_event, record_events, store_events
from .services.realtime import publish_users
from .signals import feed_items_created, feed_items_read, milestone_reached

# Instance attributes carrying state from a pre_* signal to its post_* twin.
SNAPSHOT_ATTR = "_django_engagement_snapshot"
LEAVING_ATTR = "_django_engagement_leaving"


def _tracking(key: str) -> bool:
    return bool(engagement_settings.ENABLED and engagement_settings.TRACK.get(key))


def track_login(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_in`` -> event ``user_logged_in`` with the request's IP and user agent."""
    if _tracking("login"):
        record_event(LOGIN_EVENT, user=user, request=request)


def track_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out`` -> event ``user_logged_out`` (nothing for an anonymous logout)."""
    if user is not None and _tracking("logout"):
        record_event(LOGOUT_EVENT, user=user, request=request)


def track_signup(
    sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any
) -> None:
    """``post_save`` of the user model with ``created`` -> event ``user_signed_up``."""
    if created and not raw and _tracking("signup"):
        record_event(SIGNUP_EVENT, user=instance)


# -- target lifecycle -------------------------------------------------------------------


def _tracked_fields(model: type[models.Model]) -> list[models.Field]:
    # auto_now fields change on every save; reporting them would say nothing.
    return [field for field in model._meta.concrete_fields if not getattr(field, "auto_now", False)]


def snapshot_target(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    """``pre_save`` of the target: remember the stored values to name changed fields later.

    One query per save of an existing target; skipped with ``update_fields``,
    which already names the changes.
    """
    if raw or instance._state.adding or update_fields is not None:
        return
    if not _tracking("target_lifecycle"):
        return
    names = [field.attname for field in _tracked_fields(sender)]
    stored = sender._default_manager.filter(pk=instance.pk).values(*names).first()
    setattr(instance, SNAPSHOT_ATTR, stored)


def track_target_saved(
    sender: Any,
    instance: Any,
    created: bool = False,
    raw: bool = False,
    update_fields: Any = None,
    **kwargs: Any,
) -> None:
    """``post_save`` of the target -> ``target_created``, or ``target_updated`` with
    ``data={"changed": [field names]}`` when a field really changed."""
    snapshot = instance.__dict__.pop(SNAPSHOT_ATTR, None)
    if raw or not _tracking("target_lifecycle"):
        return
    if created:
        record_event(TARGET_CREATED_EVENT, target=instance)
        return
    if update_fields is not None:
        changed = sorted(update_fields)
    elif snapshot is None:
        return
    else:
        changed = [
            field.name
            for field in _tracked_fields(sender)
            if field.to_python(snapshot[field.attname])
            != field.to_python(field.value_from_object(instance))
        ]
    if changed:
        record_event(TARGET_UPDATED_EVENT, target=instance, data={"changed": changed})


# -- membership -------------------------------------------------------------------------


@dataclass(frozen=True)
class Membership:
    """The many-to-many hop of ``TARGET_PARTICIPANTS`` that membership tracking watches.

    ``through`` links the target (column ``target_attname``) to ``member_model``
    (column ``member_attname``); ``user_path`` leads from a member to its users
    ("" when members are users).
    """

    target_model: type[models.Model]
    through: type[models.Model]
    target_attname: str
    member_attname: str
    member_model: type[models.Model]
    user_path: str


def membership_relation() -> Membership | None:
    """Resolve ``TARGET_PARTICIPANTS`` into its first (many-to-many) hop, or None.

    Supported: a path whose first step is a many-to-many relation of the target,
    declared on either side (``members``, ``profiles__user``).
    """
    path = engagement_settings.TARGET_PARTICIPANTS
    try:
        Target = get_target_model()
        fields = resolve_lookup(Target, path) if Target and path else None
    except (ImproperlyConfigured, FieldDoesNotExist):
        return None  # the system checks report it
    if Target is None or not fields or not fields[0].many_to_many:
        return None
    first = fields[0]
    m2m = first if isinstance(first, models.ManyToManyField) else first.field
    if m2m.model is Target:
        target_name, member_name = m2m.m2m_field_name(), m2m.m2m_reverse_field_name()
        member_model = m2m.related_model
    else:
        target_name, member_name = m2m.m2m_reverse_field_name(), m2m.m2m_field_name()
        member_model = m2m.model
    if member_model is Target:
        return None  # a target-to-target relation has no users on one side
    through: type[models.Model] = m2m.remote_field.through  # type: ignore[assignment]  # set once models load
    return Membership(
        target_model=Target,
        through=through,
        target_attname=through._meta.get_field(target_name).attname,  # type: ignore[union-attr]  # a ForeignKey
        member_attname=through._meta.get_field(member_name).attname,  # type: ignore[union-attr]  # a ForeignKey
        member_model=member_model,
        user_path="__".join(path.split("__")[1:]),
    )


def _linked_pairs(
    relation: Membership, instance: models.Model, pk_set: Iterable[Any] | None
) -> list[tuple[Any, Any]]:
    """(target pk, member pk) links of ``instance`` that exist now, limited to ``pk_set``."""
    on_target = isinstance(instance, relation.target_model)
    own, other = (
        (relation.target_attname, relation.member_attname)
        if on_target
        else (relation.member_attname, relation.target_attname)
    )
    links = relation.through._default_manager.filter(**{own: instance.pk})
    if pk_set is not None:
        links = links.filter(**{f"{other}__in": list(pk_set)})
    return list(links.values_list(relation.target_attname, relation.member_attname))


def _changed_pairs(
    relation: Membership, instance: models.Model, pk_set: Iterable[Any]
) -> list[tuple[Any, Any]]:
    """(target pk, member pk) pairs named by an m2m signal, whichever side sent it."""
    if isinstance(instance, relation.target_model):
        return [(instance.pk, member_pk) for member_pk in pk_set]
    return [(target_pk, instance.pk) for target_pk in pk_set]


def _user_pairs(relation: Membership, pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Map (target pk, member pk) to unique (target pk, user pk), in one query at most."""
    if not relation.user_path:
        return list(dict.fromkeys(pairs))
    users_of = defaultdict(list)
    member_pks = {member_pk for _, member_pk in pairs}
    rows = relation.member_model._default_manager.filter(pk__in=member_pks).values_list(
        "pk", relation.user_path
    )
    for member_pk, user_pk in rows:
        if user_pk is not None:
            users_of[member_pk].append(user_pk)
    return list(
        dict.fromkeys(
            (target_pk, user_pk)
            for target_pk, member_pk in pairs
            for user_pk in users_of[member_pk]
        )
    )


def _record_membership(
    relation: Membership, instance: models.Model, event_type: str, pairs: list[tuple[Any, Any]]
) -> None:
    user_pairs = _user_pairs(relation, pairs)
    if not user_pairs:
        return
    if isinstance(instance, relation.target_model):
        targets = {instance.pk: instance}
    else:
        targets = relation.target_model._default_manager.in_bulk({pk for pk, _ in user_pairs})
    record_events(
        {"event_type": event_type, "user": user_pk, "target": targets[target_pk]}
        for target_pk, user_pk in user_pairs
        if target_pk in targets
    )
    if event_type == engagement_settings.JOIN_EVENT:
        joined: defaultdict[Any, int] = defaultdict(int)
        for target_pk, _ in user_pairs:
            joined[target_pk] += 1
        record_milestones(targets, joined)


def track_membership(
    sender: Any,
    instance: models.Model,
    action: str,
    reverse: bool = False,
    model: Any = None,
    pk_set: set[Any] | None = None,
    **kwargs: Any,
) -> None:
    """``m2m_changed`` of the participants relation -> ``JOIN_EVENT``/``LEAVE_EVENT`` per user.

    Works from either side (``course.students.add(user)`` and ``user.courses.add(course)``):
    the instance's class tells which side sent it, so ``reverse`` needs no special case.
    Removals are read before they happen (``pre_remove``/``pre_clear``) so only real
    links count. All events of one call are stored with one bulk insert.
    """
    if not _tracking("membership"):
        return
    relation = membership_relation()
    if relation is None or sender is not relation.through:
        return
    if action in ("pre_remove", "pre_clear"):
        setattr(instance, LEAVING_ATTR, _linked_pairs(relation, instance, pk_set))
    elif action in ("post_remove", "post_clear"):
        pairs = instance.__dict__.pop(LEAVING_ATTR, [])
        _record_membership(relation, instance, engagement_settings.LEAVE_EVENT, pairs)
    elif action == "post_add" and pk_set:
        pairs = _changed_pairs(relation, instance, pk_set)
        _record_membership(relation, instance, engagement_settings.JOIN_EVENT, pairs)


def record_milestones(targets: dict[Any, models.Model], joined: dict[Any, int]) -> None:
    """Record ``milestone_reached`` for each ``MILESTONES`` threshold the joins crossed.

    One grouped COUNT for all targets. A threshold is crossed when the count before
    these joins was below it and is now at or above it. The idempotency key
    ``milestone:<content type id>:<pk>:<threshold>`` makes the unique constraint
    guarantee one event per target and threshold, also under concurrent joins.
    """
    thresholds = sorted(engagement_settings.MILESTONES or ())
    relation_path = engagement_settings.TARGET_PARTICIPANTS
    if not thresholds or not joined:
        return
    Target = next(iter(targets.values())).__class__
    counts = dict(
        Target._default_manager.filter(pk__in=list(joined))
        .order_by()
        .values_list("pk")
        .annotate(count=Count(relation_path, distinct=True))
    )
    content_type = ContentType.objects.get_for_model(Target)
    specs = []
    for target_pk, count in counts.items():
        before = count - joined[target_pk]
        for threshold in thresholds:
            if before < threshold <= count:
                specs.append(
                    {
                        "event_type": MILESTONE_EVENT,
                        "target": targets[target_pk],
                        "data": {"threshold": threshold, "count": count},
                        "idempotency_key": (f"milestone:{content_type.pk}:{target_pk}:{threshold}"),
                    }
                )
    for event, created in store_events(specs):
        if created:
            transaction.on_commit(
                partial(
                    milestone_reached.send,
                    sender=Target,
                    target=event.target,
                    threshold=event.data["threshold"],
                    count=event.data["count"],
                    event=event,
                )
            )


# -- wiring -----------------------------------------------------------------------------


def _target_model() -> type[models.Model] | None:
    try:
        return get_target_model()
    except ImproperlyConfigured:
        return None  # the system checks report it


# -- real-time stream ---------------------------------------------------------------------


def publish_created(sender: Any, user_ids: list[Any] | None = None, **kwargs: Any) -> None:
    """``feed_items_created`` -> a note to the stream processes (None: a queryset fan-out)."""
    publish_users(user_ids)


def publish_read(sender: Any, user: Any = None, **kwargs: Any) -> None:
    """``feed_items_read`` -> a note so the reader's open streams send the new unread count."""
    publish_users([getattr(user, "pk", user)])


def connect_receivers() -> None:
    """Connect the default receivers enabled in ``ENGAGEMENT['TRACK']``.

    Called from ``ready()``: models are loaded, and nothing here queries the database.
    """
    track = engagement_settings.TRACK
    if track.get("login"):
        user_logged_in.connect(track_login, dispatch_uid="django_engagement.track_login")
    if track.get("logout"):
        user_logged_out.connect(track_logout, dispatch_uid="django_engagement.track_logout")
    if track.get("signup"):
        post_save.connect(
            track_signup, sender=get_user_model(), dispatch_uid="django_engagement.track_signup"
        )
    Target = _target_model()
    if Target is not None and track.get("target_lifecycle"):
        pre_save.connect(
            snapshot_target, sender=Target, dispatch_uid="django_engagement.snapshot_target"
        )
        post_save.connect(
            track_target_saved, sender=Target, dispatch_uid="django_engagement.track_target_saved"
        )
    feed_items_created.connect(publish_created, dispatch_uid="django_engagement.publish_created")
    feed_items_read.connect(publish_read, dispatch_uid="django_engagement.publish_read")
    relation = membership_relation()
    if relation is not None and track.get("membership"):
        m2m_changed.connect(
            track_membership,
            sender=relation.through,
            dispatch_uid="django_engagement.track_membership",
        )


def disconnect_receivers() -> None:
    """Disconnect every package receiver (e.g. for a bulk import that should record nothing)."""
    Target, relation = _target_model(), membership_relation()
    user_logged_in.disconnect(dispatch_uid="django_engagement.track_login")
    user_logged_out.disconnect(dispatch_uid="django_engagement.track_logout")
    post_save.disconnect(sender=get_user_model(), dispatch_uid="django_engagement.track_signup")
    for signal, uid in (
        (pre_save, "django_engagement.snapshot_target"),
        (post_save, "django_engagement.track_target_saved"),
    ):
        signal.disconnect(sender=Target, dispatch_uid=uid)
    feed_items_created.disconnect(dispatch_uid="django_engagement.publish_created")
    feed_items_read.disconnect(dispatch_uid="django_engagement.publish_read")
    if relation is not None:
        m2m_changed.disconnect(
            sender=relation.through, dispatch_uid="django_engagement.track_membership"
        )
