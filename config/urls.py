"""Top-level URLs: participant pages, researcher pages and the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("annotation.urls")),
    path("", include("studies.urls")),
    path("admin/", admin.site.urls),
]
