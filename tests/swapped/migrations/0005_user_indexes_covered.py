"""Foreign keys lose the indexes composite ones cover: user on events and feed items
((user, created_at), (user, -created_at)) and the event's target type ((target type,
target id, event type)), so each insert writes one or two indexes fewer.

Non-atomic: on PostgreSQL the indexes go with DROP INDEX CONCURRENTLY and the
foreign key constraints stay as they are (django_engagement.migration_operations).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import django_engagement.models.base
from django_engagement.migration_operations import AlterFieldIndexConcurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('swapped', '0004_feed_grouping'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AlterFieldIndexConcurrently(
            model_name='swappedfeeditem',
            name='user',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='user'),
        ),
        AlterFieldIndexConcurrently(
            model_name='swappedevent',
            name='user',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django_engagement.models.base.on_user_delete, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='user'),
        ),
        AlterFieldIndexConcurrently(
            model_name='swappedevent',
            name='target_content_type',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='contenttypes.contenttype', verbose_name='target type'),
        ),
    ]
