"""Collected static files with content-hashed names and gzip copies, whatever DEBUG says."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's compressed manifest storage, linking hashed names with DEBUG on too.

    Django's manifest storage links unhashed names whenever DEBUG is on, so the demo (DEBUG
    on) sent plotly.min.js (4.8 MB) under a name that cannot be cached for long. Hashed names
    are cached as immutable by WhiteNoise; an unknown name fails as in production (run
    collectstatic, or STATIC_LIVE=1 while editing static files).
    """

    def url(self, name: str | None, force: bool = False) -> str:
        return super().url(name, force=True)
