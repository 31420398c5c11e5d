"""What a participant's browser carries: a signed cookie naming its participant, and a form's
errors across the redirect after a refused submit. No session row is read or written."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

# A kept form holds question keys and short answers; past this a cookie would be refused.
_FORM_COOKIE_MAX = 3500
_FORM_MAX_AGE = 15 * 60


def _participant_cookie(slug: str) -> str:
    return f"rl_p_{slug}"


def _form_cookie(slug: str) -> str:
    return f"rl_f_{slug}"


def _salt(kind: str, slug: str) -> str:
    # The study's slug is in the salt: a cookie of one study is no key to another.
    return f"annotation.{kind}:{slug}"


def _path(slug: str) -> str:
    return f"/s/{slug}/"


def participant_id(request: HttpRequest, slug: str) -> int | None:
    """The participant this browser took part as in the study, if its cookie is genuine."""
    value = request.get_signed_cookie(
        _participant_cookie(slug),
        default=None,
        salt=_salt("participant", slug),
        max_age=settings.SESSION_COOKIE_AGE,
    )
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def remember_participant(response: HttpResponse, slug: str, participant_pk: int) -> None:
    response.set_signed_cookie(
        _participant_cookie(slug),
        str(participant_pk),
        salt=_salt("participant", slug),
        max_age=settings.SESSION_COOKIE_AGE,
        path=_path(slug),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def keep_form(
    response: HttpResponse, slug: str, *, page: str, errors: dict[str, str], values: dict
) -> bool:
    """Carry a refused form's errors and answers to the page the redirect shows; False when they
    do not fit in a cookie (long free-text answers), so the caller shows the page at once."""
    value = signing.dumps(
        {"page": page, "errors": errors, "values": values},
        salt=_salt("form", slug),
        compress=True,
    )
    if len(value) > _FORM_COOKIE_MAX:
        return False
    response.set_cookie(
        _form_cookie(slug),
        value,
        max_age=_FORM_MAX_AGE,
        path=_path(slug),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return True


def kept_form(request: HttpRequest, slug: str, page: str) -> tuple[dict[str, str], dict]:
    """The errors and answers kept for this page by keep_form, or empty ones."""
    raw = request.COOKIES.get(_form_cookie(slug))
    if not raw:
        return {}, {}
    try:
        kept = signing.loads(raw, salt=_salt("form", slug), max_age=_FORM_MAX_AGE)
    except signing.BadSignature:
        return {}, {}
    if not isinstance(kept, dict) or kept.get("page") != page:
        return {}, {}
    errors, values = kept.get("errors"), kept.get("values")
    if not isinstance(errors, dict) or not isinstance(values, dict):
        return {}, {}
    return errors, values


def forget_form(request: HttpRequest, response: HttpResponse, slug: str) -> None:
    if _form_cookie(slug) in request.COOKIES:
        response.delete_cookie(_form_cookie(slug), path=_path(slug), samesite="Lax")
