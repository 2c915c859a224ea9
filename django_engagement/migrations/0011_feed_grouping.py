"""Feed grouping (FEED_GROUPING): the group_key column, one open group per user and key."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('django_engagement', '0010_unread_counters'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='activityfeeditem',
            name='group_key',
            field=models.CharField(blank=True, db_default='', default='', editable=False, max_length=200, verbose_name='group key'),
        ),
        migrations.AddIndex(
            model_name='activityfeeditem',
            index=models.Index(condition=models.Q(models.Q(('group_key', ''), _negated=True), ('is_read', False)), fields=['group_key', 'created_at'], name='activityfeeditem_group_idx'),
        ),
        migrations.AddConstraint(
            model_name='activityfeeditem',
            constraint=models.UniqueConstraint(condition=models.Q(models.Q(('group_key', ''), _negated=True), ('is_read', False)), fields=('group_key', 'user'), name='django_engagement_activityfeeditem_open_group'),
        ),
    ]
