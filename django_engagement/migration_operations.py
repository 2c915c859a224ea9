"""Index operations that build and drop indexes without blocking writes on PostgreSQL.

Usage in a migration (which must be ``atomic = False``)::

    from django_engagement.migration_operations import AddIndexConcurrently

    class Migration(migrations.Migration):
        atomic = False
        operations = [AddIndexConcurrently("activityfeeditem", models.Index(...))]

On PostgreSQL they run ``CREATE/DROP INDEX CONCURRENTLY`` (writes keep flowing
while a large table is indexed); elsewhere they are the plain ``AddIndex`` and
``RemoveIndex``. Unlike ``django.contrib.postgres.operations``, importing them
needs no PostgreSQL driver, so the same migration runs on SQLite. A hosting app
with a swapped feed model can use them in its own migration.
"""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import ProjectState
from django.db.models import Index


def _online(schema_editor: BaseDatabaseSchemaEditor) -> bool:
    return schema_editor.connection.vendor == "postgresql"


def _add(schema_editor, state: ProjectState, app_label: str, model_name: str, index: Index, op):
    model = state.apps.get_model(app_label, model_name)
    if op.allow_migrate_model(schema_editor.connection.alias, model):
        schema_editor.add_index(model, index, concurrently=True)


def _remove(schema_editor, state: ProjectState, app_label: str, model_name: str, index: Index, op):
    model = state.apps.get_model(app_label, model_name)
    if op.allow_migrate_model(schema_editor.connection.alias, model):
        schema_editor.remove_index(model, index, concurrently=True)


class AddIndexConcurrently(migrations.AddIndex):
    """``AddIndex`` that runs ``CREATE INDEX CONCURRENTLY`` on PostgreSQL."""

    def describe(self) -> str:
        return f"{super().describe()} (concurrently on PostgreSQL)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _online(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        _add(schema_editor, to_state, app_label, self.model_name, self.index, self)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _online(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        _remove(schema_editor, from_state, app_label, self.model_name, self.index, self)


class RemoveIndexConcurrently(migrations.RemoveIndex):
    """``RemoveIndex`` that runs ``DROP INDEX CONCURRENTLY`` on PostgreSQL."""

    def describe(self) -> str:
        return f"{super().describe()} (concurrently on PostgreSQL)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _online(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        _remove(schema_editor, from_state, app_label, self.model_name, index, self)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _online(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
        _add(schema_editor, to_state, app_label, self.model_name, index, self)


class AlterFieldIndexConcurrently(migrations.AlterField):
    """``AlterField`` of a field's ``db_index`` only, with ``CREATE/DROP INDEX
    CONCURRENTLY`` on PostgreSQL.

    Django's ``AlterField`` of a foreign key also drops and re-adds its constraint,
    which validates every row again under a lock; this touches only the index.
    """

    def describe(self) -> str:
        return f"{super().describe()} (its index concurrently on PostgreSQL)"

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _online(schema_editor):
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        self._switch_index(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        if not _online(schema_editor):
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        self._switch_index(app_label, schema_editor, from_state, to_state)

    def _switch_index(self, app_label, schema_editor, from_state, to_state) -> None:
        old_model = from_state.apps.get_model(app_label, self.model_name)
        new_model = to_state.apps.get_model(app_label, self.model_name)
        if not self.allow_migrate_model(schema_editor.connection.alias, new_model):
            return
        old, new = old_model._meta.get_field(self.name), new_model._meta.get_field(self.name)
        if old.db_index and not new.db_index:
            # Found as Django's own AlterField finds it: a b-tree index on the column
            # alone that no Meta.indexes entry declares.
            names = schema_editor._constraint_names(
                old_model,
                [old.column],
                index=True,
                type_=Index.suffix,
                exclude={index.name for index in old_model._meta.indexes},
            )
            for name in names:
                schema_editor.execute(
                    f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(name)}"
                )
        elif new.db_index and not old.db_index:
            schema_editor.execute(
                schema_editor._create_index_sql(new_model, fields=[new], concurrently=True)
            )
