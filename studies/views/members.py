"""Researcher page of a study's members: who has which role; owners add, change and remove."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from studies import access, members
from studies.access import Action
from studies.models import StudyMembership
from studies.views.common import study_for_request


class AddMemberForm(forms.Form):
    identifier = forms.CharField(
        label="Username or e-mail", max_length=254, help_text="An e-mail must match one account."
    )
    role = forms.ChoiceField(choices=StudyMembership.Role.choices, initial="editor")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=StudyMembership.Role.choices)


@login_required
def member_list(request: HttpRequest, slug: str, form: AddMemberForm | None = None):
    study = study_for_request(request, slug, Action.VIEW)
    return render(
        request,
        "studies/members.html",
        {
            "study": study,
            "members": members.members_of(study),
            "can_manage": access.can(request.user, Action.MANAGE, study),
            "form": form or AddMemberForm(),
            "roles": StudyMembership.Role.choices,
            "nav": "studies",
        },
        status=400 if form is not None else 200,
    )


@login_required
@require_POST
def member_add(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.MANAGE)
    form = AddMemberForm(request.POST)
    if form.is_valid():
        try:
            membership = members.add_member(
                study=study,
                identifier=form.cleaned_data["identifier"],
                role=form.cleaned_data["role"],
                actor=request.user,
            )
        except members.MembershipError as exc:
            form.add_error("identifier", str(exc))
        else:
            messages.success(
                request, f"{membership.user.get_username()} added as {membership.role}."
            )
            return redirect("studies:members", slug=slug)
    return member_list(request, slug, form=form)


def _member(study, username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not study.memberships.filter(user=user).exists():
        raise Http404("No such member.")
    return user


@login_required
@require_POST
def member_change(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.MANAGE)
    user = _member(study, username)
    form = RoleForm(request.POST)
    try:
        if not form.is_valid():
            raise members.MembershipError("choose owner, editor or viewer")
        members.change_role(
            study=study, user=user, role=form.cleaned_data["role"], actor=request.user
        )
    except members.MembershipError as exc:
        messages.error(request, f"{username}: {exc}")
    else:
        messages.success(request, f"{username} is now {form.cleaned_data['role']}.")
    return redirect("studies:members", slug=slug)


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, username: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.MANAGE)
    user = _member(study, username)
    try:
        members.remove_member(study=study, user=user, actor=request.user)
    except members.MembershipError as exc:
        messages.error(request, f"{username}: {exc}")
    else:
        messages.success(request, f"{username} removed from the study.")
    return redirect("studies:members", slug=slug)
