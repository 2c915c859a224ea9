"""``created_at`` of the mute, email outbox and fan-out outbox models becomes
django-model-utils' ``AutoCreatedField``.

The columns stay what they were (a datetime, no database default), so this changes only
the migration state: no SQL runs (SQLite would otherwise rebuild the three tables).
"""

import django.utils.timezone
import model_utils.fields
from django.db import migrations


def created(**kwargs):
    return model_utils.fields.AutoCreatedField(
        default=django.utils.timezone.now, editable=False, verbose_name="created at", **kwargs
    )


class Migration(migrations.Migration):
    dependencies = [
        ("django_engagement", "0006_event_day_totals"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="feedemail", name="created_at", field=created()),
                migrations.AlterField(
                    model_name="pendingfanout", name="created_at", field=created(db_index=True)
                ),
                migrations.AlterField(model_name="targetmute", name="created_at", field=created()),
            ],
            database_operations=[],
        ),
    ]
