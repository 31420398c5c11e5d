"""Researcher accounts: signing in by username or e-mail, its lock-out, creating an account."""

from __future__ import annotations

from datetime import datetime, timedelta

from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.request import Request as ApiRequest


class UsernameOrEmailBackend(ModelBackend):
    """Accepts the e-mail in the username field when it names exactly one active account."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username and "@" in username:
            matches = list(
                get_user_model().objects.filter(email__iexact=username, is_active=True)[:2]
            )
            if len(matches) == 1:
                username = matches[0].get_username()
        return super().authenticate(request, username=username, password=password, **kwargs)


def user_by_username_or_email(identifier: str):
    """The one active account with this username, or with exactly this e-mail; else None."""
    users = get_user_model().objects.filter(is_active=True)
    identifier = identifier.strip()
    user = users.filter(username=identifier).first()
    if user is not None:
        return user
    matches = list(users.filter(email__iexact=identifier)[:2]) if "@" in identifier else []
    return matches[0] if len(matches) == 1 else None


@transaction.atomic
def create_researcher(*, username: str, email: str = ""):
    """A researcher account (not staff) with no usable password until its owner sets one."""
    users = get_user_model()
    if users.objects.filter(username=username).exists():
        raise ValueError(f"an account named '{username}' exists already")
    if email and users.objects.filter(email__iexact=email).exists():
        raise ValueError(f"an account with the e-mail '{email}' exists already")
    user = users(username=username, email=email, is_staff=False, is_superuser=False)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def password_set_path(user) -> str:
    """The one-time link path where a new researcher chooses a password."""
    return reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )


# ----------------------------------------------------------------------------- sign-in lock-out
# django-axes counts failed sign-ins per account and address (config/settings.py, AXES_*);
# these are the callables and the handler those settings name.

# A lock-out longer than 2**20 cool-offs is past any sensible cap already.
_MAX_DOUBLINGS = 20


def lockout_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The account a sign-in attempt names: its username, whether typed as username or e-mail,
    so both spellings share one failure count. An unknown name counts as typed (lower-cased)."""
    if credentials and credentials.get("username") is not None:
        identifier = credentials["username"]
    else:
        # DRF's parsed body (JSON or form) on the API, the form fields on the pages.
        data = getattr(request, "data", None) or request.POST
        identifier = data.get("username")
    if not identifier:
        return None
    identifier = str(identifier)
    user = user_by_username_or_email(identifier)
    return user.get_username() if user is not None else identifier.strip().lower()


def _attempt_owner(request: HttpRequest) -> tuple[str | None, str | None]:
    username = lockout_username(request, getattr(request, "axes_credentials", None))
    return username, getattr(request, "axes_ip_address", None)


def login_cool_off(request: HttpRequest | None = None) -> timedelta:
    """How long a failure counts (and so how long a lock-out lasts): AXES_COOLOFF_MINUTES,
    doubled for each earlier lock-out of this account from this address within a day since
    its last successful sign-in there, capped at AXES_COOLOFF_MAX_HOURS.

    Only lock-outs before this request count, so the answer stays the same all through it.
    """
    base = timedelta(minutes=settings.AXES_COOLOFF_MINUTES)
    now = getattr(request, "axes_attempt_time", None)
    if request is None or now is None:
        return base
    username, address = _attempt_owner(request)
    since = now - timedelta(days=1)
    last_success = AccessLog.objects.filter(
        username=username, ip_address=address, attempt_time__lt=now
    ).aggregate(last=Max("attempt_time"))["last"]
    if last_success is not None:
        since = max(since, last_success)
    earlier = AccessFailureLog.objects.filter(
        username=username,
        ip_address=address,
        locked_out=True,
        attempt_time__gte=since,
        attempt_time__lt=now,
    ).count()
    cap = timedelta(hours=settings.AXES_COOLOFF_MAX_HOURS)
    return min(base * 2 ** min(earlier, _MAX_DOUBLINGS), cap)


def lockout_ends(request: HttpRequest) -> datetime:
    """When the lock-out on this request's account and address ends."""
    username, address = _attempt_owner(request)
    ends = AccessAttempt.objects.filter(
        username=username, ip_address=address, expiration__expires_at__gt=timezone.now()
    ).aggregate(ends=Max("expiration__expires_at"))["ends"]
    return ends or timezone.now() + login_cool_off(request)


class LoginLockoutHandler(AxesDatabaseHandler):
    """django-axes' database handler, with each failure counted until its own expiry, and the
    lock-out seen by AxesMiddleware on API sign-ins too."""

    def get_user_attempts(self, request, credentials=None):
        # Axes would count every failure newer than *this* request's cool-off; with a cool-off
        # that grows per account, a failure must count until the expiry it was given instead.
        now = timezone.now()
        return [
            attempts.filter(expiration__expires_at__gt=now)
            for attempts in self.filter_user_attempts(request, credentials)
        ]

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        # POST /api/token/ authenticates with DRF's Request, which keeps the lock-out flags to
        # itself; AxesMiddleware looks for them on the Django request underneath.
        if isinstance(request, ApiRequest) and getattr(request, "axes_locked_out", False):
            django_request = request._request
            for name in ("axes_locked_out", "axes_credentials", "axes_ip_address"):
                setattr(django_request, name, getattr(request, name))
            django_request.axes_attempt_time = request.axes_attempt_time
