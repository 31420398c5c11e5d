"""Embedding models in the registry: registered from the shell, pages, API and admin, and
refused wherever a model must write text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from modellab.false_refusal import services as false_refusal_services
from modellab.models import PromptSet
from studies.generation import selectors, services
from studies.models import GenerationJob, LanguageModel, StudyMembership

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
EMBEDDING_MESSAGE = "'emb' is an embedding model; choose a chat model"


@pytest.fixture
def ada(db):
    return get_user_model().objects.create_user("ada", password="pw-ada-123", is_staff=True)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def register(name: str, kind: str, actor, **settings) -> LanguageModel:
    return services.register_model(
        name=name,
        kind=kind,
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:1/v1", "model": name, **settings},
        actor=actor,
    )


@pytest.fixture
def models(ada):
    """A chat model and an embedding model, both ada's."""
    return register("chatty", "chat", ada), register("emb", "embedding", ada, batch_size=16)


def test_register_an_embedding_model_from_the_shell(ada):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "register_model", "minilm", "--kind"]
        + ["embedding", "--backend", "openai", "--set", "base_url=http://127.0.0.1:8002/v1"]
        + ["--set", "model=all-MiniLM-L6-v2", "--set", "batch_size=32", "--as", "ada"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "minilm: openai (embedding) on queue default" in result.stdout
    model = LanguageModel.objects.get(name="minilm")
    assert model.kind == "embedding" and model.owner == ada
    assert model.backend_settings["batch_size"] == 32
    assert list(selectors.embedding_models_for(ada)) == [model]
    assert not selectors.chat_models_for(ada).exists()


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, "--as", "ada", stdout=out)
    return out.getvalue()


def test_register_command_errors_and_kind_kept_on_update(ada):
    with pytest.raises(CommandError, match="invalid choice: 'vector'"):
        run("register_model", "e", "--kind", "vector", "--backend", "openai")
    # batch_size is an embedding setting; a chat model over HTTP has none.
    base = ["--backend", "openai", "--set", "base_url=http://127.0.0.1:1/v1", "--set", "model=m"]
    with pytest.raises(CommandError, match=r"unknown setting\(s\) batch_size"):
        run("register_model", "c", *base, "--set", "batch_size=8")
    with pytest.raises(CommandError, match="batch_size must be between 1 and 2048"):
        run("register_model", "e", "--kind", "embedding", *base, "--set", "batch_size=0")
    with pytest.raises(CommandError, match="path is required"):
        run("register_model", "e", "--kind", "embedding", "--backend", "transformers")
    assert not LanguageModel.objects.exists()

    run("register_model", "e", "--kind", "embedding", *base)
    out = run("register_model", "e", *base, "--set", "timeout_s=5")  # no --kind: kept
    assert "e: openai (embedding)" in out
    assert LanguageModel.objects.get(name="e").kind == "embedding"
    assert "c: openai on queue" in run("register_model", "c", *base)
    assert LanguageModel.objects.get(name="c").kind == "chat"  # a new model's default


def test_api_accepts_filters_and_shows_kind(ada):
    api = client_for(ada)
    payload = {
        "name": "emb",
        "kind": "embedding",
        "backend": "openai",
        "backend_settings": {"base_url": "http://127.0.0.1:1/v1", "model": "e", "batch_size": 8},
    }
    response = api.post("/api/models/", payload, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "embedding"
    assert response.json()["backend_settings"]["batch_size"] == 8
    bad = {**payload, "name": "emb2", "kind": "vector"}
    response = api.post("/api/models/", bad, content_type="application/json")
    assert response.status_code == 400 and "kind" in response.json()
    chat = {**payload, "name": "chatty", "kind": "chat"}
    response = api.post("/api/models/", chat, content_type="application/json")
    assert response.status_code == 400
    assert "unknown setting(s) batch_size" in str(response.json()["backend_settings"])
    chat["backend_settings"] = {"base_url": "http://127.0.0.1:1/v1", "model": "c"}
    assert api.post("/api/models/", chat, content_type="application/json").status_code == 201
    names = [m["name"] for m in api.get("/api/models/?kind=embedding").json()["results"]]
    assert names == ["emb"]
    # A change that leaves kind out keeps it.
    put = {k: v for k, v in payload.items() if k != "kind"}
    assert api.put("/api/models/emb/", put, content_type="application/json").json()["kind"] == (
        "embedding"
    )


def test_registry_page_registers_and_shows_an_embedding_model(ada):
    page = client_for(ada)
    response = page.post(
        "/models/",
        {
            "name": "emb",
            "kind": "embedding",
            "backend": "transformers",
            "queue": "gpu",
            "backend_settings": '{"path": "/models/minilm", "batch_size": 64}',
            "temperature": "0.7",
            "max_tokens": "512",
        },
        follow=True,
    )
    html = response.content.decode()
    assert "Model emb saved" in html
    assert "<td>Embedding model</td>" in html
    assert LanguageModel.objects.get(name="emb").kind == "embedding"
    edit = page.get("/models/emb/edit/").content.decode()
    assert '<option value="embedding" selected>' in edit


def test_admin_lists_and_keeps_kind(ada):
    root = get_user_model().objects.create_superuser("root", password="pw-root-123")
    model = register("emb", "embedding", ada)
    admin = client_for(root)
    listing = admin.get("/admin/studies/languagemodel/").content.decode()
    assert "Embedding model" in listing
    form = {
        "backend": "openai",
        "backend_settings": '{"base_url": "http://127.0.0.1:2/v1", "model": "e"}',
        "queue": "default",
        "temperature": "0.7",
        "max_tokens": "512",
        "owner": ada.pk,
        "shared": "on",
    }
    response = admin.post(f"/admin/studies/languagemodel/{model.pk}/change/", form)
    assert response.status_code == 302
    model.refresh_from_db()
    assert model.kind == "embedding" and model.backend_settings["batch_size"] == 64


def test_generation_refuses_an_embedding_model(ada, models, make_study):
    chat, emb = models
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=ada, role="owner")
    with pytest.raises(ValueError, match=EMBEDDING_MESSAGE):
        services.start_generation_job(study=study, model=emb, actor=ada, dispatch=False)
    api = client_for(ada)
    response = api.post(
        f"/api/studies/{study.slug}/generation-jobs/", {"model": "emb"}, "application/json"
    )
    assert response.status_code == 400
    assert response.json()["model"] == [EMBEDDING_MESSAGE]
    with pytest.raises(CommandError, match=EMBEDDING_MESSAGE):
        run("generate_responses", study.slug, "--model", "emb")
    assert not GenerationJob.objects.exists()
    # The study page offers chat models only.
    html = api.get(f"/studies/{study.slug}/").content.decode()
    assert 'value="chatty"' in html and 'value="emb"' not in html


def test_false_refusal_refuses_an_embedding_model(ada, models):
    chat, emb = models
    prompt_set = PromptSet.objects.create(
        name="ph", owner=ada, source_name="ph.csv", sha256="0" * 64
    )
    with pytest.raises(ValueError, match=EMBEDDING_MESSAGE):
        false_refusal_services.start_false_refusal_run(
            prompt_set=prompt_set, models=[chat, emb], classifier="string_match", actor=ada
        )
    with pytest.raises(ValueError, match=EMBEDDING_MESSAGE):
        false_refusal_services.start_false_refusal_run(
            prompt_set=prompt_set,
            models=[chat],
            classifier="llm_judge",
            judge_model=emb,
            actor=ada,
        )
    api = client_for(ada)
    response = api.post(
        "/api/lab/false-refusal/runs/",
        {"prompt_set": prompt_set.pk, "models": ["emb"]},
        "application/json",
    )
    assert response.status_code == 400 and response.json()["detail"] == EMBEDDING_MESSAGE
    html = api.get("/lab/false-refusal/").content.decode()
    # Models to test and the judge are offered by name (chat models only).
    assert html.count("chatty") == 2 and not re.search(r"\bemb\b", html)


def test_model_lab_judges_and_scorers_refuse_an_embedding_model(ada, models, make_study):
    from modellab.behaviour import services as behaviour_services
    from modellab.behaviour.views import StartRunForm
    from modellab.rewards import services as reward_services

    chat, emb = models
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=ada, role="owner")
    with pytest.raises(ValueError, match=EMBEDDING_MESSAGE):
        behaviour_services.start_classification_run(
            study=study,
            classifier="llm_judge",
            scheme="three_way",
            models=[chat],
            judge_model=emb,
            actor=ada,
        )
    for scorer in ("llm_judge", "reward_model"):
        with pytest.raises(ValueError, match=EMBEDDING_MESSAGE):
            reward_services.start_reward_run(study=study, model=emb, scorer=scorer, actor=ada)
    # The rewards page offers chat models only; so does the behaviour form's judge picker
    # (its page shows the form only once the study has natural responses).
    html = client_for(ada).get(f"/studies/{study.slug}/lab/rewards/").content.decode()
    assert "chatty" in html and not re.search(r"\bemb\b", html)
    form = StartRunForm(study=study, user=ada)
    assert list(form.fields["judge_model"].queryset) == [chat]
