"""Researcher pages for reviewing response texts: the table, approve/reject/edit, bulk approve."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from studies import access, review, selectors
from studies.access import Action
from studies.errors import StudyStateError
from studies.generation import services as generation_services
from studies.models import ResponseVariant, Study
from studies.views.common import study_for_request

ROWS_PER_PAGE = 25


class EditTextForm(forms.Form):
    text = forms.CharField(label="Response text", widget=forms.Textarea(attrs={"rows": 10}))
    approve = forms.BooleanField(
        required=False,
        label="Approve this text",
        help_text="Makes it the text participants see for this query and type.",
    )


def _next(request: HttpRequest) -> str:
    """Where the researcher came from (a filtered review page), if it is on this site."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return ""


def _back(request: HttpRequest, study: Study) -> HttpResponseRedirect:
    return HttpResponseRedirect(_next(request) or reverse("studies:review", args=[study.slug]))


def _variant(study: Study, pk: int) -> ResponseVariant:
    variants = ResponseVariant.objects.select_related("query")
    return get_object_or_404(variants, pk=pk, query__study=study)


@login_required
def review_table(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.VIEW)
    filterset = review.ReviewFilter(request.GET or None, queryset=review.review_queryset(study))
    page = Paginator(filterset.qs, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    editable = review.texts_editable(study)
    return render(
        request,
        "studies/review/table.html",
        {
            "study": study,
            "nav": "studies",
            "filter": filterset,
            "page": page,
            "rows": review.review_rows(list(page.object_list)),
            "querystring": params.urlencode(),
            "editable": editable,
            "can_review": editable and access.can(request.user, Action.EDIT, study),
            "problems": selectors.launch_problems(study) if editable else [],
            "next": request.get_full_path(),
        },
    )


def _act(request: HttpRequest, study: Study, action, done: str) -> HttpResponseRedirect:
    try:
        action()
    except (StudyStateError, ValueError) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done)
    return _back(request, study)


@login_required
@require_POST
def approve(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug, Action.EDIT)
    variant = _variant(study, pk)
    return _act(
        request,
        study,
        lambda: generation_services.approve_variant(variant=variant, actor=request.user),
        f"Approved {variant.query.query_id} · {variant.response_type}"
        f"{' · ' + variant.model_name if variant.model_name else ''}.",
    )


@login_required
@require_POST
def reject(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug, Action.EDIT)
    variant = _variant(study, pk)
    return _act(
        request,
        study,
        lambda: generation_services.reject_variant(variant=variant, actor=request.user),
        f"Rejected {variant.query.query_id} · {variant.response_type}"
        f"{' · ' + variant.model_name if variant.model_name else ''}.",
    )


@login_required
@require_POST
def approve_selected(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.EDIT)
    try:
        ids = [int(v) for v in request.POST.getlist("variant")]
    except ValueError:
        ids = []
    try:
        n = generation_services.approve_variants(study=study, variant_ids=ids, actor=request.user)
    except (StudyStateError, ValueError) as exc:
        messages.error(request, f"Nothing was approved: {exc}")
    else:
        messages.success(request, f"Approved {n} text(s).")
    return _back(request, study)


@login_required
@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Edit one text (the no-JavaScript way, and where the inline editor posts to)."""
    study = study_for_request(request, slug, Action.EDIT)
    variant = _variant(study, pk)
    editable = review.texts_editable(study)
    status = 200
    if request.method == "POST":
        form = EditTextForm(request.POST)
        if form.is_valid():
            try:
                # Saving and approving together: either both happen or neither.
                with transaction.atomic():
                    generation_services.edit_variant(
                        variant=variant, text=form.cleaned_data["text"], actor=request.user
                    )
                    if form.cleaned_data["approve"]:
                        generation_services.approve_variant(variant=variant, actor=request.user)
            except ValueError as exc:
                form.add_error("text", str(exc))
            except StudyStateError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"Saved the text of {variant.query.query_id} · {variant.response_type}.",
                )
                return _back(request, study)
        status = 400
    else:
        form = EditTextForm(initial={"text": variant.text})
    return render(
        request,
        "studies/review/edit.html",
        {
            "study": study,
            "nav": "studies",
            "variant": variant,
            "provenance": review.provenance(variant),
            "form": form,
            "editable": editable,
            "can_review": editable,
            "next": _next(request),
        },
        status=status,
    )
