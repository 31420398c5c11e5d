"""Writes of a study's membership: adding researchers, changing their role, removing them.

Every change is checked with studies.access (members are the owners' business), keeps at
least one owner on the study and writes an audit row.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from studies import access
from studies.access import Action
from studies.accounts import user_by_username_or_email
from studies.models import Study, StudyMembership
from studies.services import record_audit

Role = StudyMembership.Role


class MembershipError(ValueError):
    """A membership change that cannot be made, with a message the owner can act on."""


def _check_role(role: str) -> str:
    if role not in Role.values:
        raise MembershipError(f"role must be one of {', '.join(Role.values)}, not {role!r}")
    return role


def _locked(study: Study) -> Study:
    # One membership change at a time per study, so two owners cannot remove each other.
    return Study.objects.select_for_update().get(pk=study.pk)


def _owners_left_without(study: Study, user: AbstractBaseUser) -> int:
    return study.memberships.filter(role=Role.OWNER).exclude(user=user).count()


@transaction.atomic
def add_member(
    *, study: Study, identifier: str, role: str, actor: AbstractBaseUser | None
) -> StudyMembership:
    """Give the account named by ``identifier`` (username, or an e-mail matching exactly one
    active account) a role in the study."""
    access.require(actor, Action.MANAGE, study)
    study = _locked(study)
    role = _check_role(role)
    identifier = (identifier or "").strip()
    if not identifier:
        raise MembershipError("give a username or an e-mail address")
    user = user_by_username_or_email(identifier)
    if user is None:
        raise MembershipError(
            f"no active account matches '{identifier}' (an e-mail must match exactly one account)"
        )
    if study.memberships.filter(user=user).exists():
        raise MembershipError(f"{user.get_username()} is a member already; change their role")
    membership = StudyMembership.objects.create(study=study, user=user, role=role)
    record_audit(
        study=study, action="member_added", actor=actor, member=user.get_username(), role=role
    )
    return membership


@transaction.atomic
def change_role(
    *, study: Study, user: AbstractBaseUser, role: str, actor: AbstractBaseUser | None
) -> StudyMembership:
    """Set a member's role; the last owner cannot be demoted."""
    access.require(actor, Action.MANAGE, study)
    study = _locked(study)
    role = _check_role(role)
    membership = study.memberships.filter(user=user).first()
    if membership is None:
        raise MembershipError(f"{user.get_username()} is not a member of this study")
    if membership.role == role:
        return membership
    if membership.role == Role.OWNER and not _owners_left_without(study, user):
        raise MembershipError("a study needs an owner: make someone else owner first")
    previous = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    record_audit(
        study=study,
        action="member_role_changed",
        actor=actor,
        member=user.get_username(),
        old=previous,
        new=role,
    )
    return membership


@transaction.atomic
def remove_member(*, study: Study, user: AbstractBaseUser, actor: AbstractBaseUser | None) -> None:
    """Take a researcher off the study; the last owner cannot be removed."""
    access.require(actor, Action.MANAGE, study)
    study = _locked(study)
    membership = study.memberships.filter(user=user).first()
    if membership is None:
        raise MembershipError(f"{user.get_username()} is not a member of this study")
    if membership.role == Role.OWNER and not _owners_left_without(study, user):
        raise MembershipError("a study needs an owner: make someone else owner first")
    membership.delete()
    record_audit(
        study=study,
        action="member_removed",
        actor=actor,
        member=user.get_username(),
        role=membership.role,
    )


def members_of(study: Study) -> list[StudyMembership]:
    """The study's members, owners first, then by username."""
    order = {Role.OWNER: 0, Role.EDITOR: 1, Role.VIEWER: 2}
    rows = list(study.memberships.select_related("user"))
    return sorted(rows, key=lambda m: (order.get(m.role, 9), m.user.get_username()))
