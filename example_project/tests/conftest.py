from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.fixture
def seeded(db):
    """A small, reproducible demo data set (the command's own code path, quietly)."""
    call_command("seed_demo", users=20, events=800, days=30, seed=7, verbosity=0)
