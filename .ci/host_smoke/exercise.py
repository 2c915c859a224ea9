"""Drive the installed package through SPEC's public names only; exit 1 on any mismatch."""

import io
import json
import sys

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from shop.models import TrackedEvent, Venue, Workshop  # noqa: E402

from django_engagement import (  # noqa: E402
    apply_retention,
    build_engagement_report,
    feed_summary,
    get_event_model,
    get_feed_model,
    get_target_model,
    notify,
    purge_events,
    record_event,
    record_events,
)

failures = []


def expect(label, actual, expected):
    if actual != expected:
        failures.append(f"{label}: expected {expected!r}, got {actual!r}")


Customer = get_user_model()
expect("event model", get_event_model(), TrackedEvent)
expect("target model", get_target_model(), Workshop)

ann = Customer.objects.create_user("ann@example.com", "pw")
ben = Customer.objects.create_user("ben@example.com", "pw")
admin = Customer.objects.create_superuser("root@example.com", "pw")
workshop = Workshop.objects.create(title="Pottery", venue=Venue.objects.create(city="Berlin"))

event = record_event("page_view", user=ann, data={"page": "home"}, source="web")
expect("record_event type", type(event), TrackedEvent)
again = record_event("page_view", user=ann, idempotency_key="k-1")
expect("idempotent", record_event("page_view", user=ann, idempotency_key="k-1").pk, again.pk)
expect("bulk", len(record_events([{"event_type": "click"}, {"event_type": "scroll"}])), 2)

workshop.attendees.add(ann, ben)
joins = TrackedEvent.objects.filter(event_type="target_joined").count()
expect("join events from m2m", joins, 2)
expect("milestone once", TrackedEvent.objects.filter(event_type="milestone_reached").count(), 1)

count = notify(Customer.objects.filter(pk__in=[ann.pk, ben.pk]), "fast_reminder", title="Soon")
expect("notify count", count, 2)
summary = feed_summary(ann)
expect(
    "summary keys",
    sorted(summary),
    sorted(["total_items", "unread_count", "read_count", "activity_types", "recent_activity"]),
)

client = Client()
response = client.post(
    "/engagement/events/",
    {"event_type": "page_view", "source": "web", "payload": {"page": "x"}},
    content_type="application/json",
    HTTP_X_CLIENT_ANON_ID="anon-1",
)
expect("ingest status", response.status_code, 201)
expect("anon stored", TrackedEvent.objects.filter(anonymous_id="anon-1").count(), 1)
client.force_login(ann)
feed = client.get("/engagement/activity-feed/").json()
expect("feed count", feed["count"], summary["total_items"])
marked = client.post(
    "/engagement/activity-feed/mark-read/", {"mark_all": True}, content_type="application/json"
).json()
expect("mark all", marked["updated_count"], summary["unread_count"])
expect("reports forbidden", client.get("/engagement/reports/dashboard/").status_code, 403)
client.force_login(admin)
expect("reports admin", client.get("/engagement/reports/dashboard/?days=7").status_code, 200)
expect("dashboard page", client.get("/admin/django_engagement/dashboard/").status_code, 200)

report = build_engagement_report(event.created_at.date(), event.created_at.date())
expect("report workshops", [row["workshop_name"] for row in report["workshops"]], ["Pottery"])
stdout = io.StringIO()
call_command("engagement_report", "--stdout", stdout=stdout)
expect("stdout json", "new_users_over_time" in json.loads(stdout.getvalue()), True)
feed_rows = get_feed_model()._default_manager.count()
apply_retention(dry_run=True)
purge_events(dry_run=True)
expect("dry runs delete nothing", get_feed_model()._default_manager.count(), feed_rows)
call_command("aggregate_events_daily", verbosity=0)

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("host smoke: all public names behave")
