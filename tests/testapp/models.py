"""A host-like app for the tests: custom user model, int- and UUID-keyed targets."""

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Custom AUTH_USER_MODEL, so nothing in the package may assume auth.User."""

    display_name = models.CharField(max_length=100, blank=True)


class Club(models.Model):
    name = models.CharField(max_length=100)

    def __str__(self):
        return self.name


class Campaign(models.Model):
    """The target in the test settings: UUID primary key, direct M2M to users."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    club = models.ForeignKey(Club, null=True, blank=True, on_delete=models.SET_NULL)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="campaigns", blank=True)
    starts_on = models.DateField(null=True, blank=True)

    def __str__(self):
        return self.name


class Course(models.Model):
    """An int-keyed model, used as a generic target in tests.

    tests/test_vocabulary.py makes it the target of a host with its own words
    (``course.students.add(user)``).
    """

    title = models.CharField(max_length=100)
    students = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="courses", blank=True)

    def __str__(self):
        return self.title
