"""The load benchmark's floor: the cheapest page that still reads one row, for comparison."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studies.models import Study


@never_cache
@require_GET
def floor(request: HttpRequest) -> HttpResponse:
    """One indexed read and a few bytes of text: what any participant page costs at least.

    Mounted only when BENCH_ENDPOINTS is on (config/urls.py), so production never serves it.
    """
    slug = Study.objects.order_by("pk").values_list("slug", flat=True).first()
    return HttpResponse(slug or "-", content_type="text/plain; charset=utf-8")
