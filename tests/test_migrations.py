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


def scope_migration(executor: MigrationExecutor, app_label: str) -> tuple[tuple, tuple]:
    """(parent, node) of the migration that scopes idempotency keys in ``app_label``.

    Found by name suffix, so the test survives renumbering.
    """
    [node] = [
        key
        for key in executor.loader.graph.nodes
        if key[0] == app_label and key[1].endswith("_scope_idempotency_keys")
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
    parent, node = scope_migration(executor, app_label)
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
