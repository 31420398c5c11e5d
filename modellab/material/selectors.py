"""Reads both material generators share: a researcher's own jobs, and one of them or 404."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from modellab.models.material import MaterialJob


def owned_jobs(job_model: type[MaterialJob], user, *related: str) -> QuerySet:
    """The jobs ``user`` started (every job for a superuser; none for anyone signed out), with
    ``related`` selected."""
    if user is None or not user.is_authenticated or not user.is_active:
        return job_model.objects.none()
    jobs = job_model.objects.select_related(*related)
    return jobs if user.is_superuser else jobs.filter(owner=user)


def owned_job(jobs: QuerySet, pk: int | str, *, what: str) -> MaterialJob:
    """The job ``pk`` among ``jobs`` (the user's); Http404 otherwise (absent and not yours
    look alike), naming ``what`` was looked for."""
    found = jobs.filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise Http404(f"No such {what}.")
    return found
