"""Researcher-facing generation: REST API, study page form and cancel, model registry page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies.models import GenerationJob, LanguageModel, StudyMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def researchers(make_study):
    users = get_user_model().objects
    owner = users.create_user("owner", password="x", is_staff=True)
    other = users.create_user("other", password="x", is_staff=True)
    participant_like = users.create_user("plain", password="x")
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    return study, owner, other, participant_like


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def openai_model_payload(url: str) -> dict:
    return {
        "name": "loopback",
        "backend": "openai",
        "queue": "default",
        "backend_settings": {"base_url": url, "model": "m", "max_retries": 0},
        "temperature": 0.2,
        "max_tokens": 32,
    }


def test_model_registry_api_validates_settings(researchers, chat_server):
    _study, owner, _other, plain = researchers
    api = client_for(owner)
    bad = {**openai_model_payload(chat_server.url), "backend_settings": {"model": "m"}}
    response = api.post("/api/models/", bad, content_type="application/json")
    assert response.status_code == 400
    assert "base_url" in str(response.json()["backend_settings"])
    assert not LanguageModel.objects.exists()
    response = api.post(
        "/api/models/", openai_model_payload(chat_server.url), content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["backend_settings"]["max_concurrency"] == 8  # defaults filled in
    assert api.get("/api/models/loopback/").json()["temperature"] == 0.2
    # Any signed-in researcher may list the models they can use (staff or not); nobody else.
    assert client_for(plain).get("/api/models/").status_code == 200
    assert Client().get("/api/models/").status_code in (401, 403)


def test_job_api_starts_reports_and_cancels(researchers, chat_server, eager_tasks):
    study, owner, other, _plain = researchers
    api = client_for(owner)
    api.post("/api/models/", openai_model_payload(chat_server.url), content_type="application/json")
    response = api.post(
        f"/api/studies/{study.slug}/generation-jobs/",
        {"model": "loopback", "kind": "strategy"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    detail = api.get(f"/api/generation-jobs/{job_id}/").json()
    assert detail["progress"]["total"] == 80
    assert api.post(f"/api/generation-jobs/{job_id}/cancel/").json()["progress"]["status"] in {
        "cancelled",
        "done",
    }
    # Another researcher sees neither the study's jobs nor the job.
    assert client_for(other).get(f"/api/generation-jobs/{job_id}/").status_code == 404
    assert client_for(other).get(f"/api/studies/{study.slug}/generation-jobs/").status_code == 404
    bad = api.post(
        f"/api/studies/{study.slug}/generation-jobs/",
        {"model": "nope"},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "model" in bad.json()


def test_study_page_starts_a_job_and_shows_progress(
    researchers,
    chat_server,
    eager_tasks,
    django_capture_on_commit_callbacks,
):
    study, owner, _other, _plain = researchers
    client_for(owner).post(
        "/api/models/", openai_model_payload(chat_server.url), content_type="application/json"
    )
    page = client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = page.post(
            f"/studies/{study.slug}/generate/",
            {
                "model": "loopback",
                "kind": "strategy",
                "mode": "per_type",
                "samples": "1",
                "instruction_redirection": "Suggest a library.",
            },
        )
    assert response.status_code == 302
    assert GenerationJob.objects.get().instructions["redirection"] == "Suggest a library."
    # Cleared fields fall back to the defaults rather than sending an empty instruction.
    assert GenerationJob.objects.get().instructions["direct_refusal"].startswith("Decline")
    html = page.get(response["Location"]).content.decode()
    assert "80 texts to write" in html
    assert "80/80 done" in html
    assert GenerationJob.objects.get().status == "done"


def test_study_page_rejects_bad_form_input(researchers):
    study, owner, _other, _plain = researchers
    response = client_for(owner).post(
        f"/studies/{study.slug}/generate/", {"model": "nope", "kind": "x", "samples": "0"}
    )
    assert response.status_code == 400
    assert not GenerationJob.objects.exists()


def test_cancel_button_cancels_the_job(researchers, chat_server):
    study, owner, _other, _plain = researchers
    client_for(owner).post(
        "/api/models/", openai_model_payload(chat_server.url), content_type="application/json"
    )
    from studies.generation import services

    job = services.start_generation_job(
        study=study, model=LanguageModel.objects.get(), dispatch=False
    )
    page = client_for(owner).get(f"/studies/{study.slug}/").content.decode()
    assert "Cancel" in page
    client_for(owner).post(f"/studies/{study.slug}/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_models_page_registers_a_model_and_reports_bad_json(researchers, settings):
    _study, owner, _other, _plain = researchers
    settings.MODEL_HOSTS_ALLOWED = "127.0.0.1,vllm"
    page = client_for(owner)
    response = page.post(
        "/models/",
        {
            "name": "m1",
            "backend": "openai",
            "queue": "default",
            "backend_settings": "{not json",
            "temperature": "0.5",
            "max_tokens": "100",
        },
    )
    assert response.status_code == 400 and "not valid JSON" in response.content.decode()
    response = page.post(
        "/models/",
        {
            "name": "m1",
            "backend": "openai",
            "queue": "gpu",
            "backend_settings": '{"base_url": "http://vllm:8001/v1", "model": "local"}',
            "temperature": "0.5",
            "max_tokens": "100",
        },
        follow=True,
    )
    assert "Model m1 saved" in response.content.decode()
    assert LanguageModel.objects.get(name="m1").queue == "gpu"


def test_study_page_lists_failed_texts_with_their_errors(researchers, chat_server, eager_tasks):
    from tests.generation.chat_server import Reply

    study, owner, _other, _plain = researchers
    study.queries.exclude(query_id="q01").delete()
    chat_server.handler = lambda request: Reply(status=400, json={"error": {"message": "nope"}})
    client_for(owner).post(
        "/api/models/", openai_model_payload(chat_server.url), content_type="application/json"
    )
    from studies.generation import services
    from studies.tasks import dispatch_generation_job

    job = services.start_generation_job(
        study=study, model=LanguageModel.objects.get(), dispatch=False
    )
    dispatch_generation_job.apply(args=[job.pk])
    html = client_for(owner).get(f"/studies/{study.slug}/").content.decode()
    assert "Failed texts" in html
    assert "q01 redirection: HTTP 400" in html
