"""The model registry's safety: nobody can send another researcher's API key elsewhere."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from studies.generation import services
from studies.generation.backends import ChatRequest
from studies.generation.backends.openai_compat import OpenAICompatibleBackend
from studies.generation.hosts import host_allowed
from studies.models import AuditEvent, GenerationJob, LanguageModel
from tests.api.conftest import api_for
from tests.generation.chat_server import ChatServer

pytestmark = pytest.mark.django_db


def payload(base_url: str = "http://127.0.0.1:8001/v1", **changes) -> dict:
    body = {
        "name": "team-gpt",
        "backend": "openai",
        "queue": "default",
        "backend_settings": {"base_url": base_url, "model": "m", "api_key_env": "ADA_KEY"},
        "temperature": 0.2,
        "max_tokens": 32,
    }
    body.update(changes)
    return body


@pytest.fixture
def adas_model(people) -> LanguageModel:
    response = api_for(people.owner).post("/api/models/", payload(), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["owner"] == "ada"
    return LanguageModel.objects.get(name="team-gpt")


def test_the_attack_another_researcher_repoints_a_shared_model(people, adas_model):
    """Issue 7: bob PUTs ada's model to his host, keeping api_key_env; nothing may change."""
    before = dict(LanguageModel.objects.values().get(pk=adas_model.pk))
    attack = payload("http://attacker.example.com/v1")
    response = api_for(people.other).put("/api/models/team-gpt/", attack, format="json")
    assert response.status_code == 403
    # Not through a "create" with the same name either.
    response = api_for(people.other).post("/api/models/", attack, format="json")
    assert response.status_code == 400
    assert dict(LanguageModel.objects.values().get(pk=adas_model.pk)) == before
    # Nor through the page.
    page = Client()
    page.force_login(people.other)
    assert page.get("/models/team-gpt/edit/").status_code == 403
    form = {**attack, "backend_settings": str(attack["backend_settings"]).replace("'", '"')}
    assert page.post("/models/team-gpt/edit/", form).status_code == 403
    assert dict(LanguageModel.objects.values().get(pk=adas_model.pk)) == before


def test_a_private_model_is_invisible_to_others(people, adas_model):
    response = api_for(people.owner).put(
        "/api/models/team-gpt/", payload(shared=False), format="json"
    )
    assert response.status_code == 200 and response.json()["shared"] is False
    bob = api_for(people.other)
    assert bob.get("/api/models/team-gpt/").status_code == 404
    assert bob.put("/api/models/team-gpt/", payload(), format="json").status_code == 404
    assert [m["name"] for m in bob.get("/api/models/").json()["results"]] == []
    assert [m["name"] for m in api_for(people.root).get("/api/models/").json()["results"]] == [
        "team-gpt"
    ]


def test_the_owner_changes_parameters_but_not_where_requests_go(people, adas_model):
    ada = api_for(people.owner)
    response = ada.put("/api/models/team-gpt/", payload(temperature=0.9), format="json")
    assert response.status_code == 200 and response.json()["temperature"] == 0.9
    for changed in (
        payload("http://localhost:9000/v1"),
        payload(backend_settings={"base_url": "http://127.0.0.1:8001/v1", "model": "m"}),
        payload(
            backend_settings={
                "base_url": "http://127.0.0.1:8001/v1",
                "model": "m",
                "api_key_env": "OTHER_KEY",
            }
        ),
    ):
        response = ada.put("/api/models/team-gpt/", changed, format="json")
        assert response.status_code == 403, changed
        assert "superusers" in response.json()["detail"]
    adas_model.refresh_from_db()
    assert adas_model.backend_settings["base_url"] == "http://127.0.0.1:8001/v1"
    assert adas_model.backend_settings["api_key_env"] == "ADA_KEY"
    assert not AuditEvent.objects.filter(model=adas_model).exists()


def test_a_superuser_changes_the_endpoint_and_it_is_audited(people, adas_model):
    response = api_for(people.root).put(
        "/api/models/team-gpt/", payload("http://localhost:9000/v1"), format="json"
    )
    assert response.status_code == 200
    event = AuditEvent.objects.get(model=adas_model)
    assert event.study is None and event.actor == people.root
    assert event.action == "model_endpoint_changed"
    assert event.detail["old"]["base_url"] == "http://127.0.0.1:8001/v1"
    assert event.detail["new"] == {"base_url": "http://localhost:9000/v1", "api_key_env": "ADA_KEY"}
    adas_model.refresh_from_db()
    assert adas_model.owner == people.owner  # a superuser's change does not take the model


def test_a_host_not_allowed_is_refused_when_saved(people, settings):
    ada = api_for(people.owner)
    response = ada.post("/api/models/", payload("https://api.openai.com/v1"), format="json")
    assert response.status_code == 400
    assert "MODEL_HOSTS_ALLOWED" in str(response.json()["backend_settings"])
    assert not LanguageModel.objects.exists()
    # A superuser is bound by the list too: it is the administrator's decision, in settings.
    response = api_for(people.root).post(
        "/api/models/", payload("https://api.openai.com/v1"), format="json"
    )
    assert response.status_code == 400
    settings.MODEL_HOSTS_ALLOWED = "127.0.0.1,*.openai.com"
    response = ada.post("/api/models/", payload("https://api.openai.com/v1"), format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8001/v1", True),
        ("http://localhost/v1", True),
        ("http://[::1]:8000/v1", True),
        ("http://api.example.org/v1", True),
        ("http://a.b.example.org/v1", True),
        ("http://example.org/v1", False),
        ("http://evil-example.org/v1", False),
        ("http://example.org.evil.com/v1", False),
        ("http://127.0.0.2/v1", False),
    ],
)
def test_host_patterns(settings, url, allowed):
    settings.MODEL_HOSTS_ALLOWED = "localhost,127.0.0.1,[::1],*.example.org"
    assert host_allowed(url) is allowed


def test_job_start_refuses_a_model_whose_host_is_no_longer_allowed(
    people, draft, adas_model, settings
):
    settings.MODEL_HOSTS_ALLOWED = "localhost"  # the administrator narrowed the list
    response = api_for(people.owner).post(
        f"/api/studies/{draft.slug}/generation-jobs/", {"model": "team-gpt"}, format="json"
    )
    assert response.status_code == 400
    assert "MODEL_HOSTS_ALLOWED" in response.json()["detail"]
    assert not GenerationJob.objects.exists()


def test_the_backend_never_sends_a_request_to_a_host_not_allowed(settings, monkeypatch):
    monkeypatch.setenv("ADA_KEY", "sk-secret")
    with ChatServer() as server:
        backend = OpenAICompatibleBackend(base_url=server.url, model="m", api_key_env="ADA_KEY")
        request = ChatRequest(messages=({"role": "user", "content": "hi"},), max_tokens=5)
        settings.MODEL_HOSTS_ALLOWED = "localhost"
        refused = backend.generate([request])
        assert not refused[0].ok and "not allowed" in refused[0].error
        assert not refused[0].retryable
        assert server.chat_requests == []
        settings.MODEL_HOSTS_ALLOWED = "127.0.0.1"
        assert backend.generate([request])[0].ok
        assert server.chat_requests[0].headers["authorization"] == "Bearer sk-secret"


def test_a_job_needs_a_model_you_may_use(people, draft, adas_model, make_study):
    ada = api_for(people.owner)
    ada.put("/api/models/team-gpt/", payload(shared=False), format="json")
    adas_model.refresh_from_db()
    # eve edits ada's study, but ada's private model is ada's alone.
    response = api_for(people.editor).post(
        f"/api/studies/{draft.slug}/generation-jobs/", {"model": "team-gpt"}, format="json"
    )
    assert response.status_code == 400 and "model" in response.json()
    with pytest.raises(PermissionDenied):
        services.start_generation_job(
            study=draft, model=adas_model, actor=people.editor, dispatch=False
        )
    assert not GenerationJob.objects.exists()
    job = services.start_generation_job(
        study=draft, model=adas_model, actor=people.owner, dispatch=False
    )
    assert job.model == adas_model


def test_models_page_shows_owner_and_sharing_and_edits_only_your_own(people, adas_model):
    LanguageModel.objects.create(
        name="bobs-model",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:1/v1", "model": "m"},
        owner=people.other,
        shared=True,
    )
    page = Client()
    page.force_login(people.owner)
    html = page.get("/models/").content.decode()
    assert "team-gpt" in html and "bobs-model" in html
    assert "/models/team-gpt/edit/" in html and "/models/bobs-model/edit/" not in html
    response = page.post(
        "/models/team-gpt/edit/",
        {
            "backend": "openai",
            "queue": "default",
            "backend_settings": '{"base_url": "http://127.0.0.1:8001/v1", "model": "m", '
            '"api_key_env": "ADA_KEY"}',
            "temperature": "1.1",
            "max_tokens": "64",
        },
    )
    assert response.status_code == 302
    adas_model.refresh_from_db()
    assert adas_model.temperature == 1.1 and adas_model.shared is False  # unticked box
    response = page.post(
        "/models/team-gpt/edit/",
        {
            "backend": "openai",
            "queue": "default",
            "backend_settings": '{"base_url": "http://evil.example.com/v1", "model": "m"}',
            "temperature": "1.1",
            "max_tokens": "64",
        },
    )
    assert response.status_code == 400
    assert "not allowed" in response.content.decode()
