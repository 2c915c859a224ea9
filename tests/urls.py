from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/engagement/", include("django_engagement.urls")),
    # A host page using feed.js (tests/test_realtime_browser.py).
    path("live/", TemplateView.as_view(template_name="testapp/live.html")),
]
