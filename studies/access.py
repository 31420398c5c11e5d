"""The one permission function: who may see or change which study, and which model.

Every page, download, API endpoint, admin queryset, form choice and command asks here;
nothing else decides access. Roles per study: owner (everything, members and deletion
included), editor (design, stimuli, review, lifecycle), viewer (read, results, exports).
Raw recruitment ids are for owners only (Action.SEE_RECRUITMENT_IDS).
Superusers may do everything. Anyone else gets "not found", so slugs do not leak.
Accounts made only to code (the ``coder`` group, annotation.coding) are not researchers:
they reach their coding tasks and no researcher page or API (``is_researcher``).
"""

from __future__ import annotations

from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from studies.models import LanguageModel, Study, StudyMembership

Role = StudyMembership.Role


class Action(StrEnum):
    VIEW = "view"  # pages, results, exports, the audit log
    EDIT = "edit"  # design, stimuli, generation, review, lifecycle
    MANAGE = "manage"  # members, archive, delete
    # Raw recruitment ids (approve / reject / bonus lists, deleting a person's data by their
    # id): owners and superusers only, each read audited.
    SEE_RECRUITMENT_IDS = "see_recruitment_ids"


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.EDITOR: frozenset({Action.VIEW, Action.EDIT}),
    Role.VIEWER: frozenset({Action.VIEW}),
}

ROLES_FOR: dict[Action, tuple[str, ...]] = {
    action: tuple(role for role, actions in ROLE_ACTIONS.items() if action in actions)
    for action in Action
}


# Accounts a researcher makes on a coding task's invite page to code and nothing else.
CODER_GROUP = "coder"


def _signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_coder_only(user) -> bool:
    """An account made to code and nothing else (the ``coder`` group), not a superuser."""
    return (
        _signed_in(user) and not user.is_superuser and user.groups.filter(name=CODER_GROUP).exists()
    )


def is_researcher(user) -> bool:
    """A signed-in account that may use the researcher side: anyone but a coder-only account."""
    return _signed_in(user) and not is_coder_only(user)


def role_in(user, study: Study) -> str | None:
    """The user's role in the study, or None; superusers count as owners everywhere."""
    if not _signed_in(user):
        return None
    if user.is_superuser:
        return Role.OWNER
    return (
        StudyMembership.objects.filter(study=study, user=user).values_list("role", flat=True)
    ).first()


def can(user, action: Action, study: Study) -> bool:
    role = role_in(user, study)
    return role is not None and Action(action) in ROLE_ACTIONS[role]


def studies_for(user, action: Action = Action.VIEW) -> QuerySet[Study]:
    """The studies on which the user may perform ``action``."""
    if not _signed_in(user):
        return Study.objects.none()
    if user.is_superuser:
        return Study.objects.all()
    return Study.objects.filter(
        memberships__user=user, memberships__role__in=ROLES_FOR[Action(action)]
    ).distinct()


def study_for(user, slug: str, action: Action = Action.VIEW) -> Study:
    """The study named ``slug`` if the user may perform ``action`` on it.

    Raises Http404 when the user may not even see it (absent and "not yours" look the
    same) and PermissionDenied when they may see it but not do this.
    """
    study = studies_for(user, Action.VIEW).filter(slug=slug).first()
    if study is None:
        raise Http404("No such study.")
    if not can(user, action, study):
        raise PermissionDenied(f"Your role in this study does not allow this ({action}).")
    return study


def require(user, action: Action, study: Study) -> None:
    """Raise as study_for does, for a study already in hand."""
    if not can(user, Action.VIEW, study):
        raise Http404("No such study.")
    if not can(user, action, study):
        raise PermissionDenied(f"Your role in this study does not allow this ({action}).")


# --- Models in the registry -------------------------------------------------------------


def models_for(user) -> QuerySet[LanguageModel]:
    """Models the user may see and use in a job: their own, shared ones; all for superusers."""
    if not _signed_in(user):
        return LanguageModel.objects.none()
    if user.is_superuser:
        return LanguageModel.objects.all()
    return LanguageModel.objects.filter(Q(owner=user) | Q(shared=True))


def can_use_model(user, model: LanguageModel) -> bool:
    return models_for(user).filter(pk=model.pk).exists()


def can_change_model(user, model: LanguageModel) -> bool:
    """Only a model's owner or a superuser may change it."""
    if not _signed_in(user):
        return False
    return user.is_superuser or (model.owner_id is not None and model.owner_id == user.pk)


def can_change_model_endpoint(user) -> bool:
    """Where a model's requests (and its API key) go: superusers only, audited."""
    return _signed_in(user) and user.is_superuser
