"""Power planning of a study: validate a request, queue it, simulate on a worker, keep results."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

import yaml
from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from config.dispatch import send_on_commit
from studies import access, selectors
from studies.analysis.power import (
    PlannedDesign,
    PowerInputError,
    assumptions_from_dict,
    assumptions_from_report,
    power_settings,
    run_power,
)
from studies.analysis.power.simulation import synthetic_queries
from studies.design import QueryRef, required_response_types
from studies.domain import DEFAULT_INCLUSION
from studies.models import AnalysisResult, PowerAnalysis, Study
from studies.services import record_audit
from studies.spec import design_from_spec

logger = logging.getLogger(__name__)

OPEN = (PowerAnalysis.Status.QUEUED, PowerAnalysis.Status.RUNNING)
SOURCES = ("typed", "pilot")
# The row's progress is written at most this often: often enough for a progress bar, rarely
# enough that 5,000 fits do not become 5,000 UPDATEs.
PROGRESS_EVERY_S = 0.5
EXAMPLE_ASSUMPTIONS = (
    django_settings.BASE_DIR / "examples" / "refusal-perception" / "power.yaml"
    if hasattr(django_settings, "BASE_DIR")
    else None
)
DEFAULT_SETTINGS = {"participants": "80,160,...,960", "simulations": 500, "alpha": 0.05}


def example_assumptions() -> dict[str, Any]:
    """The example study's assumed values (examples/refusal-perception/power.yaml): the
    typed-in form's starting values. Empty if the file is not deployed."""
    try:
        data = yaml.safe_load(EXAMPLE_ASSUMPTIONS.read_text(encoding="utf-8"))
    except (AttributeError, OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def pilot_studies(user) -> QuerySet[Study]:
    """Studies the user may see that have a finished analysis to take assumptions from."""
    done = AnalysisResult.objects.filter(
        study=OuterRef("pk"), status=AnalysisResult.Status.DONE, inclusion=DEFAULT_INCLUSION
    )
    return access.studies_for(user).filter(Exists(done)).order_by("title")


def planned_design(study: Study, n_queries: int | None = None) -> PlannedDesign:
    """The study's design and queries (or ``n_queries`` stand-ins while it has none)."""
    spec = selectors.study_spec(study)
    queries = tuple(
        QueryRef(query_id, category)
        for query_id, category in study.queries.order_by("query_id").values_list(
            "query_id", "category"
        )
    )
    if not queries:
        if n_queries is None:
            raise PowerInputError(
                {"queries": "this study has no queries yet: say how many it will have"}
            )
        queries = synthetic_queries(n_queries)
    return PlannedDesign(design_from_spec(spec), queries, study.topic_choice, study.seed)


def _question_points(study: Study) -> dict[str, int]:
    spec = selectors.study_spec(study)
    return {q.key: q.scale.points for q in spec.questions}


def resolve_params(*, study: Study, params: dict, actor: AbstractBaseUser | None) -> dict:
    """Validate a request and resolve its source into stored, self-contained parameters.

    ``params``: source ("typed" | "pilot"), measure, pilot (a study slug, for "pilot"),
    assumptions (a dict, for "typed"), round (bool: round and clip to the scale),
    participants, simulations, alpha, seed, adjust, queries (for a study without queries).
    A pilot's estimates are copied in, so the result never changes with later pilot data.
    Raises PowerInputError naming each bad field.
    """
    problems: dict[str, str] = {}
    source = params.get("source", "typed")
    if source not in SOURCES:
        problems["source"] = f"must be one of {', '.join(SOURCES)}"
    points = _question_points(study)
    measure = params.get("measure")
    if measure not in points:
        problems["measure"] = f"choose one of this study's questions ({', '.join(points)})"
    settings = None
    try:
        settings = power_settings(
            params.get("participants", DEFAULT_SETTINGS["participants"]),
            params.get("simulations", DEFAULT_SETTINGS["simulations"]),
            params.get("alpha", DEFAULT_SETTINGS["alpha"]),
            params.get("seed", 0),
            params.get("adjust", "none"),
        )
    except PowerInputError as exc:
        problems.update(exc.problems)
    n_queries = params.get("queries")
    planned = None
    try:
        planned = planned_design(study, n_queries)
    except PowerInputError as exc:
        problems.update(exc.problems)
    if problems:
        raise PowerInputError(problems)
    scale = points[measure] if params.get("round", True) else None
    if source == "pilot":
        assumptions = _pilot_assumptions(params.get("pilot"), measure, scale, actor)
    else:
        typed = dict(params.get("assumptions") or {})
        typed.update(measure=measure, points=scale)
        assumptions = assumptions_from_dict(typed, source="typed in")
    try:
        shown = required_response_types(planned.design)
    except ValueError:
        shown = set()
    if assumptions.reference_level not in shown:
        raise PowerInputError(
            {
                "reference_level": f"this design never shows {assumptions.reference_level}, the "
                "level the effects are relative to"
            }
        )
    return {
        "source": source,
        "pilot": params.get("pilot") if source == "pilot" else None,
        "queries": n_queries,
        "assumptions": assumptions.to_dict(),
        "settings": {
            "participants": list(settings.participants),
            "simulations": settings.simulations,
            "alpha": settings.alpha,
            "seed": settings.seed,
            "adjust": settings.adjust,
        },
    }


def _pilot_assumptions(slug: Any, measure: str, points: int | None, actor):
    pilot = access.studies_for(actor).filter(slug=slug).first() if slug else None
    if pilot is None:
        # A study the user may not see looks exactly like one that does not exist.
        raise PowerInputError({"pilot": "choose a pilot study you have access to"})
    result = (
        AnalysisResult.objects.filter(
            study=pilot, status=AnalysisResult.Status.DONE, inclusion=DEFAULT_INCLUSION
        )
        .order_by("-finished_at")
        .first()
    )
    if result is None:
        raise PowerInputError({"pilot": f"{pilot.title} has no computed analysis yet"})
    n = (result.report.get("meta") or {}).get("n_participants")
    source = f"pilot study {pilot.slug}, analysis {result.pk} ({n} participants)"
    try:
        return assumptions_from_report(result.report, measure, points=points, source=source)
    except PowerInputError as exc:
        raise PowerInputError({"pilot": str(exc)}) from None


@transaction.atomic
def request_power_analysis(
    *, study: Study, params: dict, actor: AbstractBaseUser | None
) -> PowerAnalysis:
    """Queue a power analysis of the study's planned design; PowerInputError changes nothing.

    Raises QueueUnavailable (after the commit) when the broker is down; the row is then
    stored as failed with the reason.
    """
    stored = resolve_params(study=study, params=params, actor=actor)
    settings = stored["settings"]
    power = PowerAnalysis.objects.create(
        study=study,
        requested_by=actor,
        params=stored,
        progress_total=len(settings["participants"]) * settings["simulations"],
    )
    record_audit(
        study=study,
        action="power_analysis_requested",
        actor=actor,
        power_analysis=power.pk,
        source=stored["assumptions"]["source"],
        measure=stored["assumptions"]["measure"],
        participants=settings["participants"],
        simulations=settings["simulations"],
    )
    from studies.tasks import compute_power_analysis

    send_on_commit(
        lambda: compute_power_analysis.delay(power.pk),
        what="power analysis",
        on_failure=lambda reason: PowerAnalysis.objects.filter(pk=power.pk, status__in=OPEN).update(
            status=PowerAnalysis.Status.FAILED, error=reason, finished_at=timezone.now()
        ),
    )
    return power


def compute(power_id: int) -> PowerAnalysis:
    """Run one queued analysis; a failure is stored with its message, never raised."""
    updated = PowerAnalysis.objects.filter(pk=power_id, status__in=OPEN).update(
        status=PowerAnalysis.Status.RUNNING, started_at=timezone.now(), progress_done=0
    )
    power = PowerAnalysis.objects.select_related("study").get(pk=power_id)
    if not updated:
        return power
    rows = PowerAnalysis.objects.filter(pk=power_id)
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or done == total:
            last[0] = now
            rows.update(progress_done=done)

    params = power.params
    try:
        planned = planned_design(power.study, params.get("queries"))
        assumptions = assumptions_from_dict(params["assumptions"])
        settings = power_settings(**params["settings"])
        result = run_power(planned, assumptions, settings, progress)
    except PowerInputError as exc:
        # The study changed since the request (e.g. its design), or stored params are bad.
        power.status = PowerAnalysis.Status.FAILED
        power.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - stored for the researcher, logged for us
        logger.exception("power analysis %s failed", power_id)
        power.status = PowerAnalysis.Status.FAILED
        power.error = f"the simulation stopped with an internal error ({type(exc).__name__}); "
        power.error += "it has been logged"
    else:
        power.status = PowerAnalysis.Status.DONE
        power.result = result
        power.progress_done = power.progress_total
    power.finished_at = timezone.now()
    power.save(update_fields=["status", "error", "result", "progress_done", "finished_at"])
    return power


def fail_stuck(now: datetime | None = None) -> int:
    """Fail runs no worker took within JOB_QUEUED_LIMIT_MINUTES, or whose progress stopped
    moving for ANALYSIS_RUNNING_LIMIT_MINUTES since they started (their worker died and nothing
    redelivered the task), so their page stops waiting and says why."""
    now = now or timezone.now()
    queued = django_settings.JOB_QUEUED_LIMIT_MINUTES
    running = django_settings.ANALYSIS_RUNNING_LIMIT_MINUTES
    failed = PowerAnalysis.objects.filter(
        status=PowerAnalysis.Status.QUEUED, created_at__lt=now - timedelta(minutes=queued)
    ).update(
        status=PowerAnalysis.Status.FAILED,
        finished_at=now,
        error=f"not taken by a worker within {queued} minutes (is a worker running on the "
        "default queue?); nothing was simulated. Start it again.",
    )
    failed += PowerAnalysis.objects.filter(
        status=PowerAnalysis.Status.RUNNING, started_at__lt=now - timedelta(minutes=running)
    ).update(
        status=PowerAnalysis.Status.FAILED,
        finished_at=now,
        error=f"still running after {running} minutes: its worker stopped without finishing. "
        "Start it again.",
    )
    if failed:
        logger.warning("failed %d power analysis run(s) no worker finished", failed)
    return failed


def progress_of(power: PowerAnalysis) -> dict[str, Any]:
    """What a progress bar needs."""
    total = power.progress_total or 0
    done = min(power.progress_done, total) if total else 0
    return {
        "status": power.status,
        "done": done,
        "total": total,
        "percent": int(100 * done / total) if total else 0,
        "finished": power.status not in OPEN,
    }
