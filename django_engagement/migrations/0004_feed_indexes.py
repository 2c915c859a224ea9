"""Feed indexes of docs/performance.md: a partial unread index replaces two indexes.

Non-atomic: on PostgreSQL the indexes are built and dropped CONCURRENTLY, so
writes to a large feed table keep flowing. The new index is built before the old
ones go, so unread pages always have an index to use.
"""

from django.conf import settings
from django.db import migrations, models

from django_engagement.migration_operations import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("django_engagement", "0003_fan_out_outbox"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="activityfeeditem",
            index=models.Index(
                condition=models.Q(("is_read", False)),
                fields=["user", "-created_at"],
                name="activityfeeditem_unread_idx",
            ),
        ),
        # (user, is_read, -created_at): the partial index serves unread pages.
        RemoveIndexConcurrently(model_name="activityfeeditem", name="django_enga_user_id_63ca6f_idx"),
        # (user, activity_type): a type filter narrows the (user, -created_at) range instead.
        RemoveIndexConcurrently(model_name="activityfeeditem", name="django_enga_user_id_9b5a15_idx"),
    ]
