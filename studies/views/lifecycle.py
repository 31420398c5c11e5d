"""Researcher pages for a study's lifecycle: each change shows what it will do (GET) and
does it on confirmation (POST), without JavaScript."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation.models import Participant
from studies import access, lifecycle, selectors
from studies.access import Action
from studies.design import between_cells
from studies.errors import LaunchRefused, StudyStateError
from studies.models import Study
from studies.spec import design_from_spec
from studies.views.common import study_for_request

Status = Study.Status


class PilotForm(forms.Form):
    pilot_slots = forms.IntegerField(
        label="Pilot slots",
        min_value=1,
        help_text="How many participants take part in the pilot.",
    )

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.study = study
        self.fields[
            "pilot_slots"
        ].help_text += f" Fewer than the target of {study.target_participants}."

    def clean_pilot_slots(self) -> int:
        value = self.cleaned_data["pilot_slots"]
        if value >= self.study.target_participants:
            raise forms.ValidationError(
                f"A pilot must be smaller than the target of {self.study.target_participants} "
                "participants; use “Launch” to launch in full."
            )
        return value


class AddSlotsForm(forms.Form):
    count = forms.IntegerField(
        label="Slots to add",
        min_value=1,
        max_value=lifecycle.MAX_SLOTS,
        help_text="The target rises by this many; the new slots are balanced across cells.",
    )


class DeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the study's name to confirm", max_length=200)


@dataclass(frozen=True)
class LifecycleAction:
    key: str  # also the URL name, under "studies:"
    label: str
    permission: Action
    allowed: Callable[[Study], bool]
    form: type[forms.Form] | None = None
    danger: bool = False


def _launchable(study: Study) -> bool:
    return study.status in (Status.DRAFT, Status.REVIEW) and not selectors.launch_problems(study)


def _addable(study: Study) -> bool:
    return study.status in lifecycle.RUNNING and not lifecycle.awaiting_full_launch(study)


ACTIONS: dict[str, LifecycleAction] = {
    a.key: a
    for a in (
        LifecycleAction("launch", "Launch", Action.EDIT, _launchable),
        LifecycleAction(
            "launch-pilot",
            "Pilot launch",
            Action.EDIT,
            lambda s: _launchable(s) and s.target_participants > 1,
            form=PilotForm,
        ),
        LifecycleAction("launch-full", "Full launch", Action.EDIT, lifecycle.awaiting_full_launch),
        LifecycleAction("pause", "Pause", Action.EDIT, lambda s: s.status in lifecycle.PAUSABLE),
        LifecycleAction("resume", "Resume", Action.EDIT, lambda s: s.status in lifecycle.RESUMABLE),
        LifecycleAction(
            "close", "Close", Action.EDIT, lambda s: s.status in lifecycle.CLOSABLE, danger=True
        ),
        LifecycleAction("add-slots", "Add slots", Action.EDIT, _addable, form=AddSlotsForm),
        LifecycleAction(
            "archive", "Archive", Action.MANAGE, lambda s: s.status in lifecycle.ARCHIVABLE
        ),
        LifecycleAction(
            "delete",
            "Delete",
            Action.MANAGE,
            lambda s: s.status in lifecycle.DELETABLE,
            form=DeleteForm,
            danger=True,
        ),
    )
}


def available_actions(study: Study, user) -> list[dict]:
    """The lifecycle buttons this user may press on this study now."""
    return [
        {
            "key": a.key,
            "label": a.label,
            "url": f"/studies/{study.slug}/{a.key}/",
            "danger": a.danger,
        }
        for a in ACTIONS.values()
        if access.can(user, a.permission, study) and a.allowed(study)
    ]


def _in_progress(study: Study) -> int:
    return Participant.objects.filter(
        study=study, status=Participant.Status.ACTIVE, consented_at__isnull=False
    ).count()


def _cell_count(study: Study) -> int:
    try:
        return len(between_cells(design_from_spec(selectors.study_spec(study))))
    except Exception:  # noqa: BLE001 - a draft's design may not be complete; the count is a hint
        return 0


def consequences(key: str, study: Study) -> list[str]:
    """What the action will do, in the researcher's words, for the confirmation page."""
    target = study.target_participants
    slots = lifecycle.slot_count(study)
    running = _in_progress(study)
    limit = study.time_limit_minutes
    if key == "launch":
        return [
            f"Creates {target} participant slots from the study's plan, balanced across "
            f"{_cell_count(study) or 'its'} between-participants cells.",
            "Opens the recruitment link: participants can join straight away.",
            "The study's texts and design become read-only; changing them later means "
            "duplicating the study as a new version.",
        ]
    if key == "launch-pilot":
        return [
            "Creates only the first slots of the plan (how many you choose below, fewer "
            f"than the target of {target}) and opens the recruitment link.",
            "Participants in these slots are flagged as pilot participants in the data and "
            "on the dashboard.",
            f"A “Full launch” later adds the remaining slots up to {target}.",
            "The study's texts and design become read-only.",
        ]
    if key == "launch-full":
        return [
            f"Creates the remaining {max(target - slots, 0)} slots up to the target of "
            f"{target}, continuing the same balanced plan.",
            "Participants who join from now on are not pilot participants; the pilot's "
            "participants stay flagged.",
            "The study is live afterwards (also if it was paused).",
        ]
    if key == "pause":
        return [
            "New arrivals see a page saying the study is paused and not accepting "
            "participants at the moment.",
            f"The {running} people in progress may finish within their time limit "
            f"({limit} minutes).",
            "You can resume at any time.",
        ]
    if key == "resume":
        return ["New participants may join again through the recruitment link."]
    if key == "close":
        return [
            "No new arrivals, ever again: the study cannot be reopened (duplicate it to run "
            "it again). New arrivals see a page saying the study has closed.",
            f"The {running} people in progress may finish within their time limit "
            f"({limit} minutes).",
        ]
    if key == "add-slots":
        return [
            f"Raises the target from {target} participants by the number you choose.",
            "The new slots continue the study's balanced plan: the between-participants "
            "cells with fewer slots get the new ones first, and the cells stay within one "
            "slot of each other.",
        ]
    if key == "archive":
        return [
            "Hides the study from the study list (use “Show archived” to see it).",
            "Its data, results and exports stay as they are.",
        ]
    if key == "delete":
        participants = Participant.objects.filter(study=study).count()
        return [
            f"Deletes the study, its {participants} participants with all their answers, "
            "its queries and texts, its results and its audit log — for good.",
            "This cannot be undone. Export anything you need first.",
        ]
    return []


def _perform(key: str, study: Study, user, data: dict) -> str:
    """Run the action's service; returns the message shown afterwards."""
    if key == "launch":
        slots = lifecycle.launch_study(study=study, actor=user)
        return f"{study.slug} is live with {slots} participant slots."
    if key == "launch-pilot":
        slots = lifecycle.launch_study(study=study, actor=user, pilot_slots=data["pilot_slots"])
        return f"{study.slug} is live as a pilot with {slots} slots."
    if key == "launch-full":
        slots = lifecycle.launch_full(study=study, actor=user)
        return f"Full launch: {slots} more slots; the study is live."
    if key == "pause":
        lifecycle.pause_study(study=study, actor=user)
        return "Paused: nobody new can join; people in progress may finish."
    if key == "resume":
        lifecycle.resume_study(study=study, actor=user)
        return "Resumed: new participants may join again."
    if key == "close":
        lifecycle.close_study(study=study, actor=user)
        return "Closed: nobody new can join, ever; people in progress may finish."
    if key == "add-slots":
        added = lifecycle.add_slots(study=study, count=data["count"], actor=user)
        return f"{added} slots added."
    if key == "archive":
        lifecycle.archive_study(study=study, actor=user)
        return "Archived: the study is hidden from the study list."
    if key == "delete":
        lifecycle.delete_study(study=study, confirm=data["confirm"], actor=user)
        return f"Study {study.slug} deleted."
    raise ValueError(key)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def lifecycle_action(request: HttpRequest, slug: str, action: str) -> HttpResponse:
    """The confirmation page of one lifecycle action, and the action itself on POST."""
    spec = ACTIONS[action]
    study = study_for_request(request, slug, spec.permission)
    form = None
    if spec.form is PilotForm:
        form = PilotForm(request.POST or None, study=study)
    elif spec.form is not None:
        form = spec.form(request.POST or None)
    error = ""
    status = 200
    if not spec.allowed(study):
        error = _refusal(spec, study)
        status = 409
    elif request.method == "POST":
        if form is not None and not form.is_valid():
            status = 400
        else:
            try:
                message = _perform(action, study, request.user, form.cleaned_data if form else {})
            except LaunchRefused as exc:
                error, status = "Launch refused: " + "; ".join(exc.reasons), 409
            except StudyStateError as exc:
                error = str(exc)
                status = 400 if action in ("delete", "add-slots") else 409
                if form is not None and action == "delete":
                    form.add_error("confirm", error)
                    error = ""
            else:
                messages.success(request, message)
                if action == "delete":
                    return redirect("studies:list")
                return redirect("studies:detail", slug=study.slug)
    return render(
        request,
        "studies/lifecycle/confirm.html",
        {
            "nav": "studies",
            "study": study,
            "action": spec,
            "consequences": consequences(action, study),
            "problems": selectors.launch_problems(study)
            if action in ("launch", "launch-pilot")
            else [],
            "form": form,
            "error": error,
            "allowed": spec.allowed(study),
        },
        status=status,
    )


def _refusal(spec: LifecycleAction, study: Study) -> str:
    if spec.key in ("launch", "launch-pilot") and study.status in (Status.DRAFT, Status.REVIEW):
        return "The study cannot be launched yet: see what is missing below."
    if spec.key == "launch-pilot" and study.target_participants <= 1:
        return "A pilot needs a target of more than one participant."
    if spec.key == "add-slots" and lifecycle.awaiting_full_launch(study):
        return "The pilot is still running: do the full launch before adding slots."
    if spec.key == "delete":
        return (
            f"The study is {study.status}; people may be taking it right now. "
            "Close it first, then delete it."
        )
    return f"“{spec.label}” is not possible while the study is {study.status}."
