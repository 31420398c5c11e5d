"""Top-level URLs: participant pages, researcher pages, accounts, the API and the admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("annotation.urls")),
    path("", include("studies.views.accounts")),
    path("", include("studies.urls")),
    path("", include("modellab.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]

# A database or broker outage answers a friendly 503 (config/outage.py); other errors a 500.
handler500 = "config.outage.server_error"

if settings.BENCH_ENDPOINTS:  # the load benchmark's floor page; never on in production
    from config import bench_views

    urlpatterns.append(path("bench/floor/", bench_views.floor, name="bench-floor"))
