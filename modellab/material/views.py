"""Page helpers both material generators share: the job list beside the form to start one."""

from __future__ import annotations

from collections.abc import Callable

from django import forms

from studies.generation.selectors import chat_models_for

RECENT = 30


def job_list_context(
    user,
    *,
    jobs: Callable,
    progress: Callable,
    form: forms.Form,
    recent: int = RECENT,
) -> dict:
    """The context of a generator's list page: the user's newest jobs with their progress, the
    form, and whether any chat model is there to pick."""
    return {
        "nav": "lab",
        "jobs": [{"job": j, "progress": progress(j)} for j in list(jobs(user)[:recent])],
        "form": form,
        "has_models": chat_models_for(user).exists(),
    }
