"""Feed items by email: immediately after the fan-out commits, or in daily/weekly digests.

Usage::

    from django_engagement.services.email import send_feed_digests

    send_feed_digests("daily")     # what ``send_feed_digests --period daily`` runs

Every message goes through Django's email framework (``EMAIL_BACKEND``: SMTP,
django-anymail, ...) and is rendered from templates a host can override
(``django_engagement/email/*``). Items wait in the ``FeedEmail`` outbox; a sender
first claims rows in a committed transaction, then sends, then marks them sent,
so a re-run or a process killed half-way sends each item at most once.
"""

from __future__ import annotations

import email.policy
import inspect
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core import mail, signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, models, router, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from ..conf import engagement_settings
from ..models import EmailFrequency, FeedEmail, Report, get_feed_model
from ..signals import emails_requested
from .analytics import ranked
from .dashboard import build_dashboard
from .preferences import queue_emails

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "django_engagement.unsubscribe"
# Outbox rows claimed per transaction: immediate items, or the users of one digest batch.
CLAIM_BATCH_SIZE = 100
DIGEST_PERIODS = (EmailFrequency.DAILY.value, EmailFrequency.WEEKLY.value)


@dataclass(frozen=True)
class SendResult:
    """What a sender did: messages sent and feed items they carried."""

    messages: int
    items: int


def queue_item_emails(items: models.QuerySet, activity_type: str) -> int:
    """Queue ``items`` for the users who want them by email; immediate ones go after commit."""
    queued = queue_emails(items, activity_type)
    if queued:
        transaction.on_commit(schedule_immediate_emails, using=router.db_for_write(FeedEmail))
    return queued


def schedule_immediate_emails() -> None:
    """Send the immediate emails now, or in Celery with ``ASYNC_FEED``.

    A broker error is logged, not raised: the rows stay in the outbox for the
    next run (``send_feed_digests --period immediately``).
    """
    if not engagement_settings.ASYNC_FEED:
        send_immediate_emails()
        return
    try:
        receivers = emails_requested.send(sender=FeedEmail)
    except Exception:
        logger.warning("Could not queue the immediate feed emails.", exc_info=True)
        return
    if not receivers:
        logger.warning(
            "Nothing listens to emails_requested (is the [celery] extra installed?): the "
            "immediate feed emails wait for send_feed_digests --period immediately."
        )


# -- unsubscribe links ------------------------------------------------------------------


def unsubscribe_token(user_id: Any, activity_type: str = "") -> str:
    """A signed token naming the user and the type ("" = every type) to stop emailing."""
    return signing.dumps({"u": str(user_id), "t": activity_type}, salt=UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> tuple[str, str]:
    """``(user_id, activity_type)`` of a token; raises ``signing.BadSignature`` when forged."""
    payload = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), str):
        raise signing.BadSignature("malformed unsubscribe token")
    return payload["u"], str(payload.get("t", ""))


def unsubscribe_url(user_id: Any, activity_type: str = "") -> str:
    """The absolute one-click link: ``EMAIL_BASE_URL`` + the routed unsubscribe view."""
    path = reverse(
        "django_engagement:engagement-unsubscribe", args=[unsubscribe_token(user_id, activity_type)]
    )
    return engagement_settings.EMAIL_BASE_URL.rstrip("/") + path


# -- building and sending ----------------------------------------------------------------

# Django 6 builds messages with ``email.policy`` (``message(policy=...)``); its 78-column
# folding turns a long unbreakable URL into RFC 2047 encoded words, which mail clients do
# not read as the List-Unsubscribe link. RFC 5322 allows 998 characters per line.
_POLICY_ARGUMENT = "policy" in inspect.signature(EmailMultiAlternatives.message).parameters


def _mail_connection() -> Any:
    """The default mailer: ``MAILERS["default"]`` on Django 6.1+, else ``EMAIL_BACKEND``."""
    mailers = getattr(mail, "mailers", None)  # Django 6.1+: MAILERS replace get_connection()
    return mailers.default if mailers is not None else get_connection()


class FeedEmailMessage(EmailMultiAlternatives):
    """A message whose headers keep URLs on one line on every supported Django."""

    def message(self, *args: Any, **kwargs: Any):
        if _POLICY_ARGUMENT:  # the SMTP backend passes email.policy.SMTP, others the default
            policy = kwargs.get("policy", email.policy.default)
            kwargs["policy"] = policy.clone(max_line_length=998)
        return super().message(*args, **kwargs)


def _render(name: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject (one line), text and HTML bodies of template set ``name``."""
    prefix = f"django_engagement/email/{name}"
    subject = " ".join(render_to_string(f"{prefix}_subject.txt", context).split())
    return (
        subject,
        render_to_string(f"{prefix}.txt", context),
        render_to_string(f"{prefix}.html", context),
    )


def _message(name: str, context: dict[str, Any], to: str, unsubscribe: str | None):
    subject, text, html = _render(name, context)
    headers = {}
    if unsubscribe:
        # RFC 8058: mail clients POST "List-Unsubscribe=One-Click" to the link.
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    message = FeedEmailMessage(subject, text, engagement_settings.EMAIL_FROM, [to], headers=headers)
    message.attach_alternative(html, "text/html")
    return message


def _claim(rows: models.QuerySet) -> list[tuple[Any, Any]]:
    """Mark ``rows`` claimed in their own transaction; returns their (item_id, user_id)."""
    using = router.db_for_write(FeedEmail)
    with transaction.atomic(using=using):
        locked = rows.filter(claimed_at__isnull=True).order_by("pk")
        if connections[using].features.has_select_for_update_skip_locked:
            # Two senders at once claim disjoint rows instead of waiting.
            locked = locked.select_for_update(skip_locked=True)
        claimed = list(locked.values_list("pk", "user_id"))
        FeedEmail._default_manager.using(using).filter(pk__in=[pk for pk, _ in claimed]).update(
            claimed_at=timezone.now()
        )
    return claimed


def _send(messages: Sequence[tuple[Any, list[Any]]], build) -> SendResult:
    """Send ``(user_id, item_ids)`` messages one by one, marking each sent as it goes.

    A failed send gives its own and the remaining claims back (the next run
    retries them) and re-raises; a process killed here leaves them claimed, so
    they are never sent twice.
    """
    users = get_user_model()._default_manager.in_bulk([user_id for user_id, _ in messages])
    sent = items = 0
    connection = _mail_connection()
    with connection:
        for position, (user_id, item_ids) in enumerate(messages):
            try:
                message = build(users.get(user_id), item_ids)
                if message is not None:
                    connection.send_messages([message])
                    sent += 1
                    items += len(item_ids)
            except Exception:
                unsent = [pk for _, ids in messages[position:] for pk in ids]
                FeedEmail._default_manager.filter(pk__in=unsent).update(claimed_at=None)
                raise
            FeedEmail._default_manager.filter(pk__in=item_ids).update(sent_at=timezone.now())
    return SendResult(messages=sent, items=items)


def _address(user: Any) -> str:
    return getattr(user, user.get_email_field_name(), "") if user is not None else ""


def _items(item_ids: list[Any]) -> list[Any]:
    return list(
        get_feed_model()
        ._default_manager.filter(pk__in=item_ids)
        .select_related("target_content_type")
        .order_by("-created_at", "-pk")
    )


def send_immediate_emails(*, batch_size: int = CLAIM_BATCH_SIZE) -> SendResult:
    """One email per item for users who chose ``immediately``; claims in batches."""
    rows = FeedEmail._default_manager.filter(frequency=EmailFrequency.IMMEDIATELY)
    total = SendResult(0, 0)
    while claimed := _claim(rows.filter(pk__in=_page(rows, batch_size))):
        result = _send([(user_id, [pk]) for pk, user_id in claimed], _item_message)
        total = SendResult(total.messages + result.messages, total.items + result.items)
    return total


def _page(rows: models.QuerySet, size: int) -> list[Any]:
    unclaimed = rows.filter(claimed_at__isnull=True).order_by("pk")
    return list(unclaimed.values_list("pk", flat=True)[:size])


def _item_message(user: Any, item_ids: list[Any]):
    to = _address(user)
    items = _items(item_ids)
    if not to or not items:
        return None
    item = items[0]
    link = unsubscribe_url(user.pk, item.activity_type)
    context = {"user": user, "item": item, "unsubscribe_url": link}
    return _message("item", context, to, link)


def _digest_message(period: str):
    def build(user: Any, item_ids: list[Any]):
        to = _address(user)
        items = _items(item_ids)
        if not to or not items:
            return None
        link = unsubscribe_url(user.pk)
        context = {"user": user, "items": items, "period": period, "unsubscribe_url": link}
        return _message("digest", context, to, link)

    return build


def send_feed_digests(period: str, *, batch_size: int = CLAIM_BATCH_SIZE) -> SendResult:
    """One digest per user of the items queued for ``period`` (``daily`` or ``weekly``).

    Users are taken ``batch_size`` at a time: their rows are claimed together,
    then each gets one message with all their items, newest first.
    """
    if period not in DIGEST_PERIODS:
        raise ValueError(f"period must be one of {', '.join(DIGEST_PERIODS)}, got {period!r}.")
    rows = FeedEmail._default_manager.filter(frequency=period)
    total = SendResult(0, 0)
    while True:
        user_ids = list(
            rows.filter(claimed_at__isnull=True)
            .order_by("user_id")
            .values_list("user_id", flat=True)
            .distinct()[:batch_size]
        )
        claimed = _claim(rows.filter(user_id__in=user_ids)) if user_ids else []
        if not claimed:
            return total
        by_user: dict[Any, list[Any]] = defaultdict(list)
        for pk, user_id in claimed:
            by_user[user_id].append(pk)
        result = _send(sorted(by_user.items()), _digest_message(period))
        total = SendResult(total.messages + result.messages, total.items + result.items)


def send_engagement_summary(*, days: int | None = None) -> int:
    """Email the dashboard totals of the last ``days`` to ``SUMMARY_RECIPIENTS``; returns sent."""
    recipients = list(engagement_settings.SUMMARY_RECIPIENTS or [])
    if not recipients:
        return 0
    dashboard = build_dashboard(days or engagement_settings.SUMMARY_DAYS)
    messages = [_message("summary", {"dashboard": dashboard}, to, None) for to in recipients]
    return _mail_connection().send_messages(messages) or 0


def send_report_email(
    report: Report, recipients: Sequence[str], *, file_url: str | None = None
) -> int:
    """Email stored ``report`` to ``recipients``, one message each; returns how many went.

    The body names the report and its main numbers; its result is attached as
    ``<report_type>-<start>-<end>.json``, and ``file_url`` (a file in ``REPORT_STORAGE``)
    is linked. Templates ``django_engagement/email/report*``.
    """
    recipients = [address for address in recipients if address]
    if not recipients:
        return 0
    result = report.result if isinstance(report.result, dict) else {}
    context = {
        "report": report,
        "result": result,
        # Ranked pairs: jsonb keeps no key order, and a template would read an event type
        # named "items" as the dict's key.
        "events_by_type": ranked(result.get("events_by_type") or {}),
        "file_url": file_url,
    }
    name = f"{report.report_type}-{report.period_start}-{report.period_end}.json"
    attachment = json.dumps(report.result, cls=DjangoJSONEncoder, indent=2, sort_keys=True)
    messages = []
    for to in recipients:
        message = _message("report", context, to, None)
        message.attach(name, attachment, "application/json")
        messages.append(message)
    return _mail_connection().send_messages(messages) or 0


PERIODS = (EmailFrequency.IMMEDIATELY.value, *DIGEST_PERIODS)


def send_period(period: str) -> tuple[SendResult, int]:
    """What ``send_feed_digests --period`` runs: the period's emails, then (weekly) the summary.

    Returns the feed emails' result and the number of summary messages.
    """
    if period == EmailFrequency.IMMEDIATELY:
        return send_immediate_emails(), 0
    result = send_feed_digests(period)
    summaries = send_engagement_summary() if period == EmailFrequency.WEEKLY else 0
    return result, summaries
