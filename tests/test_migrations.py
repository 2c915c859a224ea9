"""The shipped migrations match the models, whatever the host's DEFAULT_AUTO_FIELD."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from django_engagement.models import get_event_model


@pytest.mark.parametrize(
    "auto_field", ["django.db.models.AutoField", "django.db.models.BigAutoField"]
)
def test_no_missing_migrations(db, settings, auto_field):
    settings.DEFAULT_AUTO_FIELD = auto_field
    call_command("makemigrations", "django_engagement", check=True, dry_run=True, verbosity=0)


def test_migrations_apply_and_unapply(transactional_db):
    call_command("migrate", "django_engagement", "zero", verbosity=0)
    call_command("migrate", "django_engagement", verbosity=0)


def migration_and_parent(
    executor: MigrationExecutor, app_label: str, suffix: str = "_scope_idempotency_keys"
) -> tuple[tuple, tuple]:
    """(parent, node) of the migration named ``*<suffix>`` in ``app_label`` (by default
    the one that scopes idempotency keys). Found by suffix, so tests survive renumbering.
    """
    [node] = [
        key
        for key in executor.loader.graph.nodes
        if key[0] == app_label and key[1].endswith(suffix)
    ]
    parents = executor.loader.graph.node_map[node].parents
    [parent] = [parent.key for parent in parents if parent.key[0] == app_label]
    return parent, node


def test_scoping_idempotency_keys_keeps_existing_rows(transactional_db, django_user_model):
    """Rows stored under the global key namespace keep their keys and end up scoped.

    Runs on the active event model: ours, or the swapped one under
    tests.settings_swapped (whose app carries the same migration).
    """
    Event = get_event_model()
    label, app_label = Event._meta.label, Event._meta.app_label
    alice = django_user_model.objects.create(username="alice")
    bob = django_user_model.objects.create(username="bob")
    executor = MigrationExecutor(connection)
    parent, node = migration_and_parent(executor, app_label)
    try:
        executor.migrate([parent])
        Old = executor.loader.project_state([parent]).apps.get_model(label)
        Old.objects.create(event_type="a", user_id=alice.pk, idempotency_key="k1")
        Old.objects.create(event_type="b", anonymous_id="anon", idempotency_key="k2")
        Old.objects.create(event_type="c", idempotency_key="k3")
        with pytest.raises(IntegrityError), transaction.atomic():
            # The bug: one global namespace, so Bob cannot use Alice's key.
            Old.objects.create(event_type="a", user_id=bob.pk, idempotency_key="k1")

        executor = MigrationExecutor(connection)
        executor.migrate([node])
        New = executor.loader.project_state([node]).apps.get_model(label)
        rows = New.objects.filter(idempotency_key__isnull=False)
        assert sorted(
            rows.values_list("event_type", "user_id", "anonymous_id", "idempotency_key")
        ) == [
            ("a", alice.pk, "", "k1"),
            ("b", None, "anon", "k2"),
            ("c", None, "", "k3"),
        ]
        New.objects.create(event_type="a", user_id=bob.pk, idempotency_key="k1")
        New.objects.create(event_type="b", anonymous_id="other", idempotency_key="k2")
        for fields in (
            {"user_id": alice.pk, "idempotency_key": "k1"},
            {"anonymous_id": "anon", "idempotency_key": "k2"},
            {"idempotency_key": "k3"},
        ):
            with pytest.raises(IntegrityError), transaction.atomic():
                New.objects.create(event_type="x", **fields)
    finally:
        call_command("migrate", app_label, verbosity=0)


def column_state(model, column: str) -> tuple[list[str], list[str]]:
    """(indexes on ``column`` alone, foreign key constraints on it) of ``model``'s table."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    on_column = {name: info for name, info in constraints.items() if info["columns"] == [column]}
    alone = [name for name, info in on_column.items() if info["index"] and not info["unique"]]
    keys = [name for name, info in on_column.items() if info["foreign_key"]]
    return sorted(alone), sorted(keys)


def test_covered_indexes_go_and_come_back_keeping_the_foreign_keys(transactional_db):
    """The foreign keys' own indexes that composite indexes cover are dropped and rebuilt
    on the way back; the foreign key constraints are never touched."""
    from django_engagement.models import get_feed_model

    Event, Feed = get_event_model(), get_feed_model()
    columns = [(Event, "user_id"), (Feed, "user_id"), (Event, "target_content_type_id")]
    app_label = Event._meta.app_label
    executor = MigrationExecutor(connection)
    parent, node = migration_and_parent(executor, app_label, "_user_indexes_covered")
    keys_before = [column_state(*pair)[1] for pair in columns]
    try:
        assert all(column_state(*pair)[0] == [] for pair in columns)
        executor.migrate([parent])
        assert all(len(column_state(*pair)[0]) == 1 for pair in columns)
        executor = MigrationExecutor(connection)
        executor.migrate([node])
        assert all(column_state(*pair)[0] == [] for pair in columns)
        assert [column_state(*pair)[1] for pair in columns] == keys_before
        assert all(len(keys) == 1 for keys in keys_before)
        # The feed's target type keeps its index: no composite index starts with it.
        assert len(column_state(Feed, "target_content_type_id")[0]) == 1
    finally:
        call_command("migrate", app_label, verbosity=0)
