"""The activity feed: fan-out from events, ``notify``, summaries, read state, populate.

Usage::

    from django_engagement import notify, feed_summary

    notify(course.students.all(), "reminder", title=f"{course} starts tomorrow", target=course)
    feed_summary(request.user)

Feed items are written with set-based SQL only: ``INSERT ... SELECT`` from the
recipients' query, or multi-row ``INSERT ... VALUES``, both skipping rows the
unique (user, event, activity_type) constraint already holds. That makes every
write idempotent (Celery retries, ``populate_activity_feeds`` re-runs) and lets
the database report exactly how many items are new.

With ``ASYNC_FEED`` the fan-out goes through an outbox (``PendingFanOut``): a row
written with the event and deleted with its feed items, so a fan-out the broker
or a worker lost is found and finished by ``flush_pending_fan_out``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import EmptyResultSet, ImproperlyConfigured
from django.db import connections, models, router, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.constants import OnConflict
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone

from ..conf import MILESTONE_EVENT, TARGET_CREATED_EVENT, TARGET_STARTED_EVENT, engagement_settings
from ..models import (
    AbstractActivityFeedItem,
    AbstractEvent,
    PendingFanOut,
    get_event_model,
    get_feed_model,
    get_target_model,
)
from ..signals import fan_out_requested, feed_items_created, feed_items_read
from . import unread
from .analytics import pk_json
from .email import queue_item_emails
from .grouping import (
    Grouping,
    actor_entry,
    close_expired,
    fold_into_latest,
    grouping_for,
    grouping_table,
    open_group,
    start_group,
    upsert_suffix,
)
from .preferences import over_limit, receiving

logger = logging.getLogger(__name__)

ACTOR = "actor"
PARTICIPANTS = "participants"
RECIPIENTS = (ACTOR, PARTICIPANTS)

# Rows per multi-row INSERT and ids per ``pk IN (...)``: well under SQLite's
# 32,766 bound parameters, and small enough to keep statements fast.
INSERT_BATCH_SIZE = 500
RECIPIENT_CHUNK_SIZE = 2000
# Events per sweeper transaction: each may be an INSERT ... SELECT over a whole target.
SWEEP_BATCH_SIZE = 100


@dataclass(frozen=True)
class FeedRule:
    """Which feed item an event creates: ``activity_type`` for ``recipients``.

    ``recipients`` is ``"actor"`` (the event's user) or ``"participants"`` (every
    user of the event's target, via ``TARGET_PARTICIPANTS``). ``title`` and
    ``description`` are ``str.format`` templates with ``{target}``, ``{actor}``
    (the event's user), ``{event_type}`` and ``{data[key]}`` (missing keys render
    empty).
    """

    activity_type: str
    recipients: str = ACTOR
    title: str = ""
    description: str = ""

    @classmethod
    def from_setting(cls, event_type: str, value: Any) -> FeedRule:
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict) or not value.get("activity_type"):
            raise ImproperlyConfigured(
                f"ENGAGEMENT FEED_RULES[{event_type!r}] must be a dict with an 'activity_type', "
                f"got {value!r}."
            )
        unknown = set(value) - {"activity_type", "recipients", "title", "description"}
        recipients = value.get("recipients", ACTOR)
        if unknown or recipients not in RECIPIENTS:
            raise ImproperlyConfigured(
                f"ENGAGEMENT FEED_RULES[{event_type!r}] is invalid: keys are activity_type, "
                f"recipients ({' or '.join(RECIPIENTS)}), title and description."
            )
        return cls(**value)


def default_feed_rules() -> dict[str, FeedRule]:
    """The built-in rules, keyed by the event codes in use when they are read.

    ``JOIN_EVENT`` and ``LEAVE_EVENT`` are read on every call, so a host that renames
    them keeps the join and leave items without restating the rules.
    """
    return {
        engagement_settings.JOIN_EVENT: FeedRule("target_join", ACTOR, "You joined {target}"),
        engagement_settings.LEAVE_EVENT: FeedRule("target_leave", ACTOR, "You left {target}"),
        MILESTONE_EVENT: FeedRule(
            "milestone", PARTICIPANTS, "{target} reached {data[threshold]} participants"
        ),
        TARGET_CREATED_EVENT: FeedRule("target_start", PARTICIPANTS, "{target} has started"),
        TARGET_STARTED_EVENT: FeedRule("target_start", PARTICIPANTS, "{target} has started"),
    }


def feed_rule_table() -> dict[str, FeedRule] | None:
    """``event_type -> FeedRule``: the defaults with ``FEED_RULES`` merged over them.

    A ``None`` value in the setting removes a default rule. Returns None when
    ``FEED_RULES`` is a callable, which decides per event instead.
    """
    setting = engagement_settings.FEED_RULES
    if callable(setting):
        return None
    rules = default_feed_rules()
    for event_type, value in (setting or {}).items():
        if value is None:
            rules.pop(event_type, None)
        else:
            rules[event_type] = FeedRule.from_setting(event_type, value)
    return rules


def rules_for(event: AbstractEvent, table: dict[str, FeedRule] | None) -> list[FeedRule]:
    """The rules that apply to ``event``: from the table, or from the ``FEED_RULES`` callable.

    The callable has the signature ``rules(event) -> Iterable[dict | FeedRule]``.
    """
    if table is not None:
        rule = table.get(event.event_type)
        return [rule] if rule else []
    rules: Callable[[AbstractEvent], Iterable[Any]] = engagement_settings.FEED_RULES
    return [FeedRule.from_setting(event.event_type, value) for value in rules(event) or ()]


def participants_queryset(target: models.Model | None) -> models.QuerySet | None:
    """The users of ``target`` through ``TARGET_PARTICIPANTS``, or None when not configured.

    A subquery, not a list: ``notify`` turns it into one ``INSERT ... SELECT``.
    """
    Target = get_target_model()
    path = engagement_settings.TARGET_PARTICIPANTS
    if Target is None or not path or not isinstance(target, Target):
        return None
    member_ids = Target._default_manager.filter(pk=target.pk).values(path)
    return get_user_model()._default_manager.filter(pk__in=member_ids)


def participants_at(target: models.Model | None, when: datetime) -> models.QuerySet | None:
    """The users who were participants of ``target`` at ``when``, as the history tells.

    The membership history is the target's ``JOIN_EVENT``/``LEAVE_EVENT`` events: a
    user whose last such event at or before ``when`` is a join was a participant,
    one whose last is a leave was not. A current participant with no event until
    ``when`` counts unless their next event is a join (they joined later); a current
    participant with no history at all counts (nothing says otherwise). One
    subquery-annotated SELECT, so ``notify`` still writes with one statement.
    """
    current = participants_queryset(target)
    if current is None or target is None:
        return None
    join, leave = engagement_settings.JOIN_EVENT, engagement_settings.LEAVE_EVENT
    history = (
        get_event_model()
        ._default_manager.for_target(target)
        .filter(event_type__in=[join, leave])
        .order_by()
    )
    mine = history.filter(user=OuterRef("pk"))
    before = mine.filter(created_at__lte=when).order_by("-created_at", "-pk")
    after = mine.filter(created_at__gt=when).order_by("created_at", "pk")
    current_ids = current.values("pk")
    return (
        get_user_model()
        ._default_manager.filter(Q(pk__in=current_ids) | Q(pk__in=history.values("user")))
        .annotate(
            engagement_before=Subquery(before.values("event_type")[:1]),
            engagement_after=Subquery(after.values("event_type")[:1]),
        )
        .filter(
            Q(engagement_before=join)
            | Q(
                Q(engagement_after__isnull=True) | ~Q(engagement_after=join),
                engagement_before__isnull=True,
                pk__in=current_ids,
            )
        )
    )


# -- SQL helpers ------------------------------------------------------------------------


def _insert_fields(Feed: type[models.Model]) -> list[models.Field]:
    """Every concrete column of the (possibly swapped) feed model except an auto pk."""
    pk = Feed._meta.pk
    return [
        field
        for field in Feed._meta.concrete_fields
        if not (field is pk and isinstance(field, AutoFieldMixin)) and not field.generated
    ]


def _db_values(item: models.Model, fields: Sequence[models.Field], connection) -> list[Any]:
    return [field.get_db_prep_save(field.pre_save(item, True), connection) for field in fields]


def _placeholder(field: models.Field, connection) -> str:
    # A bare parameter in a SELECT list has no type on PostgreSQL (NULL would be text);
    # SQLite needs none, and CAST there would change values through type affinity.
    if connection.vendor == "postgresql":
        return f"CAST(%s AS {field.cast_db_type(connection)})"
    return "%s"


def _insert_sql(
    Feed: type[models.Model], fields: Sequence[models.Field], connection, *, ignore: bool = True
) -> str:
    """``INSERT INTO feed (...)``; with ``ignore``, the backend's way to skip conflicts
    (SQLite's ``INSERT OR IGNORE``; PostgreSQL's comes in ``_conflict_suffix``)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    insert = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE if ignore else None)
    return f"{insert} {quote(Feed._meta.db_table)} ({columns})"


def _conflict_suffix(fields: Sequence[models.Field], connection) -> str:
    return connection.ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)


def _may_conflict(template: models.Model) -> bool:
    """Whether copies of ``template`` can hit a unique constraint: once-per-event when
    it has an event, the open group when it has a group key, or any other constraint a
    swapped model adds.

    When none can, the INSERT goes without ``ON CONFLICT DO NOTHING``, whose
    speculative insertion costs about a fifth of a 50,000-row fan-out.
    """
    # The package's own partial constraints, and when a copy cannot match them.
    cannot_match = {
        ("user", "event", "activity_type"): getattr(template, "event_id", None) is None,
        ("group_key", "user"): not getattr(template, "group_key", ""),
    }
    meta = template._meta
    if meta.unique_together:
        return True
    if any(field.unique and not field.primary_key for field in meta.concrete_fields):
        return True
    return any(
        isinstance(constraint, models.UniqueConstraint)
        and not cannot_match.get(tuple(constraint.fields), False)
        for constraint in meta.constraints
    )


def _insert_select(template: models.Model, recipients: models.QuerySet) -> int:
    """One ``INSERT ... SELECT``: a copy of ``template`` per user of ``recipients``."""
    Feed = type(template)
    using = router.db_for_write(Feed)
    connection = connections[using]
    fields = _insert_fields(Feed)
    user_field = Feed._meta.get_field("user")
    # An explicit alias, so the outer SELECT can name the column whatever the user pk is.
    alias = "engagement_recipient"
    try:
        select_sql, select_params = (
            recipients.order_by().values(**{alias: F("pk")}).query.sql_with_params()
        )
    except EmptyResultSet:  # ``none()``, ``pk__in=[]``: nobody to notify, no statement to run
        return 0
    values = dict(zip(fields, _db_values(template, fields, connection), strict=True))
    select_list, params = [], []
    for field in fields:
        if field is user_field:
            select_list.append(f"recipients.{connection.ops.quote_name(alias)}")
        else:
            select_list.append(_placeholder(field, connection))
            params.append(values[field])
    ignore = _may_conflict(template)
    sql = (
        f"{_insert_sql(Feed, fields, connection, ignore=ignore)} SELECT {', '.join(select_list)} "
        f"FROM ({select_sql}) recipients"
    )
    if ignore:
        sql = f"{sql} {_conflict_suffix(fields, connection)}"
    # The recipients' unread counters rise by the rows really inserted, in this statement.
    return unread.counted_write(sql, [*params, *select_params], delta=1, using=using)


def _upsert_select(
    template: AbstractActivityFeedItem,
    recipients: models.QuerySet,
    grouping: Grouping,
    *,
    actor: dict[str, Any] | None,
    target_name: str,
) -> list[Any]:
    """Grouped ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``: new items and folds.

    Returns the users whose item is new; the others had an open group, which now
    counts one more item (``services.grouping.upsert_suffix``). Recipients go in
    primary-key order, so concurrent fan-outs lock their rows in the same order.
    """
    Feed = type(template)
    connection = connections[router.db_for_write(Feed)]
    fields = _insert_fields(Feed)
    user_field = Feed._meta.get_field("user")
    quote = connection.ops.quote_name
    alias = "engagement_recipient"
    try:
        select_sql, select_params = (
            recipients.order_by().values(**{alias: F("pk")}).query.sql_with_params()
        )
    except EmptyResultSet:
        return []
    values = dict(zip(fields, _db_values(template, fields, connection), strict=True))
    select_list, params = [], []
    for field in fields:
        if field is user_field:
            select_list.append(f"recipients.{quote(alias)}")
        else:
            select_list.append(_placeholder(field, connection))
            params.append(values[field])
    suffix, suffix_params = upsert_suffix(
        template, grouping, connection, actor=actor, target_name=target_name
    )
    columns = ", ".join(quote(cast(str, field.column)) for field in fields)
    # WHERE 1 = 1: SQLite would read ``ON CONFLICT`` as a join constraint without it.
    sql = (
        f"INSERT INTO {quote(Feed._meta.db_table)} ({columns}) SELECT {', '.join(select_list)} "
        f"FROM ({select_sql}) recipients WHERE 1 = 1 ORDER BY recipients.{quote(alias)} {suffix}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *select_params, *suffix_params])
        return [user_id for user_id, count in cursor.fetchall() if count == 1]


def _insert_rows(items: Sequence[models.Model]) -> int:
    """Multi-row ``INSERT ... VALUES`` of unsaved items, skipping conflicts; returns new rows."""
    Feed = type(items[0])
    using = router.db_for_write(Feed)
    connection = connections[using]
    fields = _insert_fields(Feed)
    row = "(" + ", ".join(_placeholder(field, connection) for field in fields) + ")"
    created = 0
    for start in range(0, len(items), INSERT_BATCH_SIZE):
        batch = items[start : start + INSERT_BATCH_SIZE]
        params = [value for item in batch for value in _db_values(item, fields, connection)]
        created += unread.counted_write(
            f"{_insert_sql(Feed, fields, connection)} VALUES {', '.join([row] * len(batch))} "
            f"{_conflict_suffix(fields, connection)}",
            params,
            delta=1,
            using=using,
        )
    return created


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _send_created(Feed, activity_type: str, count: int, user_ids, event) -> None:
    if count:
        transaction.on_commit(
            lambda: feed_items_created.send(
                sender=Feed,
                activity_type=activity_type,
                count=count,
                user_ids=user_ids,
                event=event,
            ),
            using=router.db_for_write(Feed),
        )


# -- notify and fan-out -----------------------------------------------------------------


def _feed_item(
    Feed: type[AbstractActivityFeedItem],
    activity_type: str,
    *,
    title: str,
    description: str = "",
    target: models.Model | None = None,
    event: AbstractEvent | None = None,
    data: dict[str, Any] | None = None,
    user_id: Any = None,
    created_at: datetime | None = None,
    actor: Any = None,
) -> AbstractActivityFeedItem:
    """An unsaved item; of a ``FEED_GROUPING`` type, the first of its group (by ``actor``)."""
    item = Feed(
        user_id=user_id,
        activity_type=activity_type,
        title=title,
        description=description,
        data=data or {},
    )
    if created_at is not None:
        item.created_at = created_at
    if event is not None:
        item.event_id = event.pk
    if target is not None:
        item.target_content_type = ContentType.objects.get_for_model(target)
        item.target_object_id = str(target.pk)
    grouping = grouping_for(activity_type)
    if grouping is not None:
        start_group(item, grouping, actor_entry(actor))
    return item


def notify(
    recipients: models.QuerySet | Iterable[Any],
    activity_type: str,
    *,
    title: str,
    description: str = "",
    target: models.Model | None = None,
    event: AbstractEvent | None = None,
    data: dict[str, Any] | None = None,
    actor: Any = None,
) -> int:
    """Put one feed item in each recipient's feed; returns how many were created.

    ``recipients`` is a queryset of users (one ``INSERT ... SELECT``, however many
    users) or an iterable of users or user ids (chunks of ``pk IN (...)`` through
    the same statement, so unknown ids are skipped instead of failing). With
    ``event``, users who already have this (event, activity_type) item are skipped.
    An empty queryset (``none()``, ``pk__in=[]``) or iterable creates nothing and
    returns 0.

    Of a ``FEED_GROUPING`` type, the item folds into each recipient's open group
    instead (not counted as created); ``actor`` (default: the event's user) is
    the user named in the group's ``data["actors"]`` and title.
    """
    if actor is None and event is not None and event.user_id is not None:
        actor = event.user
    template = _feed_item(
        get_feed_model(),
        activity_type,
        title=title,
        description=description,
        target=target,
        event=event,
        data=data,
        actor=actor,
    )
    return _deliver(template, recipients, event, target=target)


def _deliver(
    template: AbstractActivityFeedItem,
    recipients: models.QuerySet | Iterable[Any],
    event: AbstractEvent | None,
    *,
    email: bool = True,
    preferences: bool = True,
    target: models.Model | None = None,
) -> int:
    """``notify``'s writes: a copy of ``template`` for each recipient, then the signal.

    ``email=False`` (backfills) queues no emails: past items are not news.
    ``preferences=False`` (actor items) writes without looking at preferences and
    flood limits. A grouped ``template`` (``group_key`` set) folds into open groups;
    over a ``"fold"`` flood limit, the item is counted in the latest unread item.
    """
    Feed = type(template)
    activity_type = template.activity_type
    grouping = grouping_for(activity_type) if template.group_key else None
    if isinstance(recipients, models.QuerySet):
        user_ids = None
        batches: Iterable[models.QuerySet] = [recipients]
    else:
        user_ids = [getattr(user, "pk", user) for user in recipients]
        users = get_user_model()._default_manager
        batches = (users.filter(pk__in=chunk) for chunk in _chunks(user_ids, RECIPIENT_CHUNK_SIZE))
    count = 0
    new_users: list[Any] = []
    # savepoint=False: one statement for a queryset; chunks must all land or none.
    with transaction.atomic(using=router.db_for_write(Feed), savepoint=False):
        if grouping is not None:
            close_expired(template, grouping)
        for batch in batches:
            exempt = open_group(template) if grouping is not None else None
            if preferences:
                # Before the insert: the flood counts must not see this fan-out's rows.
                over = over_limit(batch, template, exempt=exempt)
                if over is not None:
                    fold_into_latest(template, over)
                batch = receiving(batch, template, exempt=exempt)
            if grouping is None:
                count += _insert_select(template, batch)
                continue
            if template.event_id is not None:
                # The plain INSERT skips these through the once-per-event constraint; the
                # upsert would fold into their group or, read, violate the constraint.
                batch = batch.exclude(
                    Exists(
                        Feed._default_manager.filter(
                            user=OuterRef("pk"),
                            event_id=template.event_id,
                            activity_type=activity_type,
                        )
                    )
                )
            new = _upsert_select(
                template,
                batch,
                grouping,
                actor=(template.data.get("actors") or [None])[-1],
                target_name="" if target is None else str(target),
            )
            # Only new items raise the badge; a fold adds to an item already unread.
            unread.add_unread(dict.fromkeys(new, 1), using=router.db_for_write(Feed))
            count += len(new)
            new_users += new
        if grouping is not None:
            user_ids = sorted(new_users)
        if count and email:
            queue_item_emails(copies_of(template), activity_type)
        _send_created(Feed, activity_type, count, user_ids, event)
    return count


def copies_of(template: AbstractActivityFeedItem) -> models.QuerySet:
    """The items ``_insert_select`` wrote from ``template`` (same type, time, event, target)."""
    event = Q(event__isnull=True) if template.event_id is None else Q(event_id=template.event_id)
    return type(template)._default_manager.filter(
        event,
        activity_type=template.activity_type,
        created_at=template.created_at,
        target_content_type_id=template.target_content_type_id,
        target_object_id=template.target_object_id,
    )


class _Blank(dict):
    """Format context where a missing key renders as an empty string."""

    def __missing__(self, key: str) -> str:
        return ""


def _render(rule: FeedRule, event: AbstractEvent) -> tuple[str, str, dict[str, Any]]:
    """Title, description and data of ``event``'s item; the target comes from the cache."""
    target = event.target if event.target_content_type_id else None
    data = dict(event.data)
    if target is not None:
        name = target._meta.model_name
        data.update({f"{name}_id": pk_json(target.pk), f"{name}_name": str(target)})
    context = _Blank(
        target="" if target is None else target,
        event_type=event.event_type,
        data=_Blank(event.data),
    )
    if "{actor" in rule.title + rule.description and event.user_id is not None:
        context["actor"] = event.user  # a query, only for templates that name the actor
    return rule.title.format_map(context), rule.description.format_map(context), data


def fan_out(
    events: Sequence[AbstractEvent],
    *,
    user: Any = None,
    backfill: bool = False,
    done: Container[Any] = (),
) -> int:
    """Create the feed items ``FEED_RULES`` asks for; returns how many are new.

    Actor items of the whole batch go in multi-row INSERTs (one per activity
    type), participant items in one ``INSERT ... SELECT`` per event. Safe to run
    twice. ``user`` limits the items to that one recipient (``populate_feed``).
    ``backfill`` (``populate_feed``) dates each item at its event's time and sends
    participant items to the participants of that time (``participants_at``).
    Targets should be loaded (``prefetch_related("target")``) to avoid a query each.

    Items of ``FEED_GROUPING`` types fold into open groups, which a second run
    would count twice: they are written by the first fan-out of an event only, and
    skipped by backfills and for the events in ``done`` (fanned out before).
    """
    Feed = get_feed_model()
    table = feed_rule_table()
    grouped = grouping_table()
    actor_items: dict[str, list[AbstractActivityFeedItem]] = defaultdict(list)
    actor_events: dict[str, list[AbstractEvent]] = defaultdict(list)
    created = 0
    user_pk = getattr(user, "pk", user)
    for event in events:
        for rule in rules_for(event, table):
            is_grouped = rule.activity_type in grouped
            if is_grouped and (backfill or event.pk in done):
                continue
            title, description, data = _render(rule, event)
            target = event.target if event.target_content_type_id else None
            created_at = event.created_at if backfill else None
            actor = event.user if is_grouped and event.user_id is not None else None
            if rule.recipients == PARTICIPANTS:
                if backfill:
                    recipients = participants_at(target, event.created_at)
                else:
                    recipients = participants_queryset(target)
                if recipients is None:
                    continue
                if user_pk is not None:
                    recipients = recipients.filter(pk=user_pk)
                template = _feed_item(
                    Feed,
                    rule.activity_type,
                    title=title,
                    description=description,
                    target=target,
                    event=event,
                    data=data,
                    created_at=created_at,
                    actor=actor,
                )
                created += _deliver(template, recipients, event, email=not backfill, target=target)
            elif is_grouped and event.user_id is not None and user_pk in (None, event.user_id):
                # A grouped actor item folds like any other: its own upsert, no preferences.
                template = _feed_item(
                    Feed,
                    rule.activity_type,
                    title=title,
                    description=description,
                    target=target,
                    event=event,
                    data=data,
                    actor=actor,
                )
                only_actor = get_user_model()._default_manager.filter(pk=event.user_id)
                created += _deliver(
                    template, only_actor, event, email=False, preferences=False, target=target
                )
            elif event.user_id is not None and user_pk in (None, event.user_id):
                actor_events[rule.activity_type].append(event)
                actor_items[rule.activity_type].append(
                    _feed_item(
                        Feed,
                        rule.activity_type,
                        title=title,
                        description=description,
                        target=target,
                        event=event,
                        data=data,
                        user_id=event.user_id,
                        created_at=created_at,
                    )
                )
    if actor_items:
        with transaction.atomic(using=router.db_for_write(Feed), savepoint=False):
            for activity_type, items in actor_items.items():
                count = _insert_rows(items)
                created += count
                sources = actor_events[activity_type]
                _send_created(
                    Feed,
                    activity_type,
                    count,
                    sorted({item.user_id for item in items}),
                    sources[0] if len(sources) == 1 else None,
                )
    return created


def _pending_event_ids(events: Sequence[AbstractEvent]) -> list[Any]:
    """Primary keys of ``events`` that a feed rule may match (all of them for a callable)."""
    table = feed_rule_table()
    return [event.pk for event in events if table is None or event.event_type in table]


def enqueue_fan_out(event_ids: list[Any]) -> bool:
    """Hand ``event_ids`` to the task queue (``fan_out_requested``); errors are logged, not raised.

    Runs after commit, when the events and their outbox rows are stored: an
    exception here would turn a stored event into a 500 for the client. The
    outbox row keeps the work for ``flush_pending_fan_out``. The services never
    import the Celery tasks: ``tasks.queue_fan_out`` listens to the signal.
    """
    try:
        receivers = fan_out_requested.send(sender=PendingFanOut, event_ids=event_ids)
    except Exception:
        logger.warning(
            "Could not queue the feed fan-out of %d event(s) (first id %s); it stays pending "
            "until flush_pending_fan_out runs.",
            len(event_ids),
            event_ids[0],
            exc_info=True,
        )
        return False
    if not receivers:
        logger.warning(
            "Nothing listens to fan_out_requested (is the [celery] extra installed?): the "
            "feed fan-out of %d event(s) (first id %s) stays pending until "
            "flush_pending_fan_out runs.",
            len(event_ids),
            event_ids[0],
        )
        return False
    return True


def schedule_fan_out(events: Sequence[AbstractEvent]) -> None:
    """Run fan-out for newly stored events: now, or after commit in Celery (``ASYNC_FEED``).

    Asynchronously, each event a rule may match gets an outbox row in the caller's
    transaction (the one that stores the event), so the fan-out is owed durably
    before the task is even queued.
    """
    if not engagement_settings.ASYNC_FEED:
        fan_out(events)
        return
    event_ids = _pending_event_ids(events)
    if event_ids:
        PendingFanOut._default_manager.bulk_create([PendingFanOut(event_id=pk) for pk in event_ids])
        transaction.on_commit(
            lambda: enqueue_fan_out(event_ids), using=router.db_for_write(PendingFanOut)
        )


def reschedule_pending(events: Sequence[AbstractEvent]) -> None:
    """Replayed events (a repeated idempotency key) finish a fan-out that is still pending.

    The original request may have stored the event while the broker was down: the
    client's retry queues the task again (or, with ``ASYNC_FEED`` off, runs it now).
    """
    candidates = _pending_event_ids(events)
    if not candidates:
        return
    pending = list(
        PendingFanOut._default_manager.filter(event_id__in=candidates)
        .order_by("event_id")
        .values_list("event_id", flat=True)
    )
    if not pending:
        return
    if engagement_settings.ASYNC_FEED:
        transaction.on_commit(
            lambda: enqueue_fan_out(pending), using=router.db_for_write(PendingFanOut)
        )
    else:
        fan_out_event_ids(pending)


def _lock(queryset: models.QuerySet, *, skip_locked: bool) -> models.QuerySet:
    """``SELECT ... FOR UPDATE`` where the database has it (SQLite serialises writers anyway)."""
    features = connections[queryset.db].features
    if not features.has_select_for_update:
        return queryset
    return queryset.select_for_update(
        skip_locked=skip_locked and features.has_select_for_update_skip_locked
    )


def _fan_out_locked(event_ids: list[Any], locked: Container[Any] | None = None) -> int:
    """Fan out events whose outbox rows the caller has locked, then delete those rows.

    ``locked`` (default: all of ``event_ids``) are the events that still had a row;
    the others were fanned out before, so their grouped items are not folded again.
    """
    events = list(
        get_event_model()
        ._default_manager.filter(pk__in=event_ids)
        .order_by("pk")
        .prefetch_related("target")
    )
    done = () if locked is None else {event.pk for event in events if event.pk not in locked}
    created = fan_out(events, done=done)
    PendingFanOut._default_manager.filter(event_id__in=event_ids).delete()
    return created


def fan_out_event_ids(event_ids: Iterable[Any]) -> int:
    """Fan out stored events by primary key (what the Celery task runs); returns new items.

    Their outbox rows are locked first, waiting for a sweeper (or an earlier
    delivery of the same task) that holds them, then the items are inserted and
    the rows deleted in one transaction. Idempotent: a redelivered task inserts
    nothing new.
    """
    ids = sorted(set(event_ids))
    if not ids:
        return 0
    using = router.db_for_write(PendingFanOut)
    with transaction.atomic(using=using):
        pending = PendingFanOut._default_manager.using(using).filter(event_id__in=ids)
        # In pk order, so two tasks never wait on each other. Events without a row
        # were fanned out before (a redelivery): their grouped items are not folded again.
        locked = set(
            _lock(pending.order_by("event_id"), skip_locked=False).values_list(
                "event_id", flat=True
            )
        )
        return _fan_out_locked(ids, locked)


@dataclass(frozen=True)
class FlushResult:
    """What ``flush_pending_fan_out`` did: events fanned out and feed items created.

    With ``dry_run``, ``events`` is how many are pending and nothing is written.
    """

    events: int
    created_count: int


def flush_pending_fan_out(
    *,
    older_than: timedelta | None = None,
    batch_size: int = SWEEP_BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Callable[[str, int], None] | None = None,
) -> FlushResult:
    """Finish every pending fan-out (the outbox sweeper); safe next to running workers.

    Pending rows older than ``older_than`` (all with None) are taken in primary-key
    batches, each locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (rows a task
    holds are left to it), fanned out and deleted in one transaction. Feed inserts
    skip existing items, so a row that a worker also runs costs time, not duplicates.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    using = router.db_for_write(PendingFanOut)
    pending = PendingFanOut._default_manager.using(using).order_by("event_id")
    if older_than is not None:
        pending = pending.filter(created_at__lt=timezone.now() - older_than)
    if dry_run:
        return FlushResult(events=pending.count(), created_count=0)
    events = created = 0
    last_id = None
    while True:
        page = pending if last_id is None else pending.filter(event_id__gt=last_id)
        with transaction.atomic(using=using):
            locked = _lock(page, skip_locked=True).values_list("event_id", flat=True)
            ids = list(locked[:batch_size])
            if not ids:
                break
            created += _fan_out_locked(ids)
        events += len(ids)
        last_id = ids[-1]
        if on_batch is not None:
            on_batch("events", events)
    return FlushResult(events=events, created_count=created)


# -- reading ----------------------------------------------------------------------------


def feed_summary(user: Any) -> dict[str, Any]:
    """Counts by read state and type, plus the 5 newest items (instances): two queries.

    The unread count is the user's counter row (``services/unread.py``), read as a
    subquery of the per-type count, so read state costs no scan of the items.

    ``recent_activity`` holds feed item instances with their content types loaded;
    ``django_engagement.api.serializers.serialize_feed_item`` turns one into the API's JSON.

    An anonymous user (``AnonymousUser``, or any user without a primary key) has
    an empty feed: the empty summary, without a query, so a template tag or a
    page shown to visitors can call it unconditionally.
    """
    if not getattr(user, "is_authenticated", True) or getattr(user, "pk", user) is None:
        return {
            "total_items": 0,
            "unread_count": 0,
            "read_count": 0,
            "activity_types": {},
            "recent_activity": [],
        }
    items = get_feed_model()._default_manager.for_user(user)
    # The badge is the user's counter row (services/unread.py), read by the same query.
    counts = list(
        items.order_by()
        .values("activity_type")
        .annotate(count=Count("pk"), engagement_unread=unread.unread_subquery(user))
    )
    by_type = {row["activity_type"]: row["count"] for row in counts}
    total = sum(by_type.values())
    unread_count = min(max(counts[0]["engagement_unread"] or 0, 0), total) if counts else 0
    recent = items.select_related("target_content_type")[:5]
    return {
        "total_items": total,
        "unread_count": unread_count,
        "read_count": total - unread_count,
        "activity_types": dict(sorted(by_type.items(), key=lambda pair: (-pair[1], pair[0]))),
        "recent_activity": list(recent),
    }


def mark_read(user: Any, *, ids: Iterable[int] | None = None) -> int:
    """Mark ``user``'s unread items (all, or only ``ids``) read in one UPDATE.

    Ids of other users' items are silently left alone and not counted.
    """
    Feed = get_feed_model()
    ids = None if ids is None else list(ids)
    count = Feed._default_manager.for_user(user).mark_read(ids)
    if count:
        transaction.on_commit(
            lambda: feed_items_read.send(sender=Feed, user=user, count=count, ids=ids),
            using=router.db_for_write(Feed),
        )
    return count


# -- populate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PopulateResult:
    """What ``populate_feed`` did (or, with ``dry_run``, would do)."""

    created_count: int
    start: datetime
    end: datetime


def populate_feed(
    *,
    user: Any = None,
    days_back: int = 30,
    dry_run: bool = False,
    batch_size: int = 1000,
    on_batch: Callable[[str, int], None] | None = None,
) -> PopulateResult:
    """Build feed items from the last ``days_back`` days of events, per ``FEED_RULES``.

    A backfill shows the past as it was: each item is dated at its event's time
    (``created_at``) and participant items go only to the users who were
    participants then (``participants_at``), not to today's.
    Idempotent: items that exist are skipped by the unique constraint, and the
    count is what the database really inserted. Events are read in primary-key
    batches, each written in its own transaction; ``dry_run`` rolls each batch back,
    so its count is exact. ``on_batch("events", done)`` reports progress.
    """
    if days_back < 1:
        raise ValueError("days_back must be at least 1.")
    end = timezone.now()
    start = end - timedelta(days=days_back)
    events = get_event_model()._default_manager.between(start, end).order_by("pk")
    table = feed_rule_table()
    if table is not None:
        events = events.filter(event_type__in=list(table))
        if user is not None:
            shared = [key for key, rule in table.items() if rule.recipients == PARTICIPANTS]
            events = events.filter(Q(user=user) | Q(event_type__in=shared))
    using = router.db_for_write(get_feed_model())
    created = done = 0
    last_pk = None
    while True:
        page = events if last_pk is None else events.filter(pk__gt=last_pk)
        batch = list(page.prefetch_related("target")[:batch_size])
        if not batch:
            break
        with transaction.atomic(using=using):
            created += fan_out(batch, user=user, backfill=True)
            if dry_run:
                transaction.set_rollback(True, using=using)
        last_pk = batch[-1].pk
        done += len(batch)
        if on_batch is not None:
            on_batch("events", done)
    return PopulateResult(created_count=created, start=start, end=end)
