"""The shipped migrations match the models, whatever the host's DEFAULT_AUTO_FIELD."""

import pytest
from django.core.management import call_command


@pytest.mark.parametrize(
    "auto_field", ["django.db.models.AutoField", "django.db.models.BigAutoField"]
)
def test_no_missing_migrations(db, settings, auto_field):
    settings.DEFAULT_AUTO_FIELD = auto_field
    call_command("makemigrations", "django_engagement", check=True, dry_run=True, verbosity=0)


def test_migrations_apply_and_unapply(transactional_db):
    call_command("migrate", "django_engagement", "zero", verbosity=0)
    call_command("migrate", "django_engagement", verbosity=0)
