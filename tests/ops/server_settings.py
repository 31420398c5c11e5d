"""Settings of the app servers the outage tests start: production's, with plain static files."""

from config.settings import *  # noqa: F403

# Static files are not collected for tests; everything else is as in production (DEBUG off).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
