"""Researcher page of raw recruitment ids: approve, reject and bonus lists in the forms
Prolific's bulk tools accept, and deleting a person's data by their id. Owners and superusers
only (Action.SEE_RECRUITMENT_IDS); every read of ids writes an audit row."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from annotation import recruitment_ids
from annotation import selectors as participant_selectors
from annotation import services as participant_services
from studies.access import Action
from studies.models import Study
from studies.services import record_audit
from studies.views.common import study_for_request

LIST_TITLES = {
    "approve": "Approve: completed and not excluded",
    "reject": "Reject: excluded or screened out",
    "bonus": "Bonus: completed and not excluded",
}
# The most a bonus line may carry; a typo (1500 for 15.00) stops here.
MAX_BONUS = Decimal("1000.00")


class BonusForm(forms.Form):
    amount = forms.CharField(
        label="Bonus per participant",
        max_length=12,
        help_text="In the study's currency, with two decimals, e.g. 1.50.",
    )

    def clean_amount(self) -> str:
        text = self.cleaned_data["amount"].strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise forms.ValidationError("Enter an amount like 1.50.") from None
        if not value.is_finite() or value <= 0:
            raise forms.ValidationError("The bonus must be more than 0.")
        if value > MAX_BONUS:
            raise forms.ValidationError(f"The bonus must be at most {MAX_BONUS}.")
        if value != value.quantize(Decimal("0.01")):
            raise forms.ValidationError("Use at most two decimals, e.g. 1.50.")
        return f"{value.quantize(Decimal('0.01'))}"


class DeleteDataForm(forms.Form):
    recruitment_id = forms.CharField(
        label="Recruitment id",
        max_length=200,
        help_text="The participant id on the recruitment platform, e.g. their Prolific ID.",
    )
    confirm = forms.BooleanField(
        label="Delete this participant's answers for good (they are withdrawn from the study)",
        required=True,
        error_messages={"required": "Tick the box to confirm the deletion."},
    )


def _study(request: HttpRequest, slug: str) -> Study:
    return study_for_request(request, slug, Action.SEE_RECRUITMENT_IDS)


def _audit_read(request: HttpRequest, study: Study, name: str, how: str, entries, **extra):
    record_audit(
        study=study,
        action="recruitment_ids_read",
        actor=request.user,
        list=name,
        how=how,
        ids=sum(1 for e in entries if e.recruitment_id),
        erased=sum(1 for e in entries if e.missing == "erased"),
        unreadable=sum(1 for e in entries if e.missing == "unreadable"),
        **extra,
    )


def _page(
    request: HttpRequest,
    study: Study,
    *,
    bonus_form: BonusForm | None = None,
    delete_form: DeleteDataForm | None = None,
    status: int = 200,
) -> HttpResponse:
    shown = request.GET.get("show", "")
    entries = None
    if shown in LIST_TITLES and status == 200:
        entries = participant_selectors.recruitment_list(study, shown)
        _audit_read(request, study, shown, "page", entries)
    lists = [
        {
            "name": name,
            "title": title,
            "counts": participant_selectors.recruitment_list_counts(study, name),
        }
        for name, title in LIST_TITLES.items()
    ]
    context = {
        "study": study,
        "nav": "studies",
        "lists": lists,
        "shown": shown if entries is not None else "",
        "shown_title": LIST_TITLES.get(shown, ""),
        "entries": entries,
        "keys_configured": recruitment_ids.recruitment_keys_configured(),
        "bonus_form": bonus_form or BonusForm(),
        "delete_form": delete_form or DeleteDataForm(),
        "retention_days": study.retention_days,
    }
    return render(request, "studies/payments.html", context, status=status)


@never_cache
@login_required
@require_GET
def payments(request: HttpRequest, slug: str) -> HttpResponse:
    """Counts of each list; ``?show=approve`` lists that list's ids on the page (audited)."""
    return _page(request, _study(request, slug))


def _download(lines: list[str], filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse("".join(line + "\n" for line in lines), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def download_list(request: HttpRequest, slug: str, name: str) -> HttpResponse:
    """approve.txt or reject.txt: one recruitment id per line (erased ids left out)."""
    study = _study(request, slug)
    if name not in ("approve", "reject"):
        raise Http404("No such list.")
    entries = participant_selectors.recruitment_list(study, name)
    _audit_read(request, study, name, "download", entries)
    ids = [e.recruitment_id for e in entries if e.recruitment_id]
    return _download(ids, f"{study.slug}-{name}.txt", "text/plain; charset=utf-8")


@login_required
@require_GET
def download_bonus(request: HttpRequest, slug: str) -> HttpResponse:
    """bonus.csv: ``participant_id,amount`` lines for Prolific's bulk bonus, one amount for all."""
    study = _study(request, slug)
    form = BonusForm(request.GET)
    if not form.is_valid():
        return _page(request, study, bonus_form=form, status=400)
    amount = form.cleaned_data["amount"]
    entries = participant_selectors.recruitment_list(study, "bonus")
    _audit_read(request, study, "bonus", "download", entries, amount=amount)
    lines = [f"{e.recruitment_id},{amount}" for e in entries if e.recruitment_id]
    return _download(lines, f"{study.slug}-bonus.csv", "text/csv; charset=utf-8")


@login_required
@require_POST
def delete_data(request: HttpRequest, slug: str) -> HttpResponse:
    """Delete the answers of the participant with a recruitment id (audited by pseudonym)."""
    study = _study(request, slug)
    form = DeleteDataForm(request.POST)
    if not form.is_valid():
        return _page(request, study, delete_form=form, status=400)
    try:
        participant = participant_services.delete_participant_data(
            study=study, recruitment_id=form.cleaned_data["recruitment_id"], actor=request.user
        )
    except participant_services.ParticipantNotFound as exc:
        form.add_error("recruitment_id", f"Nothing deleted: {exc}.")
        return _page(request, study, delete_form=form, status=400)
    messages.success(
        request,
        f"Participant {participant.pseudonym[:16]} is withdrawn and their answers are deleted.",
    )
    return redirect("studies:payments", slug=study.slug)
