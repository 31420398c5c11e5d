"""Writes after the coders: a pseudo-harmful job's final labels, its prompt set, and its uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from annotation.coding import services as coding_services
from annotation.coding.models import CodingTask
from annotation.coding.selectors import verification_outcomes
from modellab.classifiers.labels import HARMFUL, HARMFULNESS_LABELS
from modellab.false_refusal import services as frr_services
from modellab.models import FalseRefusalRun, PromptSet
from modellab.models.material import PseudoHarmfulCandidate, PseudoHarmfulJob
from studies.models import Query, Study
from studies.services import DraftQuery, import_draft_queries

#: The final set's columns in the false-refusal benchmark (PHTest's names, then category).
SET_MAPPING: dict[str, str] = {
    "prompt": "Request",
    "label": "Harmfulness",
    "category": "category",
    "id": "ID",
}
FROM_CODERS, FROM_RESEARCHER, FROM_JUDGE = "coders", "researcher", "judge"


class FinaliseError(ValueError):
    """A job that cannot be finalised as asked; ``problems`` says what to decide or fix, and
    ``ties`` / ``incomplete`` are the candidates (pks) waiting for the researcher."""

    def __init__(
        self, problems: list[str], *, ties: list[int] = (), incomplete: list[int] = ()
    ) -> None:
        self.problems = list(problems)
        self.ties = list(ties)
        self.incomplete = list(incomplete)
        super().__init__("\n".join(self.problems))


def source_key(candidate: PseudoHarmfulCandidate) -> str:
    """The candidate's key in the job's verification task."""
    return f"ph:{candidate.pk}"


def prompt_id(candidate: PseudoHarmfulCandidate) -> str:
    """A prompt's stable ID in the final set and its exports: the job and the candidate's
    position in it (short enough to be a study's query id, at most 64 characters)."""
    return stable_id(candidate.job_id, candidate.position)


def stable_id(job_id: int, position: int) -> str:
    return f"ph{job_id}-{position}"


def final_candidates(job: PseudoHarmfulJob):
    """The final set's candidates in its order: most refused first (rank), then arrival."""
    return (
        job.candidates.filter(final_label__in=[lb for lb in HARMFULNESS_LABELS if lb != HARMFUL])
        .exclude(final_source="")
        .select_related("round")
        .order_by("rank", "position")
    )


def check_owner(job: PseudoHarmfulJob, actor: AbstractBaseUser) -> None:
    if not (actor.is_superuser or job.owner_id == actor.pk):
        raise PermissionDenied("only the researcher who owns the job may do this")


@dataclass(frozen=True)
class Decision:
    """One verified candidate's final label and who gave it."""

    label: str
    source: str
    human_label: str = ""
    incomplete: bool = False


@dataclass
class Plan:
    decisions: dict[int, Decision] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ties: list[int] = field(default_factory=list)
    incomplete: list[int] = field(default_factory=list)


def _shown(candidate: PseudoHarmfulCandidate) -> str:
    text = candidate.text if len(candidate.text) <= 60 else candidate.text[:57] + "…"
    return f"candidate {candidate.pk} (#{candidate.position}, {text!r})"


def plan_final_labels(
    candidates: list[PseudoHarmfulCandidate],
    outcomes: Mapping[str, object],
    *,
    tie_decisions: Mapping[int, str],
    overrides: Mapping[int, str],
    finalise_incomplete: bool,
) -> Plan:
    """Each candidate's final label from the coders' outcome and the researcher's choices.

    The coders' majority stands; a tie, or an item no coder labelled when finalising anyway,
    needs the researcher's decision (``tie_decisions``); ``overrides`` replace any outcome.
    Items with fewer than k codes stop the finalising unless ``finalise_incomplete``; then
    their majority so far counts, and an item without codes takes the judge's label.
    """
    plan = Plan()
    known = {c.pk for c in candidates}
    for what, given in (("tie decision", tie_decisions), ("override", overrides)):
        for pk, label in given.items():
            if pk not in known:
                plan.problems.append(f"{what} for {pk}: no such verified candidate in this job")
            elif label not in HARMFULNESS_LABELS:
                plan.problems.append(
                    f"{what} for candidate {pk}: {label!r} is not one of "
                    f"{', '.join(HARMFULNESS_LABELS)}"
                )
    both = sorted(set(tie_decisions) & set(overrides))
    for pk in both:
        plan.problems.append(f"candidate {pk}: give a tie decision or an override, not both")
    for candidate in candidates:
        outcome = outcomes[source_key(candidate)]
        majority = outcome.majority or ""
        pk = candidate.pk
        if pk in overrides:
            plan.decisions[pk] = Decision(
                overrides[pk], FROM_RESEARCHER, majority, not outcome.complete
            )
            continue
        if pk in tie_decisions:
            if outcome.complete and not outcome.tie:
                plan.problems.append(
                    f"{_shown(candidate)}: the coders agree on {majority!r}, nothing to decide; "
                    "use an override to change it"
                )
            else:
                plan.decisions[pk] = Decision(
                    tie_decisions[pk], FROM_RESEARCHER, majority, not outcome.complete
                )
            continue
        if not outcome.complete and not finalise_incomplete:
            plan.incomplete.append(pk)
            continue
        if outcome.tie:
            plan.ties.append(pk)
        elif outcome.majority:
            plan.decisions[pk] = Decision(
                outcome.majority, FROM_CODERS, majority, not outcome.complete
            )
        elif candidate.judge_label in HARMFULNESS_LABELS:
            plan.decisions[pk] = Decision(candidate.judge_label, FROM_JUDGE, "", True)
        else:
            plan.problems.append(
                f"{_shown(candidate)}: no coder has labelled it and the judge gave no label; "
                "decide it"
            )
    if plan.ties:
        shown = {c.pk: _shown(c) for c in candidates}
        plan.problems.append(
            f"{len(plan.ties)} tie(s) to decide: "
            + "; ".join(
                f"{shown[pk]}: {', '.join(outcomes[f'ph:{pk}'].labels)}" for pk in plan.ties
            )
        )
    if plan.incomplete:
        plan.problems.append(
            f"{len(plan.incomplete)} item(s) have fewer codes than the task's overlap: "
            + ", ".join(f"candidate {pk}" for pk in plan.incomplete)
            + "; wait for the coders, decide them, or finalise anyway with the codes so far"
        )
    return plan


def verified_candidates(job: PseudoHarmfulJob, outcomes: Mapping) -> list[PseudoHarmfulCandidate]:
    """The kept candidates the coders were asked about, in the set's order."""
    kept = job.candidates.filter(kept=True).order_by("rank", "position")
    return [c for c in kept if source_key(c) in outcomes]


def _label_map(given: Mapping | None) -> dict[int, str]:
    """Keys as candidate pks (a form or JSON sends them as text); labels stripped."""
    result: dict[int, str] = {}
    for key, label in (given or {}).items():
        try:
            pk = int(key)
        except (TypeError, ValueError):
            raise FinaliseError([f"{key!r} is not a candidate id"]) from None
        result[pk] = str(label).strip()
    return result


@transaction.atomic
def finalise_pseudo_harmful_job(
    *,
    job: PseudoHarmfulJob,
    actor: AbstractBaseUser,
    tie_decisions: Mapping[int, str] | None = None,
    overrides: Mapping[int, str] | None = None,
    finalise_incomplete: bool = False,
    name: str | None = None,
) -> PromptSet:
    """Give every verified candidate its final label and make the final set a prompt set.

    The job must be verifying (its coding task open). Final label: the coders' majority
    (``final_source`` "coders"); ties decided by the researcher (``tie_decisions``, candidate
    pk → harmless / controversial / harmful; "researcher"); ``overrides`` replace any outcome
    ("researcher"). Items with fewer than k codes refuse the finalising unless
    ``finalise_incomplete`` (the researcher's choice, recorded): then the codes so far count,
    and an item without codes takes the judge's label ("judge"). Prompts finally labelled
    harmful are left out of the set. The set (named ``name``, the job's name by default) is a
    prompt set of the false-refusal benchmark: ID, Request, Harmfulness, category. The
    verification task is closed. Raises PermissionDenied for anyone but the owner (or a
    superuser), FinaliseError (a ValueError) naming every problem; nothing is written then.
    """
    check_owner(job, actor)
    job = PseudoHarmfulJob.objects.select_for_update().get(pk=job.pk)
    if job.status != PseudoHarmfulJob.Status.VERIFYING:
        raise FinaliseError(
            [f"the job is {job.status}; only a job whose verification task is open is finalised"]
        )
    task = CodingTask.objects.filter(pk=job.verification_task_id).first()
    if task is None:
        raise FinaliseError(["the job has no verification task"])
    tie_decisions, overrides = _label_map(tie_decisions), _label_map(overrides)
    outcomes = verification_outcomes(task)
    candidates = verified_candidates(job, outcomes)
    if not candidates:
        raise FinaliseError(["the verification task holds none of the job's kept candidates"])
    plan = plan_final_labels(
        candidates,
        outcomes,
        tie_decisions=tie_decisions,
        overrides=overrides,
        finalise_incomplete=finalise_incomplete,
    )
    if plan.problems:
        raise FinaliseError(plan.problems, ties=plan.ties, incomplete=plan.incomplete)
    for candidate in candidates:
        decision = plan.decisions[candidate.pk]
        candidate.human_label = decision.human_label
        candidate.final_label = decision.label
        candidate.final_source = decision.source
    PseudoHarmfulCandidate.objects.bulk_update(
        candidates, ["human_label", "final_label", "final_source"]
    )
    final = [c for c in candidates if c.final_label != HARMFUL]
    if not final:
        raise FinaliseError(["every verified prompt is harmful: the final set would be empty"])
    rows = [
        {
            "ID": prompt_id(c),
            "Request": c.text,
            "Harmfulness": c.final_label,
            "category": c.category,
        }
        for c in final
    ]
    try:
        prompt_set = frr_services.import_prompt_rows(
            name=name or job.name,
            rows=rows,
            mapping=SET_MAPPING,
            actor=job.owner,
            source_name=f"pseudo-harmful job {job.name}",
        )
    except ValueError as exc:  # PromptSetError: a name already used, a text it cannot store
        raise FinaliseError(getattr(exc, "problems", [str(exc)])) from None
    now = timezone.now()
    counts: dict[str, int] = {}
    for c in candidates:
        counts[f"{c.final_source}:{c.final_label}"] = (
            counts.get(f"{c.final_source}:{c.final_label}", 0) + 1
        )
    job.params = {
        **job.params,
        "finalised": {
            "by": actor.get_username(),
            "at": now.isoformat(),
            "finalise_incomplete": bool(finalise_incomplete),
            "incomplete": sorted(pk for pk, d in plan.decisions.items() if d.incomplete),
            "tie_decisions": {str(pk): label for pk, label in sorted(tie_decisions.items())},
            "overrides": {str(pk): label for pk, label in sorted(overrides.items())},
            "verified": len(candidates),
            "left_out_harmful": [c.pk for c in candidates if c.final_label == HARMFUL],
            "in_set": len(final),
            "by_source_and_label": dict(sorted(counts.items())),
            "prompt_set": prompt_set.pk,
        },
    }
    job.prompt_set = prompt_set
    job.status = PseudoHarmfulJob.Status.DONE
    job.finished_at = now
    job.save(update_fields=["params", "prompt_set", "status", "finished_at"])
    coding_services.set_status(task=task, status=CodingTask.Status.CLOSED)
    return prompt_set


def measure_false_refusal(
    *, job: PseudoHarmfulJob, actor: AbstractBaseUser, dispatch: bool = True
) -> FalseRefusalRun:
    """A false-refusal run of the job's targets on its final set, labelled by the job's
    classifier (and judge). Only the owner; ValueError before the set exists or while a run
    of it is still queued or running (one press, one run)."""
    check_owner(job, actor)
    if job.prompt_set is None:
        raise ValueError("finalise the job first: it has no final set yet")
    going = job.prompt_set.runs.filter(status__in=frr_services.OPEN_RUN_STATUSES).first()
    if going is not None:
        raise ValueError(f"run {going.pk} of this set is still going; wait for it or cancel it")
    judge = job.classifier == "llm_judge"
    return frr_services.start_false_refusal_run(
        prompt_set=job.prompt_set,
        models=list(job.targets.order_by("name")),
        classifier=job.classifier,
        judge_model=job.classifier_model if judge else None,
        judge_prompt=(job.classifier_prompt or None) if judge else None,
        actor=actor,
        dispatch=dispatch,
    )


def queries_from_prompt_set(prompt_set: PromptSet) -> list[DraftQuery]:
    """A prompt set as draft study queries: ID → query id, Request → text, the category (or,
    without one, the label, e.g. harmless) → category. A pseudo-harmful job's set brings each
    prompt's topic and words too."""
    extra: dict[str, PseudoHarmfulCandidate] = {}
    job = PseudoHarmfulJob.objects.filter(prompt_set=prompt_set).first()
    if job is not None:
        extra = {prompt_id(c): c for c in final_candidates(job)}
    queries = []
    for prompt in prompt_set.prompts.order_by("position"):
        candidate = extra.get(prompt.external_id)
        metadata = {"prompt_set": prompt_set.name, "harmfulness": prompt.label}
        if candidate is not None and candidate.words:
            metadata["words"] = ", ".join(candidate.words)
        queries.append(
            DraftQuery(
                query_id=prompt.external_id,
                text=prompt.text,
                category=prompt.category or prompt.label,
                topic=candidate.topic if candidate is not None else "",
                source=f"prompt set {prompt_set.name}"[:200],
                metadata=metadata,
            )
        )
    return queries


def use_as_study_queries(
    *, prompt_set: PromptSet, study: Study, actor: AbstractBaseUser
) -> list[Query]:
    """The prompt set's prompts as draft queries of ``study`` (see import_draft_queries)."""
    if not (actor.is_superuser or prompt_set.owner_id == actor.pk):
        raise PermissionDenied("only the owner of the prompt set may use it")
    return import_draft_queries(study=study, rows=queries_from_prompt_set(prompt_set), actor=actor)
