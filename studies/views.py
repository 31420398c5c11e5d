"""Researcher pages: the studies a researcher owns and each one's progress."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from studies import selectors


def recruitment_link(entry_url: str, study) -> str:
    """The link to paste into Prolific, with its placeholders for the recruitment parameters."""
    params = "&".join(f"{name}={{{{%{name}%}}}}" for name in study.recruitment_params.values())
    return f"{entry_url}?{params}" if params else entry_url


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = selectors.studies_for_user(request.user).order_by("-created_at")
    return render(
        request,
        "studies/study_list.html",
        {"rows": [selectors.study_progress(study) for study in studies]},
    )


@login_required
def study_detail(request: HttpRequest, slug: str) -> HttpResponse:
    study = selectors.studies_for_user(request.user).filter(slug=slug).first()
    if study is None:
        # Same answer for "absent" and "not yours", so slugs of others' studies don't leak.
        raise Http404("No such study.")
    return render(
        request,
        "studies/study_detail.html",
        {
            "progress": selectors.study_progress(study),
            "problems": selectors.launch_problems(study)
            if study.status in ("draft", "review")
            else [],
            "recruitment_link": recruitment_link(
                request.build_absolute_uri(f"/s/{study.slug}/"), study
            ),
        },
    )
