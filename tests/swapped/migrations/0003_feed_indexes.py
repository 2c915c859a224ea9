"""The swapped feed model's copy of django_engagement's 0004_feed_indexes."""

from django.db import migrations, models

from django_engagement.migration_operations import AddIndexConcurrently, RemoveIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("swapped", "0002_scope_idempotency_keys")]

    operations = [
        AddIndexConcurrently(
            model_name="swappedfeeditem",
            index=models.Index(
                condition=models.Q(("is_read", False)),
                fields=["user", "-created_at"],
                name="swappedfeeditem_unread_idx",
            ),
        ),
        RemoveIndexConcurrently(model_name="swappedfeeditem", name="swapped_swa_user_id_3de071_idx"),
        RemoveIndexConcurrently(model_name="swappedfeeditem", name="swapped_swa_user_id_120f29_idx"),
    ]
