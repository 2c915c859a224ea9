"""Abstract bases a host project may subclass to swap the event or feed model.

Swap at project start only (before the first ``migrate``); see
docs/guide/swapping.md.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router, transaction
from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import gettext_lazy as _

from ..conf import engagement_settings
from ..managers import EventManager, FeedManager, unread_counters


def on_user_delete(collector, field, sub_objs, using) -> None:
    """``on_delete`` handler for ``Event.user`` following ``ON_USER_DELETE``.

    ``"delete"`` removes the user's events; ``"anonymize"`` keeps them with
    ``user`` and ``idempotency_key`` set to NULL: the key was unique within the
    user's scope only, and would collide in the anonymous one (nobody can retry
    it any more anyway).
    """
    if engagement_settings.ON_USER_DELETE == "anonymize":
        # Registered first, so the collector clears the keys before the users.
        key_field = field.model._meta.get_field("idempotency_key")
        collector.add_field_update(key_field, None, sub_objs)
        models.SET_NULL(collector, field, sub_objs, using)
    else:
        models.CASCADE(collector, field, sub_objs, using)


TARGET_LABEL_PLACEHOLDER = "{target_label}"


def activity_type_label(activity_type: str) -> str:
    """The display label of ``activity_type``, in the host's words.

    Every place that shows a label (the feed API, the admin) reads it here, from
    ``ACTIVITY_TYPES`` with ``{target_label}`` replaced by ``TARGET_LABEL``; a label
    that starts with the placeholder gets a capital first letter ("Course started").
    Types without a label read as their code in words: ``custom_thing`` -> "Custom thing".
    """
    template = engagement_settings.ACTIVITY_TYPES.get(activity_type)
    if not template:
        return activity_type.replace("_", " ").capitalize()
    label = template.replace(TARGET_LABEL_PLACEHOLDER, str(engagement_settings.TARGET_LABEL))
    if template.startswith(TARGET_LABEL_PLACEHOLDER):
        label = label[:1].upper() + label[1:]
    return label


def event_type_label(event_type: str) -> str:
    """The display label of ``event_type`` (the dashboard's word for a code).

    From ``EVENT_TYPE_LABELS`` with ``{target_label}`` replaced by ``TARGET_LABEL`` (a
    label that starts with the placeholder gets a capital first letter); other codes read
    as their code in words: ``page_view`` -> "Page view".
    """
    template = engagement_settings.EVENT_TYPE_LABELS.get(event_type)
    if not template:
        return event_type.replace("_", " ").capitalize()
    label = str(template).replace(TARGET_LABEL_PLACEHOLDER, str(engagement_settings.TARGET_LABEL))
    if str(template).startswith(TARGET_LABEL_PLACEHOLDER):
        label = label[:1].upper() + label[1:]
    return label


def target_type_field(*, db_index: bool = True) -> models.ForeignKey:
    """The content type half of a target; ``db_index=False`` where a composite index
    that starts with it already serves every lookup."""
    return models.ForeignKey(
        ContentType,
        verbose_name=_("target type"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=db_index,
    )


class TargetMixin(models.Model):
    """Generic pointer to any host model, with int or UUID primary keys.

    Not a foreign key to ``ENGAGEMENT_TARGET_MODEL`` on purpose: a host model
    frozen into this package's migrations would make ``makemigrations``
    write into site-packages.
    """

    target_content_type = target_type_field()
    target_object_id = models.CharField(_("target id"), max_length=64, blank=True, default="")
    target = GenericForeignKey("target_content_type", "target_object_id")

    class Meta:
        abstract = True

    @property
    def target_type(self) -> str | None:
        """``app_label.model`` of the target, e.g. ``courses.course``."""
        if self.target_content_type_id is None:
            return None
        content_type = ContentType.objects.get_for_id(self.target_content_type_id)
        return f"{content_type.app_label}.{content_type.model}"


class AbstractEvent(TargetMixin):
    """Something a user (or anonymous client, or the server) did.

    Fields: ``uuid`` (public id), ``event_type``, ``user``, ``anonymous_id``,
    ``source``, ``target`` (generic), ``title``, ``description``, ``data``
    (the payload), ``ip_address``, ``user_agent``, ``created_at`` (when it
    happened), ``received_at`` (when the server stored it) and
    ``idempotency_key`` (unique per client when set, so a retry stores nothing).
    """

    # No index of its own: (target_content_type, target_object_id, event_type) starts with it.
    target_content_type = target_type_field(db_index=False)
    #: Not a column: False on backfilled events that ``record_events`` stores without feed items.
    _engagement_fan_out: bool

    class Source(models.TextChoices):
        WEB = "web", "Web"
        ANDROID = "android", "Android"
        IOS = "ios", "iOS"
        KIOSK = "kiosk", "Kiosk"
        ADMIN = "admin", "Admin"
        SERVER = "server", "Server"

    uuid = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    event_type = models.CharField(_("event type"), max_length=64)
    # No index of its own: the (user, created_at) index serves every lookup by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=on_user_delete,
        related_name="+",
        db_index=False,
    )
    anonymous_id = models.CharField(_("anonymous id"), max_length=128, blank=True, default="")
    source = models.CharField(_("source"), max_length=16, default=Source.SERVER)
    title = models.CharField(_("title"), max_length=255, blank=True, default="")
    description = models.TextField(_("description"), blank=True, default="")
    data = models.JSONField(_("payload"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True, default="")
    created_at = models.DateTimeField(_("happened at"), default=timezone.now)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=128, null=True, blank=True, editable=False
    )

    objects = EventManager()

    class Meta:
        abstract = True
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["created_at"]),
            models.Index(fields=["event_type", "created_at"]),
            models.Index(fields=["user", "created_at"]),
            models.Index(fields=["anonymous_id"]),
            models.Index(fields=["target_content_type", "target_object_id", "event_type"]),
        ]
        constraints = [
            # Idempotency keys are scoped per client (docs/reliability.md): the
            # signed-in user, else the anonymous id (events with neither form the
            # server's scope). Two partial constraints, because NULL users are never
            # equal in a unique constraint on either database.
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False, user__isnull=False),
                name="%(app_label)s_%(class)s_idempotency_user",
            ),
            models.UniqueConstraint(
                fields=["anonymous_id", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False, user__isnull=True),
                name="%(app_label)s_%(class)s_idempotency_anon",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.created_at:%Y-%m-%d %H:%M}"


class AbstractActivityFeedItem(TargetMixin):
    """One entry in a user's activity feed, with read/unread state.

    Fields: ``user``, ``activity_type``, ``event`` (optional, kept NULL when
    the event is purged), ``target`` (generic), ``title``, ``description``,
    ``data``, ``is_read``, ``read_at``, ``created_at`` and ``group_key`` (set on
    items of a ``FEED_GROUPING`` type: while unread, later items of the same type
    and target fold into this one).
    """

    # No index of its own: the (user, -created_at) index serves every lookup by user.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    activity_type = models.CharField(_("activity type"), max_length=64)
    event = models.ForeignKey(
        engagement_settings.EVENT_MODEL,
        verbose_name=_("event"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    title = models.CharField(_("title"), max_length=255)
    description = models.TextField(_("description"), blank=True, default="")
    data = models.JSONField(_("data"), default=dict, blank=True)
    is_read = models.BooleanField(_("read"), default=False)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # db_default too: code that does not know the column (a raw INSERT, the previous
    # release during a rolling deploy) still writes rows.
    group_key = models.CharField(
        _("group key"), max_length=200, blank=True, default="", db_default="", editable=False
    )

    objects = FeedManager()

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        verbose_name = _("activity feed item")
        verbose_name_plural = _("activity feed items")
        # Justified query by query in docs/performance.md ("Indexes"). ``is_read`` is
        # only in the partial index's predicate: read items leave that index, and no
        # index keys on the flag (the unread list and badge never scan read rows).
        indexes = [
            # Feed pages of one user, newest first (and the user's rows on delete).
            models.Index(fields=["user", "-created_at"]),
            # Unread pages: only unread rows, so it stays small as items are read.
            models.Index(
                fields=["user", "-created_at"],
                condition=models.Q(is_read=False),
                name="%(class)s_unread_idx",
            ),
            # Retention: per-type cutoffs, then the global one.
            models.Index(fields=["activity_type", "created_at"]),
            models.Index(fields=["created_at"]),
            # Grouping: the open groups of one key that the window has closed.
            models.Index(
                fields=["group_key", "created_at"],
                condition=~models.Q(group_key="") & models.Q(is_read=False),
                name="%(class)s_group_idx",
            ),
        ]
        constraints = [
            # One item per user, event and activity type: fan-out and
            # populate_activity_feeds can insert with ignore_conflicts.
            models.UniqueConstraint(
                fields=["user", "event", "activity_type"],
                condition=models.Q(event__isnull=False),
                name="%(app_label)s_%(class)s_once_per_event",
            ),
            # Grouping: one open (unread) group item per user and key, the target
            # of the fan-out's INSERT ... ON CONFLICT DO UPDATE (services/grouping.py).
            models.UniqueConstraint(
                fields=["group_key", "user"],
                condition=~models.Q(group_key="") & models.Q(is_read=False),
                name="%(app_label)s_%(class)s_open_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.activity_type}: {self.title}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, moving the user's unread counter when the item's read state changes."""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "is_read" not in update_fields:
            super().save(*args, **kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            before = 0 if self._state.adding else self._stored_unread(using)
            super().save(*args, **kwargs)
            delta = int(not self.is_read) - before
            if delta:
                unread_counters().add({self.user_id: delta}, using=using)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Delete, lowering the user's unread counter when the item was unread."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            before = self._stored_unread(using)
            user_id = self.user_id
            deleted = super().delete(*args, **kwargs)
            if before:
                unread_counters().add({user_id: -before}, using=using)
            return deleted

    def _stored_unread(self, using: str) -> int:
        """1 when the stored row is unread, else 0 (no row: 0); locks it where possible."""
        if self.pk is None:
            return 0
        rows = type(self)._default_manager.using(using).filter(pk=self.pk)
        if connections[using].features.has_select_for_update:
            rows = rows.select_for_update()
        stored = rows.values_list("is_read", flat=True).first()
        return int(stored is False)

    @property
    def activity_type_display(self) -> str:
        return activity_type_label(self.activity_type)

    @property
    def age_display(self) -> str:
        """Short relative age for feed lists: ``just now``, ``5m ago``, ``2h ago``, ``3d ago``."""
        seconds = int((timezone.now() - self.created_at).total_seconds())
        if seconds < 60:
            return "just now"
        if seconds < 3600:
            return f"{seconds // 60}m ago"
        if seconds < 86400:
            return f"{seconds // 3600}h ago"
        if seconds < 86400 * 30:
            return f"{seconds // 86400}d ago"
        return f"{timesince(self.created_at).split(',')[0]} ago"
