"""URLs of the HTTP API: ``path("api/engagement/", include("django_engagement.urls"))``."""

app_name = "django_engagement"
urlpatterns: list = []
