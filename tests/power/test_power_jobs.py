"""Power planning as a job: the service, a real Celery worker, the page and the API."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies import power_jobs
from studies.analysis.power import PowerInputError
from studies.models import AnalysisResult, AuditEvent, PowerAnalysis, StudyMembership

TYPED = {
    "source": "typed",
    "measure": "helpfulness",
    "participants": "16,32",
    "simulations": 10,
    "seed": 4,
    "assumptions": {
        "intercept": 4.5,
        "response_type": {"direct_refusal": -1.0, "partial_compliance": -0.3},
        "motivation": {"malicious": -0.1},
        "sd_participant": 0.7,
        "sd_query": 0.3,
        "sd_residual": 1.1,
    },
}


def _user(name: str, study=None, role: str | None = None):
    user = get_user_model().objects.create_user(name, password=f"pw-{name}-123")
    if study is not None and role:
        StudyMembership.objects.create(study=study, user=user, role=role)
    return user


@pytest.fixture
def draft(make_study):
    return make_study(launch=False)


@pytest.mark.django_db
def test_request_stores_resolved_params_and_an_audit_row(draft):
    editor = _user("eddie", draft, "editor")
    power = power_jobs.request_power_analysis(study=draft, params=TYPED, actor=editor)
    assert power.status == "queued" and power.progress_total == 2 * 10
    stored = power.params
    assert stored["settings"]["participants"] == [16, 32]
    assert stored["assumptions"]["points"] == 7  # the question's scale: ratings are rounded
    assert stored["assumptions"]["reference_level"] == "full_compliance"
    event = AuditEvent.objects.get(study=draft, action="power_analysis_requested")
    assert event.actor == editor and event.detail["power_analysis"] == power.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"measure": "nonsense"}, "measure"),
        ({"participants": "1"}, "participants"),
        ({"simulations": 2}, "simulations"),
        ({"source": "pilot", "pilot": "no-such-study"}, "pilot"),
        ({"assumptions": {**TYPED["assumptions"], "sd_residual": 0}}, "sd_residual"),
    ],
)
def test_bad_requests_change_nothing(draft, change, field):
    editor = _user("eddie", draft, "editor")
    with pytest.raises(PowerInputError) as info:
        power_jobs.request_power_analysis(study=draft, params={**TYPED, **change}, actor=editor)
    assert field in info.value.problems
    assert not PowerAnalysis.objects.exists()
    assert not AuditEvent.objects.filter(action="power_analysis_requested").exists()


@pytest.mark.django_db
def test_compute_on_a_queued_row_stores_the_result_and_progress(draft):
    power = power_jobs.request_power_analysis(study=draft, params=TYPED, actor=None)
    done = power_jobs.compute(power.pk)
    assert done.status == "done" and done.progress_done == done.progress_total == 20
    rows = done.result["rows"]
    assert {r["participants"] for r in rows} == {16, 32}
    assert {r["term"] for r in rows} >= {"response_type[partial_compliance]"}
    # Computing again does nothing: a redelivered message finds the row finished.
    assert power_jobs.compute(power.pk).result == done.result


@pytest.mark.django_db
def test_a_failure_is_stored_not_raised(draft):
    power = power_jobs.request_power_analysis(study=draft, params=TYPED, actor=None)
    # The study's design changed after the request: it can no longer be planned this way.
    PowerAnalysis.objects.filter(pk=power.pk).update(
        params={**power.params, "settings": {**power.params["settings"], "alpha": 2}}
    )
    failed = power_jobs.compute(power.pk)
    assert failed.status == "failed" and "alpha" in failed.error
    assert failed.finished_at is not None


@pytest.mark.django_db
def test_the_beat_sweep_fails_runs_no_worker_finished(draft):
    from datetime import timedelta

    from django.utils import timezone

    from studies import tasks

    waiting = power_jobs.request_power_analysis(study=draft, params=TYPED, actor=None)
    lost = power_jobs.request_power_analysis(study=draft, params=TYPED, actor=None)
    fresh = power_jobs.request_power_analysis(study=draft, params=TYPED, actor=None)
    long_ago = timezone.now() - timedelta(hours=5)
    PowerAnalysis.objects.filter(pk=waiting.pk).update(created_at=long_ago)
    PowerAnalysis.objects.filter(pk=lost.pk).update(status="running", started_at=long_ago)
    tasks.refresh_live_analyses()  # what beat runs every minute
    states = dict(PowerAnalysis.objects.values_list("pk", "status"))
    assert states == {waiting.pk: "failed", lost.pk: "failed", fresh.pk: "queued"}
    assert "not taken by a worker" in PowerAnalysis.objects.get(pk=waiting.pk).error
    assert "still running after" in PowerAnalysis.objects.get(pk=lost.pk).error


@pytest.mark.django_db
def test_pilot_source_copies_the_pilots_estimates(draft, make_study):
    pilot = make_study(launch=False, slug="pilot-study", title="Pilot")
    owner = _user("olga", draft, "owner")
    StudyMembership.objects.create(study=pilot, user=owner, role="viewer")
    report = {
        "meta": {"reference_level": "full_compliance", "n_participants": 40},
        "mixed_models": [
            {
                "measure": "helpfulness",
                "variance_components": {"participant": 0.36, "query": 0.04, "residual": 1.0},
                "coefficients": [
                    {"term": "Intercept", "estimate": 5.2},
                    {"term": "response_type[redirection]", "estimate": -0.9},
                ],
            }
        ],
    }
    AnalysisResult.objects.create(study=pilot, status="done", report=report)
    params = {**TYPED, "source": "pilot", "pilot": "pilot-study"}
    params.pop("assumptions")
    power = power_jobs.request_power_analysis(study=draft, params=params, actor=owner)
    a = power.params["assumptions"]
    assert a["intercept"] == 5.2 and a["response_type"] == {"redirection": -0.9}
    assert a["sd_participant"] == pytest.approx(0.6)
    assert "pilot study pilot-study" in a["source"]
    # A pilot the user may not see is "no such pilot", not a leak of its numbers.
    stranger = _user("sam", draft, "editor")
    with pytest.raises(PowerInputError) as info:
        power_jobs.request_power_analysis(study=draft, params=params, actor=stranger)
    assert "pilot" in info.value.problems


@pytest.mark.django_db(transaction=True)
def test_the_task_runs_on_a_real_worker_with_progress(make_study, tmp_path):
    from tests.workers import CeleryWorker, purge_queues, wait_for_progress

    purge_queues("default")
    study = make_study(launch=False)
    log = tmp_path / "worker.log"
    worker = CeleryWorker("default", log_path=log).start()
    params = {**TYPED, "participants": "16,32,48", "simulations": 40}
    power = power_jobs.request_power_analysis(study=study, params=params, actor=None)
    rows = PowerAnalysis.objects.filter(pk=power.pk)
    seen = set()

    def progress():
        row = rows.values("status", "progress_done").get()
        seen.add(row["progress_done"])
        return row["status"], row["progress_done"], log.stat().st_size if log.exists() else 0

    try:
        finished = lambda: rows.get().status in ("done", "failed")  # noqa: E731
        wait_for_progress(finished, progress=progress, worker=worker, log=log)
    finally:
        worker.stop()
    power.refresh_from_db()
    assert power.status == "done", power.error
    assert power.progress_done == power.progress_total == 120
    assert len(power.result["rows"]) == 3 * 8


# --- the page ---------------------------------------------------------------------------------


def _form_data(**changes) -> dict:
    data = {
        "measure": "helpfulness",
        "source": "typed",
        "intercept": "4.5",
        "effect_direct_refusal": "-1",
        "effect_explanation_based": "-0.8",
        "effect_redirection": "-0.5",
        "effect_partial_compliance": "-0.3",
        "motivation_malicious": "-0.1",
        "interaction_direct_refusal": "0",
        "interaction_explanation_based": "0",
        "interaction_redirection": "0",
        "interaction_partial_compliance": "0",
        "sd_participant": "0.7",
        "sd_query": "0.3",
        "sd_residual": "1.1",
        "round": "on",
        "participants": "16,32",
        "simulations": "10",
        "alpha": "0.05",
        "seed": "1",
        "adjust": "none",
    }
    data.update(changes)
    return data


@pytest.mark.django_db
def test_page_form_runs_and_shows_progress_then_the_table(draft):
    editor = _user("eddie", draft, "editor")
    client = Client()
    client.force_login(editor)
    page = client.get(f"/studies/{draft.slug}/power/")
    assert page.status_code == 200
    html = page.content.decode()
    # Typed values start from the example study's assumptions file.
    assert 'name="effect_partial_compliance"' in html and 'value="-0.2"' in html
    assert "power/" in client.get(f"/studies/{draft.slug}/").content.decode()

    response = client.post(f"/studies/{draft.slug}/power/", _form_data())
    assert response.status_code == 302
    power = PowerAnalysis.objects.get(study=draft)
    running = client.get(response["Location"]).content.decode()
    assert "<progress" in running and "0 of 20 model fits" in running
    assert 'http-equiv="refresh"' in running  # inside <noscript>: works without JavaScript

    power_jobs.compute(power.pk)
    done = client.get(response["Location"]).content.decode()
    assert 'id="power-table"' in done and "Partial compliance" in done
    assert 'id="power-data"' in done and "<progress" not in done
    assert re.search(r"<td>[01]\.\d{3} ± 0\.\d{3}</td>", done)
    assert "cdn" not in re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", done).lower()
    csv = client.get(f"/studies/{draft.slug}/power/{power.pk}/power.csv")
    assert csv.status_code == 200 and csv.content.decode().startswith("participants,term,")


@pytest.mark.django_db
def test_page_shows_errors_next_to_fields_and_stores_nothing(draft):
    editor = _user("eddie", draft, "editor")
    client = Client()
    client.force_login(editor)
    response = client.post(
        f"/studies/{draft.slug}/power/",
        _form_data(participants="80,x", sd_residual="0", simulations="3"),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_participants_error"' in html and 'id="id_simulations_error"' in html
    # Each message is tied to its input for screen readers.
    assert 'aria-describedby="id_participants_helptext id_participants_error"' in html
    assert not PowerAnalysis.objects.exists()
    # The service's own check (a residual SD of 0) lands next to its field too.
    response = client.post(f"/studies/{draft.slug}/power/", _form_data(sd_residual="0"))
    assert response.status_code == 400
    assert 'id="id_sd_residual_error"' in response.content.decode()
    assert not PowerAnalysis.objects.exists()


@pytest.mark.django_db
def test_viewers_see_runs_but_cannot_start_one(draft):
    viewer = _user("vera", draft, "viewer")
    power = power_jobs.request_power_analysis(study=draft, params=TYPED, actor=None)
    power_jobs.compute(power.pk)
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/studies/{draft.slug}/power/{power.pk}/").content.decode()
    assert 'id="power-table"' in page and '<form method="post" action="/studies/' not in page
    assert client.post(f"/studies/{draft.slug}/power/", _form_data()).status_code == 403
    assert PowerAnalysis.objects.count() == 1


# --- the API ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_create_and_get(draft):
    editor = _user("eddie", draft, "editor")
    client = Client()
    client.force_login(editor)
    url = f"/api/studies/{draft.slug}/power-analyses/"
    created = client.post(url, TYPED, content_type="application/json")
    assert created.status_code == 202, created.content
    body = created.json()
    assert body["progress"] == {
        "status": "queued",
        "done": 0,
        "total": 20,
        "percent": 0,
        "finished": False,
    }
    power_jobs.compute(body["id"])
    got = client.get(f"{url}{body['id']}/").json()
    assert got["status"] == "done" and got["progress"]["finished"]
    assert len(got["result"]["rows"]) == 16
    bad = client.post(url, {**TYPED, "measure": "nonsense"}, content_type="application/json")
    assert bad.status_code == 400 and "measure" in bad.json()
    assert PowerAnalysis.objects.count() == 1
