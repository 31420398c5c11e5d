"""The admin site, for superusers only: researchers work in the platform's own pages."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class SuperuserAdminSite(admin.AdminSite):
    site_header = "RefusalLab administration"

    def has_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser


class RefusalLabAdminConfig(AdminConfig):
    default_site = "config.admin.SuperuserAdminSite"
