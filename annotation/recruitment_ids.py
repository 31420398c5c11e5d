"""Recruitment ids encrypted at rest: Fernet keys from the environment, the first encrypts."""

from __future__ import annotations

import base64
import hashlib
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

log = logging.getLogger(__name__)

# What the development key is derived from besides SECRET_KEY: a fixed label, so the key is
# not SECRET_KEY itself (which signs cookies) but stays the same across restarts.
_DEV_KEY_LABEL = b"refusallab recruitment-id development key\x00"


class RecruitmentKeyError(Exception):
    """No configured key can read a stored recruitment id (or none is configured at all)."""


def development_key(secret_key: str) -> bytes:
    """The Fernet key a DEBUG (demo, development) server uses when RECRUITMENT_ID_KEYS is unset.

    Derived from SECRET_KEY, so ids stored by one run of the demo stay readable in the next;
    never used with DEBUG off.
    """
    digest = hashlib.sha256(_DEV_KEY_LABEL + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def _configured_keys() -> tuple[str, ...]:
    keys = getattr(settings, "RECRUITMENT_ID_KEYS", None) or ()
    if isinstance(keys, str):
        keys = keys.split(",")
    return tuple(k.strip() for k in keys if k and k.strip())


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...], debug: bool, secret_key: str) -> MultiFernet | None:
    """The MultiFernet for these settings (cached: settings rarely change, tests override them).

    A malformed key raises RecruitmentKeyError naming its position, never the key.
    """
    if keys:
        fernets = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode()))
            except (ValueError, TypeError) as exc:
                raise RecruitmentKeyError(
                    f"RECRUITMENT_ID_KEYS: key {position} is not a Fernet key (32 url-safe "
                    "base64-encoded bytes; make one with Fernet.generate_key())"
                ) from exc
        return MultiFernet(fernets)
    if debug:
        log.warning(
            "RECRUITMENT_ID_KEYS is not set: recruitment ids are encrypted with a development "
            "key derived from SECRET_KEY (DEBUG only; set RECRUITMENT_ID_KEYS in production)"
        )
        return MultiFernet([Fernet(development_key(secret_key))])
    log.warning(
        "RECRUITMENT_ID_KEYS is not set: raw recruitment ids are not stored, so approve, "
        "reject and bonus lists cannot be made (only the keyed pseudonym is kept)"
    )
    return None


def _current() -> MultiFernet | None:
    return _fernet(_configured_keys(), bool(settings.DEBUG), settings.SECRET_KEY)


def recruitment_keys_configured() -> bool:
    """Whether recruitment ids can be stored and read: keys from RECRUITMENT_ID_KEYS, or with
    DEBUG on the development key. False means raw ids are not stored at all."""
    try:
        return _current() is not None
    except RecruitmentKeyError:
        return False


def encrypt_recruitment_id(raw: str) -> str:
    """The id encrypted with the first key, as text for Participant.recruitment_id_encrypted.

    Raises RecruitmentKeyError when no key is configured (see recruitment_keys_configured).
    """
    fernet = _current()
    if fernet is None:
        raise RecruitmentKeyError("no recruitment id key is configured (RECRUITMENT_ID_KEYS)")
    return fernet.encrypt(raw.encode("utf-8")).decode("ascii")


def reveal_recruitment_id(token: str) -> str:
    """The raw id of a stored token. Raises RecruitmentKeyError when no configured key can
    read it (a key removed from RECRUITMENT_ID_KEYS too early, or another installation's)."""
    fernet = _current()
    if fernet is None:
        raise RecruitmentKeyError("no recruitment id key is configured (RECRUITMENT_ID_KEYS)")
    try:
        return fernet.decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise RecruitmentKeyError(
            "no key in RECRUITMENT_ID_KEYS can read this recruitment id; was the key it was "
            "stored with removed before `manage.py rotate_recruitment_keys` re-encrypted it?"
        ) from exc


def rotated(token: str) -> str:
    """The token re-encrypted with the first key (MultiFernet.rotate); RecruitmentKeyError
    when no configured key can read it."""
    fernet = _current()
    if fernet is None:
        raise RecruitmentKeyError("no recruitment id key is configured (RECRUITMENT_ID_KEYS)")
    try:
        return fernet.rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise RecruitmentKeyError("no key in RECRUITMENT_ID_KEYS can read this id") from exc


def encrypted_with_first_key(token: str) -> bool:
    """Whether the first key alone reads the token (then rotating it changes nothing needed)."""
    keys = _configured_keys()
    if not keys:
        return _current() is not None
    try:
        Fernet(keys[0].encode()).decrypt(token.encode("ascii"))
    except (InvalidToken, ValueError, UnicodeError):
        return False
    return True
