import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models

from django_engagement.models import AbstractEvent


class CustomerManager(BaseUserManager):
    def create_user(self, email, password=None, **extra):
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        return self.create_user(email, password, is_staff=True, is_superuser=True, **extra)


class Customer(AbstractBaseUser, PermissionsMixin):
    """Email login, no username, no date_joined: the package must not assume auth.User."""

    email = models.EmailField(unique=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    signed_up = models.DateTimeField(auto_now_add=True)

    USERNAME_FIELD = "email"
    objects = CustomerManager()


class Venue(models.Model):
    city = models.CharField(max_length=50)

    def __str__(self):
        return self.city


class Workshop(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    title = models.CharField(max_length=100)
    venue = models.ForeignKey(Venue, on_delete=models.CASCADE)
    attendees = models.ManyToManyField(Customer, related_name="workshops", blank=True)

    def __str__(self):
        return self.title


class TrackedEvent(AbstractEvent):
    tenant = models.CharField(max_length=20, default="main")

    class Meta(AbstractEvent.Meta):
        pass
