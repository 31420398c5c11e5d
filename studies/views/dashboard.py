"""The live dashboard's data, polled by static/js/dashboard.js on the study page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from studies import dashboard
from studies.views.common import study_for_request


@never_cache
@login_required
@require_http_methods(["GET", "HEAD"])
def dashboard_json(request: HttpRequest, slug: str) -> JsonResponse:
    """Numbers, figures and the tables' HTML (the same numbers, readable without a chart)."""
    study = study_for_request(request, slug)
    numbers = dashboard.dashboard_numbers(study)
    return JsonResponse(
        {
            "numbers": numbers,
            "figures": dashboard.dashboard_figures(numbers),
            "tables_html": render_to_string(
                "studies/_dashboard_tables.html", {"numbers": numbers}, request=request
            ),
        }
    )
