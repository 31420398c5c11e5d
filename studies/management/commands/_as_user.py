"""What commands that act for a researcher share: ``--as USER`` and its access checks."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError, CommandParser
from django.http import Http404

from studies import access
from studies.access import Action
from studies.models import LanguageModel, Study


def add_as_argument(parser: CommandParser) -> None:
    # "as" is a Python keyword, so the option is stored as "as_user".
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        required=True,
        help="the researcher (username) on whose behalf the command acts; access is checked",
    )


def actor_from(options: dict):
    """The active account named by ``--as``; a clear error if it is missing or unknown."""
    username = (options.get("as_user") or "").strip()
    if not username:
        raise CommandError("--as USER is required: the researcher this command acts for")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no account named '{username}' (create it with create_researcher)")
    if not user.is_active:
        raise CommandError(f"the account '{username}' is deactivated")
    return user


def usable_model(user, name: str) -> LanguageModel:
    """The registered model ``name`` that ``user`` may use, else a CommandError saying how to
    get one."""
    model = access.models_for(user).filter(name=name).first()
    if model is None:
        raise CommandError(
            f"no model named '{name}' that {user.get_username()} may use "
            "(register it with register_model, or ask its owner to share it)"
        )
    return model


def study_for(user, slug: str, action: Action) -> Study:
    """The study ``slug`` if ``user`` may do ``action`` on it, else a CommandError saying why."""
    if not Study.objects.filter(slug=slug).exists():
        raise CommandError(f"no study with slug '{slug}'")
    try:
        return access.study_for(user, slug, action)
    except Http404:
        raise CommandError(f"{user.get_username()} is not a member of study '{slug}'") from None
    except PermissionDenied:
        role = access.role_in(user, Study.objects.get(slug=slug))
        raise CommandError(
            f"{user.get_username()} is {role} of study '{slug}'; that role may not {action} it"
        ) from None
