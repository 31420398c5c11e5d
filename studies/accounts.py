"""Researcher accounts: signing in by username or e-mail, and creating an account."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode


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
