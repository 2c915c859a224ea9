"""URLs of the example project.

``/admin/`` (with the engagement dashboard), ``/api/engagement/`` (the package's
API) and, when drf-spectacular is installed, the OpenAPI schema at
``/api/schema/`` and Swagger UI at ``/api/docs/``. Both work offline: Swagger UI's
JavaScript and CSS are static files of drf-spectacular-sidecar.
"""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from hub.views import favicon, live_feed

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/engagement/", include("django_engagement.urls")),
    path("api-auth/", include("rest_framework.urls")),
    path("live/", live_feed, name="live-feed"),
]

if settings.HAS_SPECTACULAR:
    from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

    urlpatterns += [
        path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
        path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    ]
