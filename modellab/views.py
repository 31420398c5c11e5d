"""The model lab's front page: where each of its questions is answered, for this researcher."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from studies import access


@login_required
def index(request: HttpRequest) -> HttpResponse:
    studies = access.studies_for(request.user).exclude(status="archived").order_by("title")
    return render(
        request,
        "modellab/index.html",
        {"nav": "lab", "studies": studies, "models": access.models_for(request.user)},
    )
