"""What every researcher page shares: finding the study a request may act on."""

from __future__ import annotations

from django.http import HttpRequest

from studies import access
from studies.access import Action
from studies.models import Study


def study_for_request(request: HttpRequest, slug: str, action: Action = Action.VIEW) -> Study:
    """The study named in the URL, if the signed-in researcher may do ``action`` on it."""
    return access.study_for(request.user, slug, action)


def recruitment_link(entry_url: str, study: Study) -> str:
    """The link to paste into Prolific, with its placeholders for the recruitment parameters."""
    # PostgreSQL's jsonb does not keep key order, so the order is spelled out.
    names = [study.recruitment_params.get(k) for k in ("participant", "study", "session")]
    params = "&".join(f"{name}={{{{%{name}%}}}}" for name in names if name)
    return f"{entry_url}?{params}" if params else entry_url
