"""The unread badge as one counter row per user (FeedUnreadCount), filled from the
feed table of existing installs in one grouped INSERT ... SELECT."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def fill_counters(apps, schema_editor):
    """Count each user's unread items of the active feed model (set-based).

    A swapped feed model lives in the host's app: on a fresh install its table may
    not exist yet (then there is nothing to count).
    """
    try:
        Feed = apps.get_model(settings.ENGAGEMENT_FEED_MODEL)
    except LookupError:
        return
    connection = schema_editor.connection
    if Feed._meta.db_table not in connection.introspection.table_names():
        return
    Counter = apps.get_model("django_engagement", "FeedUnreadCount")
    quote = connection.ops.quote_name
    user = quote(Feed._meta.get_field("user").column)
    is_read = quote(Feed._meta.get_field("is_read").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(Counter._meta.db_table)} (user_id, unread) "
            f"SELECT {user}, count(*) FROM {quote(Feed._meta.db_table)} WHERE {is_read} = %s "
            f"GROUP BY {user}",
            [False],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("django_engagement", "0009_aggregate_periods"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FeedUnreadCount",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
                ("unread", models.IntegerField(default=0, verbose_name="unread items")),
            ],
            options={
                "verbose_name": "unread count",
                "verbose_name_plural": "unread counts",
            },
        ),
        migrations.RunPython(fill_counters, migrations.RunPython.noop),
    ]
