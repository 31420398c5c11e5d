"""Keyed pseudonyms: participants are stored under an HMAC of their recruitment id, never the id."""

import hashlib
import hmac


def pseudonym_for(*, salt: str, external_id: str) -> str:
    """Return the stable pseudonym of ``external_id`` within the study that owns ``salt``."""
    return hmac.new(salt.encode(), external_id.strip().encode(), hashlib.sha256).hexdigest()
