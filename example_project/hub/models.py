"""The host app of the example: churches hold fasts, users join fasts through profiles.

``Fast`` is the engagement target (``ENGAGEMENT_TARGET_MODEL = "hub.Fast"``);
its participants are reached with the lookup ``profiles__user``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Church(models.Model):
    name = models.CharField(max_length=120, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "churches"

    def __str__(self) -> str:
        return self.name


class Fast(models.Model):
    name = models.CharField(max_length=120)
    church = models.ForeignKey(Church, on_delete=models.CASCADE, related_name="fasts")
    starts_on = models.DateField()
    ends_on = models.DateField()
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["starts_on", "name"]

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    fasts = models.ManyToManyField(Fast, related_name="profiles", blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"
