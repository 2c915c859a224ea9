"""factory_boy factories of the test suite's own models."""

from __future__ import annotations

import factory
from django.conf import settings


class UserFactory(factory.django.DjangoModelFactory):
    """A user of ``AUTH_USER_MODEL``: ``user<n>`` / ``user<n>@example.com``, password ``pw``."""

    class Meta:
        model = settings.AUTH_USER_MODEL
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("pw")
