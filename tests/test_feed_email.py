"""Feed emails through a real SMTP server on loopback (aiosmtpd, started by the test)."""

from __future__ import annotations

import email
import socket
from email.message import Message

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from django_engagement import notify, record_event
from django_engagement.models import FeedEmail, NotificationPreference
from django_engagement.services.email import (
    send_feed_digests,
    unsubscribe_token,
)
from tests.conftest import require_service
from tests.helpers import command_output, make_users

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_tracking")]


class Inbox:
    """Messages the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"

    def to(self) -> list[str]:
        return sorted(message["To"] for message in self.messages)


@pytest.fixture
def smtp(settings):
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        Controller = None
    require_service(Controller is not None, "aiosmtpd is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.DEFAULT_FROM_EMAIL = "feed@example.com"
    yield inbox
    controller.stop()


@pytest.fixture
def mail_settings(engagement_settings):
    engagement_settings.update(EMAIL_BASE_URL="https://example.com")


def members():
    return get_user_model().objects.filter(username__startswith="member")


def body(message: Message, subtype: str) -> str:
    for part in message.walk():
        if part.get_content_type() == f"text/{subtype}":
            return part.get_payload(decode=True).decode()
    raise AssertionError(f"no text/{subtype} part")


def test_immediate_email_after_commit_with_one_click_headers(smtp, mail_settings):
    users = make_users(3)
    NotificationPreference.objects.create(user=users[0], activity_type="news", email="immediately")
    NotificationPreference.objects.create(user=users[1], activity_type="", email="immediately")
    NotificationPreference.objects.create(user=users[2], activity_type="news", email="daily")
    assert notify(members(), "news", title="Release 2.0", description="Out now") == 3
    assert smtp.to() == ["member0@example.com", "member1@example.com"]
    message = smtp.messages[0]
    assert message["Subject"] == "Release 2.0"
    assert message["From"] == "feed@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = "".join(message["List-Unsubscribe"].split()).strip("<>")
    assert link.startswith("https://example.com/api/engagement/unsubscribe/")
    assert "Out now" in body(message, "plain") and "Out now" in body(message, "html")
    assert FeedEmail.objects.filter(sent_at__isnull=False).count() == 2
    assert FeedEmail.objects.filter(frequency="daily", claimed_at__isnull=True).count() == 1


def test_daily_digest_once_even_when_re_run(smtp, mail_settings):
    users = make_users(3)
    for user in users[:2]:
        NotificationPreference.objects.create(user=user, activity_type="", email="daily")
    notify(members(), "news", title="First")
    notify(members(), "news", title="Second")
    assert smtp.messages == []
    assert "Sent 2 daily emails with 4 feed items" in command_output(
        "send_feed_digests", "--period", "daily"
    )
    assert smtp.to() == ["member0@example.com", "member1@example.com"]
    assert smtp.messages[0]["Subject"] == "Your daily digest: 2 new items"
    text = body(smtp.messages[0], "plain")
    assert text.index("Second") < text.index("First")
    assert "Sent 0 daily emails" in command_output("send_feed_digests", "--period", "daily")
    assert send_feed_digests("weekly").messages == 0
    assert len(smtp.messages) == 2


def intercept_sends(monkeypatch, hook):
    """Call ``hook(recipients)`` as each message reaches the SMTP backend; returns an undo."""
    from django.core.mail.backends.smtp import EmailBackend

    real_send_messages = EmailBackend.send_messages

    def send_messages(self, messages):
        for message in messages:
            hook(message.to)
        return real_send_messages(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", send_messages)
    return lambda: monkeypatch.setattr(EmailBackend, "send_messages", real_send_messages)


class Killed(BaseException):
    """Stands for SIGKILL: no ``except Exception`` handler runs."""


def test_killed_half_way_never_sends_twice(smtp, mail_settings, monkeypatch):
    users = make_users(4)
    for user in users:
        NotificationPreference.objects.create(user=user, activity_type="", email="weekly")
    notify(members(), "news", title="Week")
    calls = []

    def die_on_the_third(recipients):
        calls.append(recipients)
        if len(calls) == 3:
            raise Killed

    undo = intercept_sends(monkeypatch, die_on_the_third)
    with pytest.raises(Killed):
        send_feed_digests("weekly", batch_size=1)
    undo()
    assert send_feed_digests("weekly").messages == 1
    # Two before the kill, the fourth on the re-run; the third was claimed and is lost.
    assert smtp.to() == [f"member{n}@example.com" for n in (0, 1, 3)]


def test_a_failed_send_is_retried_by_the_next_run(smtp, mail_settings, monkeypatch):
    users = make_users(2)
    for user in users:
        NotificationPreference.objects.create(user=user, activity_type="", email="daily")
    notify(members(), "news", title="Day")

    def fail_for_member1(recipients):
        if recipients == ["member1@example.com"]:
            raise OSError("connection reset")

    undo = intercept_sends(monkeypatch, fail_for_member1)
    with pytest.raises(OSError):
        send_feed_digests("daily")
    undo()
    assert send_feed_digests("daily").messages == 1
    assert smtp.to() == ["member0@example.com", "member1@example.com"]


def test_weekly_run_mails_the_staff_summary(smtp, mail_settings, engagement_settings):
    engagement_settings.update(SUMMARY_RECIPIENTS=["staff@example.com"])
    record_event("page_view")
    record_event("page_view")
    output = command_output("send_feed_digests", "--period", "weekly")
    assert "1 summaries" in output
    assert smtp.to() == ["staff@example.com"]
    assert "Events: 2" in body(smtp.messages[0], "plain")
    assert "List-Unsubscribe" not in smtp.messages[0]


def test_unsubscribe_get_confirms_post_unsubscribes(client, user):
    NotificationPreference.objects.create(user=user, activity_type="news", email="immediately")
    url = reverse("django_engagement:engagement-unsubscribe", args=[unsubscribe_token(user.pk)])
    response = client.get(url)
    assert response.status_code == 200 and b'<form method="post">' in response.content
    assert NotificationPreference.objects.get(activity_type="news").email == "immediately"
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert set(NotificationPreference.objects.values_list("activity_type", "email")) == {
        ("", "never"),
        ("news", "never"),
    }


@pytest.mark.parametrize("token", ["garbage", unsubscribe_token(1)[:-2] + "xx"])
def test_forged_unsubscribe_link_is_a_400(client, token):
    url = reverse("django_engagement:engagement-unsubscribe", args=[token])
    assert client.get(url).status_code == 400
    assert client.post(url).status_code == 400


def test_bad_period_is_a_command_error():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("send_feed_digests", "--period", "hourly")


def test_async_feed_sends_immediate_emails_in_a_task(engagement_settings, eager_app, mailoutbox):
    engagement_settings.update(ASYNC_FEED=True)
    users = make_users(2)
    NotificationPreference.objects.create(user=users[1], activity_type="", email="immediately")
    from django_engagement import tasks

    calls = []
    real = tasks.send_immediate_emails_task.run
    tasks.send_immediate_emails_task.run = lambda: calls.append(1) or real()
    try:
        assert notify(members(), "news", title="Queued") == 2
    finally:
        tasks.send_immediate_emails_task.run = real
    assert calls == [1]
    assert [message.to for message in mailoutbox] == [["member1@example.com"]]
