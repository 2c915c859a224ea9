"""Signals sent by django-engagement. Declarations only; see docs/reference/signals.md.

All are sent after the writing transaction commits.
"""

from django.dispatch import Signal

# sender: the active event model; kwargs: events (list of saved events), created (bool)
event_recorded = Signal()

# sender: the active feed model; kwargs: activity_type, count, user_ids (list or None), event
feed_items_created = Signal()

# sender: the active feed model; kwargs: user, count, ids (list or None when mark_all)
feed_items_read = Signal()

# sender: the active feed model; kwargs: result (RetentionResult), dry_run (bool)
retention_applied = Signal()

# sender: the target model class; kwargs: target, threshold (int), count (int), event
milestone_reached = Signal()

# sender: PendingFanOut; kwargs: event_ids (list). Sent after commit when ASYNC_FEED owes a
# fan-out; the package's receiver (django_engagement.tasks.queue_fan_out) queues the task.
fan_out_requested = Signal()

# sender: FeedEmail; no kwargs. Sent after commit when ASYNC_FEED owes immediate emails; the
# package's receiver (django_engagement.tasks.queue_immediate_emails) queues the task.
emails_requested = Signal()

# sender: Report; kwargs: report_id. Sent after commit when ASYNC_REPORTS owes a stored
# report; the package's receiver (django_engagement.tasks.queue_report) queues the task.
report_requested = Signal()
