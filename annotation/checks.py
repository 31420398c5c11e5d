"""System checks of the participant side: the recruitment id keys (annotation.recruitment_ids)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from annotation.recruitment_ids import RecruitmentKeyError, _configured_keys, _fernet


@checks.register(checks.Tags.security)
def recruitment_keys_are_valid(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A malformed key stops every command: ids would be stored unreadable or not at all."""
    keys = _configured_keys()
    if not keys:
        return []
    try:
        _fernet(keys, bool(settings.DEBUG), settings.SECRET_KEY)
    except RecruitmentKeyError as exc:
        return [checks.Error(str(exc), id="annotation.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def recruitment_keys_are_set(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Without keys a production server stores no raw ids: nobody could be approved or paid."""
    if _configured_keys() or settings.DEBUG:
        return []
    return [
        checks.Warning(
            "RECRUITMENT_ID_KEYS is not set: raw recruitment ids are not stored, so a study's "
            "owners cannot download approve, reject or bonus lists.",
            hint=(
                "Set RECRUITMENT_ID_KEYS to one or more comma-separated Fernet keys (make one "
                "with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'); the first encrypts, all decrypt."
            ),
            id="annotation.W001",
        )
    ]
