"""Day-wide totals move from ``event_type = source = "*"`` rows of
EventAggregateDaily to their own table, EventDayTotal."""

from django.db import migrations, models

# The marker the day-wide rows carried in EventAggregateDaily.
DAY_WIDE = "*"


def move_day_totals(apps, schema_editor):
    """Copy the marker rows into EventDayTotal, then delete them (set-based)."""
    Aggregate = apps.get_model("django_engagement", "EventAggregateDaily")
    DayTotal = apps.get_model("django_engagement", "EventDayTotal")
    db = schema_editor.connection.alias
    marker_rows = Aggregate.objects.using(db).filter(event_type=DAY_WIDE, source=DAY_WIDE)
    DayTotal.objects.using(db).bulk_create(
        DayTotal(
            date=row["date"],
            count=row["count"],
            unique_users=row["unique_users"],
            unique_anonymous=row["unique_anonymous"],
        )
        for row in marker_rows.values("date", "count", "unique_users", "unique_anonymous")
    )
    marker_rows.delete()


def restore_day_totals(apps, schema_editor):
    """Reverse: the totals become marker rows of EventAggregateDaily again."""
    Aggregate = apps.get_model("django_engagement", "EventAggregateDaily")
    DayTotal = apps.get_model("django_engagement", "EventDayTotal")
    db = schema_editor.connection.alias
    Aggregate.objects.using(db).bulk_create(
        Aggregate(event_type=DAY_WIDE, source=DAY_WIDE, **row)
        for row in DayTotal.objects.using(db).values(
            "date", "count", "unique_users", "unique_anonymous"
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("django_engagement", "0005_notification_preferences"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventDayTotal",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("date", models.DateField(unique=True, verbose_name="date")),
                ("count", models.PositiveIntegerField(default=0, verbose_name="events")),
                (
                    "unique_users",
                    models.PositiveIntegerField(default=0, verbose_name="unique users"),
                ),
                (
                    "unique_anonymous",
                    models.PositiveIntegerField(default=0, verbose_name="unique anonymous ids"),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
            ],
            options={
                "verbose_name": "daily event total",
                "verbose_name_plural": "daily event totals",
                "ordering": ["-date"],
            },
        ),
        migrations.RunPython(move_day_totals, restore_day_totals),
    ]
