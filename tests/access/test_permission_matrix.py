"""Every researcher route × every kind of user gets the right answer, and refusals store nothing.

The routes come from the URLconf itself (pages, downloads and the API alike) and the admin
from its registry, so a new route without a rule in ROUTES makes this test fail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from studies.access import Action
from studies.domain import DEFAULT_INCLUSION
from studies.models import (
    AnalysisResult,
    GenerationJob,
    LanguageModel,
    ResponseVariant,
    Study,
    StudyMembership,
)

pytestmark = pytest.mark.django_db

ROLES = ("owner", "editor", "viewer", "other", "anonymous")
ROLE_ACTIONS = {
    "owner": set(Action),
    "editor": {Action.VIEW, Action.EDIT},
    "viewer": {Action.VIEW},
    "other": set(),
    "anonymous": set(),
}


@dataclass
class World:
    study: Study
    users: dict[str, object]
    job: GenerationJob
    variant: ResponseVariant
    model: LanguageModel
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """What a route needs: a study action (None: any signed-in researcher) and how to call it."""

    action: Action | None
    methods: tuple[str, ...] = ("GET",)
    kwargs: Callable[[World], dict] = lambda world: {}
    # What writes (every method but GET) need, when more than reading does.
    write_action: Action | None = None
    # A registry model's own routes: writes (or every method, with "all") for its owner only.
    model_owner_only: str = ""
    # A coding task's own routes: its owner (who is also invited to code it) only; 404 to others.
    coding_task_only: bool = False

    def needs(self, method: str) -> Action | None:
        return self.write_action if method != "GET" and self.write_action else self.action


def _slug(world: World) -> dict:
    return {"slug": world.study.slug}


def _model(world: World) -> dict:
    return {"name": world.model.name}


def _member(world: World) -> dict:
    return {"slug": world.study.slug, "username": "viewer"}


def _block(world: World) -> dict:
    return {"slug": world.study.slug, "key": world.study.blocks.first().key}


def _participant(world: World) -> dict:
    from annotation.models import Participant

    participant, _ = Participant.objects.get_or_create(
        study=world.study, pseudonym="matrix-participant"
    )
    return {"slug": world.study.slug, "pk": participant.pk}


def _export(world: World) -> dict:
    """A finished export of the world's study, its file on disk (no recruitment ids)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from studies.models import ExportJob

    job = ExportJob.objects.filter(study=world.study, status="done").first()
    if job is None:
        relative = f"{world.study.slug}/matrix.zip"
        path = settings.EXPORT_ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
        job = ExportJob.objects.create(
            study=world.study,
            status="done",
            file_path=relative,
            expires_at=timezone.now() + timedelta(hours=1),
        )
    return {"slug": world.study.slug, "pk": job.pk}


def _variant(world: World) -> dict:
    return {"slug": world.study.slug, "pk": world.variant.pk}


def _power(world: World) -> dict:
    """A finished (empty) power analysis of the world's study."""
    from studies.models import PowerAnalysis

    power = PowerAnalysis.objects.filter(study=world.study).first()
    if power is None:
        power = PowerAnalysis.objects.create(
            study=world.study, status="done", params={"assumptions": {}, "settings": {}}
        )
    return {"slug": world.study.slug, "pk": power.pk}


def _results(name_key: str | None = None, name: str | None = None) -> Callable[[World], dict]:
    def kwargs(world: World) -> dict:
        values = {"slug": world.study.slug, "include": DEFAULT_INCLUSION}
        if name_key:
            values[name_key] = name
        return values

    return kwargs


# Routes anyone may reach (sign-in pages, the landing page, the API's description).
PUBLIC = {
    "home",
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "api-schema",
    "api-docs",
    "studies:api-token",
}
# Signed-in pages about the account itself, not a study.
ACCOUNT = {"password_change", "password_change_done"}


def _classification_run(world: World) -> dict:
    """A finished (empty) model-behaviour classification run of the world's study."""
    from modellab.models import ClassificationRun

    run = ClassificationRun.objects.filter(study=world.study).first()
    if run is None:
        run = ClassificationRun.objects.create(
            study=world.study, classifier="string_match", scheme="three_way", status="done"
        )
    return {"slug": world.study.slug, "pk": run.pk}


def _reward_run(world: World) -> dict:
    """A finished (empty) reward-scoring run of the world's study."""
    from modellab.models import RewardRun

    run = RewardRun.objects.filter(study=world.study).first()
    if run is None:
        run = RewardRun.objects.create(
            study=world.study, model=world.model, scorer="llm_judge", status="done"
        )
    return {"slug": world.study.slug, "pk": run.pk}


def _coding_task(world: World) -> dict:
    """A coding task (no items) owned by the user called "owner", who is invited to code it."""
    from annotation.coding.models import CodingMember, CodingTask

    task = CodingTask.objects.filter(study=world.study).first()
    if task is None:
        owner = world.users["owner"]
        task = CodingTask.objects.create(
            title="matrix", owner=owner, study=world.study, scheme="three_way", overlap=2
        )
        CodingMember.objects.create(task=task, user=owner)
    return {"pk": task.pk}


def _prompt_set(world: World) -> dict:
    """A false-refusal prompt set (one prompt) owned by the user called "owner"."""
    from modellab.models import FalseRefusalPrompt, PromptSet

    prompt_set = PromptSet.objects.filter(owner=world.users["owner"]).first()
    if prompt_set is None:
        prompt_set = PromptSet.objects.create(
            name="matrix", owner=world.users["owner"], source_name="m.csv", sha256="0" * 64
        )
        FalseRefusalPrompt.objects.create(
            prompt_set=prompt_set, position=1, external_id="1", text="hi", label="all", line=2
        )
    return {"pk": prompt_set.pk}


def _false_refusal_run(world: World) -> dict:
    """A finished (empty) false-refusal run, started by the user called "owner"."""
    from modellab.models import FalseRefusalRun, PromptSet

    prompt_set = PromptSet.objects.get(pk=_prompt_set(world)["pk"])
    run = FalseRefusalRun.objects.filter(prompt_set=prompt_set).first()
    if run is None:
        run = FalseRefusalRun.objects.create(
            prompt_set=prompt_set,
            classifier="string_match",
            status="done",
            created_by=world.users["owner"],
        )
    return {"pk": run.pk}


def _pseudo_harmful_job(world: World) -> dict:
    """A finished (empty) pseudo-harmful job of the user called "owner"."""
    from modellab.models import PseudoHarmfulJob

    job = PseudoHarmfulJob.objects.filter(owner=world.users["owner"]).first()
    if job is None:
        job = PseudoHarmfulJob.objects.create(
            name="matrix",
            owner=world.users["owner"],
            generator=world.model,
            instruction="x",
            status="done",
        )
    return {"pk": job.pk}


def _query_scenario_job(world: World) -> dict:
    """A finished (empty) query-scenario job of the user called "owner"."""
    from modellab.models import QueryScenarioJob

    job = QueryScenarioJob.objects.filter(owner=world.users["owner"]).first()
    if job is None:
        job = QueryScenarioJob.objects.create(
            name="matrix",
            owner=world.users["owner"],
            generator=world.model,
            instruction="x",
            status="done",
        )
    return {"pk": job.pk}


ROUTES: dict[str, Rule] = {
    "studies:list": Rule(None),
    "studies:models": Rule(None, ("GET", "POST")),
    "studies:detail": Rule(Action.VIEW, kwargs=_slug),
    "studies:generate": Rule(Action.EDIT, ("POST",), _slug),
    "studies:cancel-job": Rule(
        Action.EDIT, ("POST",), lambda w: {"slug": w.study.slug, "pk": w.job.pk}
    ),
    "studies:results": Rule(Action.VIEW, kwargs=_slug),
    "studies:recompute": Rule(Action.VIEW, ("POST",), _slug),
    "studies:results-table": Rule(Action.VIEW, kwargs=_results("name", "descriptives")),
    "studies:results-figure": Rule(Action.VIEW, kwargs=_results("name", "coefficients")),
    "studies:results-report": Rule(Action.VIEW, kwargs=_results()),
    "studies:results-ratings": Rule(Action.VIEW, kwargs=_results()),
    "studies:results-block-answers": Rule(Action.VIEW, kwargs=_results()),
    "studies:results-codebook-md": Rule(Action.VIEW, kwargs=_slug),
    "studies:results-codebook-json": Rule(Action.VIEW, kwargs=_slug),
    # stimuli and review
    "studies:stimuli-upload": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:stimuli-confirm": Rule(Action.EDIT, ("POST",), _slug),
    "studies:stimuli-download": Rule(Action.VIEW, kwargs=_slug),
    "studies:queries": Rule(Action.VIEW, kwargs=_slug),
    "studies:query": Rule(
        Action.VIEW, kwargs=lambda w: {"slug": w.study.slug, "query_id": w.variant.query.query_id}
    ),
    "studies:review": Rule(Action.VIEW, kwargs=_slug),
    "studies:review-approve-selected": Rule(Action.EDIT, ("POST",), _slug),
    "studies:review-approve": Rule(Action.EDIT, ("POST",), _variant),
    "studies:review-reject": Rule(Action.EDIT, ("POST",), _variant),
    "studies:review-edit": Rule(Action.EDIT, ("GET", "POST"), _variant),
    # lifecycle, dashboard, preview, audit
    "studies:launch": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:launch-pilot": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:launch-full": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:pause": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:resume": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:close": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:add-slots": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:archive": Rule(Action.MANAGE, ("GET", "POST"), _slug),
    "studies:delete": Rule(Action.MANAGE, ("GET", "POST"), _slug),
    "studies:audit": Rule(Action.VIEW, kwargs=_slug),
    # exports (viewers too: their role is "read, results, exports")
    "studies:exports": Rule(Action.VIEW, ("GET", "POST"), _slug),
    "studies:export-download": Rule(Action.VIEW, kwargs=_export),
    "studies:api-exports": Rule(Action.VIEW, ("GET", "POST"), _slug),
    "studies:api-export": Rule(Action.VIEW, kwargs=_export),
    "studies:api-export-download": Rule(Action.VIEW, kwargs=_export),
    # participants and quality screening
    "studies:participants": Rule(Action.VIEW, kwargs=_slug),
    "studies:participants-screen": Rule(Action.EDIT, ("POST",), _slug),
    "studies:participants-confirm-flagged": Rule(Action.EDIT, ("POST",), _slug),
    "studies:participant-decide": Rule(Action.EDIT, ("POST",), _participant),
    "studies:api-study-participants": Rule(Action.VIEW, kwargs=_slug),
    "studies:api-participant-decision": Rule(Action.EDIT, ("POST",), _participant),
    "studies:api-study-quality-checks": Rule(Action.EDIT, ("POST",), _slug),
    "studies:dashboard-json": Rule(Action.VIEW, kwargs=_slug),
    "studies:preview": Rule(Action.EDIT, ("GET", "POST"), _slug),
    "studies:preview-page": Rule(Action.EDIT, ("GET", "POST"), _slug),
    # builder
    "studies:new": Rule(None, ("GET", "POST")),
    "studies:design": Rule(Action.VIEW, kwargs=_slug),
    "studies:design-section": Rule(
        Action.VIEW,
        ("GET", "POST"),
        lambda w: {"slug": w.study.slug, "section": "metadata"},
        write_action=Action.EDIT,
    ),
    "studies:design-blocks": Rule(Action.VIEW, kwargs=_slug),
    "studies:design-block-new": Rule(Action.VIEW, ("GET", "POST"), _slug, write_action=Action.EDIT),
    "studies:design-block": Rule(Action.VIEW, ("GET", "POST"), _block, write_action=Action.EDIT),
    "studies:design-block-action": Rule(Action.EDIT, ("POST",), _block),
    "studies:spec-download": Rule(Action.VIEW, kwargs=_slug),
    "studies:duplicate": Rule(Action.VIEW, ("GET", "POST"), _slug),
    "studies:plan": Rule(Action.VIEW, kwargs=_slug),
    # members
    "studies:members": Rule(Action.VIEW, kwargs=_slug),
    "studies:member-add": Rule(Action.MANAGE, ("POST",), _slug),
    "studies:member-change": Rule(Action.MANAGE, ("POST",), _member),
    "studies:member-remove": Rule(Action.MANAGE, ("POST",), _member),
    # recruitment ids: owners and superusers only
    "studies:payments": Rule(Action.SEE_RECRUITMENT_IDS, kwargs=_slug),
    "studies:payments-list": Rule(
        Action.SEE_RECRUITMENT_IDS, kwargs=lambda w: {"slug": w.study.slug, "name": "approve"}
    ),
    "studies:payments-bonus": Rule(Action.SEE_RECRUITMENT_IDS, kwargs=_slug),
    "studies:payments-delete": Rule(Action.SEE_RECRUITMENT_IDS, ("POST",), _slug),
    # the model registry
    "studies:model-edit": Rule(None, ("GET", "POST"), _model, model_owner_only="all"),
    "studies:api-models": Rule(None, ("GET", "POST")),
    "studies:api-model": Rule(None, ("GET", "PUT"), _model, model_owner_only="writes"),
    # the REST API
    "studies:api-studies": Rule(None, ("GET", "POST")),
    "studies:api-study": Rule(Action.VIEW, ("GET", "PUT"), _slug, write_action=Action.EDIT),
    "studies:api-study-duplicate": Rule(Action.VIEW, ("POST",), _slug),
    "studies:api-study-stimuli": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-study-queries": Rule(Action.VIEW, kwargs=_slug),
    "studies:api-study-audit": Rule(Action.VIEW, kwargs=_slug),
    "studies:api-variants": Rule(Action.VIEW, kwargs=_slug),
    "studies:api-variants-approve": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-variant": Rule(Action.VIEW, ("GET", "PATCH"), _variant, write_action=Action.EDIT),
    "studies:api-variant-approve": Rule(Action.EDIT, ("POST",), _variant),
    "studies:api-variant-reject": Rule(Action.EDIT, ("POST",), _variant),
    "studies:api-study-launch": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-study-launch-full": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-study-pause": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-study-resume": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-study-close": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-study-add-slots": Rule(Action.EDIT, ("POST",), _slug),
    "studies:api-study-archive": Rule(Action.MANAGE, ("POST",), _slug),
    "studies:api-study-delete": Rule(Action.MANAGE, ("POST",), _slug),
    "studies:api-members": Rule(Action.VIEW, ("GET", "POST"), _slug, write_action=Action.MANAGE),
    "studies:api-member": Rule(Action.MANAGE, ("PATCH", "DELETE"), _member),
    "studies:api-study-dashboard": Rule(Action.VIEW, kwargs=_slug),
    "studies:api-study-analysis": Rule(Action.VIEW, ("GET", "POST"), _slug),
    # power planning: viewers see the runs, editors start them
    "studies:power": Rule(Action.VIEW, ("GET", "POST"), _slug, write_action=Action.EDIT),
    "studies:power-run": Rule(Action.VIEW, kwargs=_power),
    "studies:power-csv": Rule(Action.VIEW, kwargs=_power),
    "studies:api-study-power-analyses": Rule(
        Action.VIEW, ("GET", "POST"), _slug, write_action=Action.EDIT
    ),
    "studies:api-study-power-analysis": Rule(Action.VIEW, kwargs=_power),
    "studies:api-study-jobs": Rule(Action.VIEW, ("GET",), _slug),
    "studies:api-job": Rule(Action.VIEW, kwargs=lambda w: {"pk": w.job.pk}),
    "studies:api-job-cancel": Rule(Action.EDIT, ("POST",), lambda w: {"pk": w.job.pk}),
    # model behaviour: viewers see runs and downloads, editors start and cancel runs
    "modellab:behaviour": Rule(Action.VIEW, ("GET", "POST"), _slug, write_action=Action.EDIT),
    "modellab:behaviour-run": Rule(Action.VIEW, kwargs=_classification_run),
    "modellab:behaviour-cancel": Rule(Action.EDIT, ("POST",), _classification_run),
    "modellab:behaviour-labels-csv": Rule(Action.VIEW, kwargs=_classification_run),
    "modellab:behaviour-distribution-csv": Rule(Action.VIEW, kwargs=_classification_run),
    "modellab:api-behaviour-runs": Rule(
        Action.VIEW, ("GET", "POST"), _slug, write_action=Action.EDIT
    ),
    "modellab:api-behaviour-run": Rule(Action.VIEW, kwargs=_classification_run),
    # reward scoring: viewers see runs, scores and agreement; editors start and cancel runs
    "modellab:rewards": Rule(Action.VIEW, ("GET", "POST"), _slug, write_action=Action.EDIT),
    "modellab:rewards-cancel": Rule(Action.EDIT, ("POST",), _reward_run),
    "modellab:api-reward-run-cancel": Rule(Action.EDIT, ("POST",), _reward_run),
    "modellab:rewards-csv": Rule(Action.VIEW, kwargs=_reward_run),
    "modellab:rewards-agreement-csv": Rule(Action.VIEW, kwargs=_reward_run),
    "modellab:api-reward-runs": Rule(Action.VIEW, ("GET", "POST"), _slug, write_action=Action.EDIT),
    "modellab:api-reward-run": Rule(Action.VIEW, kwargs=_reward_run),
    "modellab:api-reward-run-scores": Rule(Action.VIEW, kwargs=_reward_run),
    "modellab:api-reward-run-agreement": Rule(Action.VIEW, kwargs=_reward_run),
    "modellab:index": Rule(None),
    # false refusal: any researcher has their own prompt sets and runs; others get 404
    # (coding_task_only: the user called "owner" made them)
    "modellab:false-refusal": Rule(None, ("GET", "POST")),
    "modellab:false-refusal-set": Rule(None, kwargs=_prompt_set, coding_task_only=True),
    "modellab:false-refusal-run": Rule(None, kwargs=_false_refusal_run, coding_task_only=True),
    "modellab:false-refusal-retry": Rule(
        None, ("POST",), _false_refusal_run, coding_task_only=True
    ),
    "modellab:false-refusal-responses-csv": Rule(
        None, kwargs=_false_refusal_run, coding_task_only=True
    ),
    "modellab:api-false-refusal-prompt-sets": Rule(None, ("GET", "POST")),
    "modellab:api-false-refusal-prompt-set": Rule(None, kwargs=_prompt_set, coding_task_only=True),
    "modellab:api-false-refusal-runs": Rule(None, ("GET", "POST")),
    "modellab:api-false-refusal-run": Rule(None, kwargs=_false_refusal_run, coding_task_only=True),
    "modellab:false-refusal-cancel": Rule(
        None, ("POST",), _false_refusal_run, coding_task_only=True
    ),
    "modellab:api-false-refusal-run-cancel": Rule(
        None, ("POST",), _false_refusal_run, coding_task_only=True
    ),
    "modellab:api-false-refusal-run-resume": Rule(
        None, ("POST",), _false_refusal_run, coding_task_only=True
    ),
    # generated study material: any researcher has a list and a form; a job is its owner's
    "modellab:pseudo-harmful": Rule(None, ("GET", "POST")),
    "modellab:api-pseudo-harmful-jobs": Rule(None, ("GET", "POST")),
    "modellab:query-scenarios": Rule(None, ("GET", "POST")),
    "modellab:api-query-scenario-jobs": Rule(None, ("GET", "POST")),
    "modellab:pseudo-harmful-job": Rule(None, kwargs=_pseudo_harmful_job, coding_task_only=True),
    "modellab:pseudo-harmful-cancel": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:pseudo-harmful-resume": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:pseudo-harmful-finalise": Rule(
        None, ("GET", "POST"), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:pseudo-harmful-report": Rule(None, kwargs=_pseudo_harmful_job, coding_task_only=True),
    "modellab:pseudo-harmful-report-json": Rule(
        None, kwargs=_pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:pseudo-harmful-export-csv": Rule(
        None, kwargs=_pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:pseudo-harmful-export-jsonl": Rule(
        None, kwargs=_pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:pseudo-harmful-measure": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:pseudo-harmful-queries": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-job": Rule(
        None, kwargs=_pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-cancel": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-resume": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-candidates": Rule(
        None, kwargs=_pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-finalise": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-report": Rule(
        None, kwargs=_pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-export": Rule(
        None, kwargs=_pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-measure": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:api-pseudo-harmful-queries": Rule(
        None, ("POST",), _pseudo_harmful_job, coding_task_only=True
    ),
    "modellab:query-scenarios-job": Rule(None, kwargs=_query_scenario_job, coding_task_only=True),
    "modellab:query-scenarios-cancel": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:query-scenarios-resume": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:query-scenarios-finalise": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:query-scenarios-add": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:query-scenarios-csv": Rule(None, kwargs=_query_scenario_job, coding_task_only=True),
    "modellab:query-scenarios-jsonl": Rule(None, kwargs=_query_scenario_job, coding_task_only=True),
    "modellab:api-query-scenario-job": Rule(
        None, kwargs=_query_scenario_job, coding_task_only=True
    ),
    "modellab:api-query-scenario-job-cancel": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:api-query-scenario-job-resume": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:api-query-scenario-job-finalise": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:api-query-scenario-job-add": Rule(
        None, ("POST",), _query_scenario_job, coding_task_only=True
    ),
    "modellab:api-query-scenario-candidates": Rule(
        None, kwargs=_query_scenario_job, coding_task_only=True
    ),
    # human coding: any researcher has a list of tasks; a task is its owner's (and coders')
    "annotation:coding-tasks": Rule(None),
    "annotation:coding-new": Rule(None, ("GET", "POST")),
    "annotation:coding-mine": Rule(None),
    "annotation:api-coding-tasks": Rule(None),
    "annotation:coding-task": Rule(None, kwargs=_coding_task, coding_task_only=True),
    "annotation:coding-invite": Rule(None, ("POST",), _coding_task, coding_task_only=True),
    "annotation:coding-status": Rule(None, ("POST",), _coding_task, coding_task_only=True),
    "annotation:coding-csv": Rule(None, kwargs=_coding_task, coding_task_only=True),
    "annotation:api-coding-task": Rule(None, kwargs=_coding_task, coding_task_only=True),
    "annotation:coding-item": Rule(None, ("GET", "POST"), _coding_task, coding_task_only=True),
    "annotation:coding-done": Rule(None, kwargs=_coding_task, coding_task_only=True),
}


def _walk(patterns, prefix: str = "", namespace: str | None = None) -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(
                pattern.url_patterns,
                prefix + str(pattern.pattern),
                pattern.namespace or namespace,
            )
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace else pattern.name
            yield name or "", prefix + str(pattern.pattern)


def researcher_routes() -> list[tuple[str, str]]:
    """Every named route outside the participant pages, the admin and static files."""
    return [
        (name, route)
        for name, route in _walk(get_resolver().url_patterns)
        if not route.startswith(("s/<", "admin/", "static/"))
    ]


def test_every_route_has_a_rule():
    unruled = [
        f"{name or '(unnamed)'} {route}"
        for name, route in researcher_routes()
        if name not in ROUTES and name not in PUBLIC and name not in ACCOUNT
    ]
    assert not unruled, "routes without a permission rule: " + ", ".join(unruled)


def _snapshot() -> str:
    """A digest of every row of the platform's own tables: equal means nothing was stored."""
    digest = hashlib.sha256()
    for app_label in ("studies", "annotation", "modellab", "auth", "authtoken"):
        for model in apps.get_app_config(app_label).get_models():
            # last_login changes on every sign-in; it is not something a request stored.
            rows = [
                {k: v for k, v in row.items() if k != "last_login"}
                for row in model.objects.order_by("pk").values()
            ]
            digest.update(json.dumps(rows, default=str, sort_keys=True).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, every_type_spec) -> Iterator[World]:
    """One study with a member of each role, built once; each test's writes are rolled back."""
    with django_db_blocker.unblock():
        world = _build_world(every_type_spec)
        yield world
        world.study.delete()
        world.model.delete()
        get_user_model().objects.filter(username__in=ROLES).delete()


def _build_world(base) -> World:
    from studies import services

    users = get_user_model().objects
    spec, rows = base
    study = services.import_study(spec=spec, stimuli=rows)
    people = {role: users.create_user(role, password=f"pw-{role}-123") for role in ROLES[:4]}
    for role in ("owner", "editor", "viewer"):
        StudyMembership.objects.create(study=study, user=people[role], role=role)
    model = LanguageModel.objects.create(
        name="shared-model",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        owner=people["owner"],
    )
    job = GenerationJob.objects.create(study=study, model=model, created_by=people["owner"])
    variant = ResponseVariant.objects.filter(query__study=study).first()
    AnalysisResult.objects.create(study=study, status="done", report={})
    return World(study=study, users=people, job=job, variant=variant, model=model)


def _client(world: World, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world.users[role])
    return client


def _call(client: Client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    return getattr(client, method.lower())(url, data={}, content_type="application/json")


def _expectation(rule: Rule, role: str, method: str) -> str:
    if role == "anonymous":
        return "login"
    if rule.coding_task_only:
        return "allowed" if role == "owner" else "not_found"
    if rule.model_owner_only == "all" or (rule.model_owner_only and method != "GET"):
        # The world's model belongs to the user called "owner"; it is shared, so others see it.
        return "allowed" if role == "owner" else "forbidden"
    needed = rule.needs(method)
    if needed is None:
        return "allowed"
    if role == "other":
        return "not_found"
    return "allowed" if needed in ROLE_ACTIONS[role] else "forbidden"


def _check(expected: str, response, url: str, method: str, role: str) -> str | None:
    status = response.status_code
    where = f"{method} {url} as {role}: got {status}"
    if status >= 500:
        return f"{where} (server error)"
    if expected == "login":
        if url.startswith("/api/"):
            return None if status in (401, 403) else f"{where}, expected 401/403"
        location = response.get("Location", "")
        return (
            None if status == 302 and "/accounts/login/" in location else f"{where}, expected login"
        )
    if expected == "not_found":
        return None if status == 404 else f"{where}, expected 404"
    if expected == "forbidden":
        return None if status == 403 else f"{where}, expected 403"
    return None if status not in (401, 403, 404, 405) else f"{where}, expected access"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route_answers_each_kind_of_user(name, world):
    rule = ROUTES[name]
    url = reverse(name, kwargs=rule.kwargs(world))
    failures = []
    for role in ROLES:
        for method in rule.methods:
            expected = _expectation(rule, role, method)
            client = _client(world, role)
            before = _snapshot() if expected != "allowed" and method != "GET" else None
            with transaction.atomic():
                sid = transaction.savepoint()
                response = _call(client, method, url)
                if before is not None and _snapshot() != before:
                    failures.append(f"{method} {url} as {role} stored something")
                transaction.savepoint_rollback(sid)
            problem = _check(expected, response, url, method, role)
            if problem:
                failures.append(problem)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    "model_admin",
    [
        pytest.param(ma, id=f"{m._meta.app_label}.{m._meta.model_name}")
        for m, ma in admin.site._registry.items()
    ],
)
def test_admin_is_for_superusers_only(model_admin, world):
    meta = model_admin.model._meta
    urls = [
        reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"),
        reverse(f"admin:{meta.app_label}_{meta.model_name}_add"),
    ]
    for role in ROLES:
        client = _client(world, role)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (
                f"GET {url} as {role}: {response.status_code}"
            )
    superuser = get_user_model().objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(superuser)
    assert client.get(urls[0]).status_code == 200
