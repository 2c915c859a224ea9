"""The feed index migration moves an existing table both ways, on SQLite and PostgreSQL.

Runs on the active feed model: ours, or the swapped one under tests.settings_swapped
(whose app carries the same migration).
"""

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from django_engagement.models import get_feed_model


def index_migration(executor: MigrationExecutor, app_label: str) -> tuple[tuple, tuple]:
    """(parent, node) of the feed index migration, found by name suffix (survives renumbering)."""
    [node] = [
        key
        for key in executor.loader.graph.nodes
        if key[0] == app_label and key[1].endswith("_feed_indexes")
    ]
    parents = executor.loader.graph.node_map[node].parents
    [parent] = [parent.key for parent in parents if parent.key[0] == app_label]
    return parent, node


def feed_indexes(table: str) -> dict[str, list[str]]:
    """Non-unique, non-primary-key indexes of ``table``: name -> columns."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: info["columns"]
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"]
    }


def test_feed_index_migration_forward_and_backward(transactional_db, django_user_model):
    Feed = get_feed_model()
    app_label, model_name, table = Feed._meta.app_label, Feed._meta.model_name, Feed._meta.db_table
    unread = f"{model_name}_unread_idx"
    user = django_user_model.objects.create(username="alice")
    executor = MigrationExecutor(connection)
    parent, node = index_migration(executor, app_label)
    try:
        executor.migrate([parent])
        before = feed_indexes(table)
        assert unread not in before
        assert ["user_id", "is_read", "created_at"] in before.values()
        assert ["user_id", "activity_type"] in before.values()
        Old = executor.loader.project_state([parent]).apps.get_model(Feed._meta.label)
        Old.objects.create(user_id=user.pk, activity_type="event", title="kept")

        executor = MigrationExecutor(connection)
        executor.migrate([node])
        after = feed_indexes(table)
        assert after[unread] == ["user_id", "created_at"]
        assert ["user_id", "is_read", "created_at"] not in after.values()
        assert ["user_id", "activity_type"] not in after.values()
        assert len(after) == len(before) - 1
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT indisvalid, pg_get_indexdef(indexrelid) FROM pg_index "
                    "WHERE indexrelid = %s::regclass",
                    [unread],
                )
                valid, definition = cursor.fetchone()
            assert valid
            assert definition.endswith("WHERE (NOT is_read)")
        assert Feed._default_manager.filter(title="kept").count() == 1

        executor = MigrationExecutor(connection)
        executor.migrate([parent])
        assert feed_indexes(table) == before
    finally:
        call_command("migrate", app_label, verbosity=0)
