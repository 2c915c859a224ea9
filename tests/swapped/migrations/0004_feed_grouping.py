"""Feed grouping (FEED_GROUPING): the group_key column, one open group per user and key."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('swapped', '0003_feed_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='swappedfeeditem',
            name='group_key',
            field=models.CharField(blank=True, db_default='', default='', editable=False, max_length=200, verbose_name='group key'),
        ),
        migrations.AddIndex(
            model_name='swappedfeeditem',
            index=models.Index(condition=models.Q(models.Q(('group_key', ''), _negated=True), ('is_read', False)), fields=['group_key', 'created_at'], name='swappedfeeditem_group_idx'),
        ),
        migrations.AddConstraint(
            model_name='swappedfeeditem',
            constraint=models.UniqueConstraint(condition=models.Q(models.Q(('group_key', ''), _negated=True), ('is_read', False)), fields=('group_key', 'user'), name='swapped_swappedfeeditem_open_group'),
        ),
    ]
