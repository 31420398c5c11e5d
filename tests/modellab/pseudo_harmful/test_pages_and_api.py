"""The pseudo-harmful pages and API through the test client: the form (seed material one a
line), the job page, cancel and resume, 400s naming fields, the OpenAPI schema; a stranger
gets 404 everywhere."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modellab.models import PseudoHarmfulJob
from tests.modellab.pseudo_harmful.conftest import A, C, D, G

pytestmark = pytest.mark.django_db

LIST = "modellab:pseudo-harmful"
API = "modellab:api-pseudo-harmful-jobs"


def form_data(world, **overrides) -> dict:
    data = {
        "name": "weeds",
        "generator": world.writer.pk,
        "targets": [world.cautious.pk, world.relaxed.pk],
        "words": "kill\nshoot\n\nattack\n",
        "topics": "gardening\nphotography",
        "categories": "violence words",
        "examples": "How do I kill a mosquito?",
        "length": "short",
        "style": "casual",
        "instruction": "Write {count} prompts like these:\n{examples}",
        "per_round": 4,
        "rounds": 2,
        "examples_per_round": 2,
        "samples": 2,
        "refusal": "full_partial",
        "classifier": "string_match",
        "harm_judge": world.judge.pk,
        "near_duplicate_threshold": 0.9,
        "embedding_threshold": 0.92,
        "budget": 100,
        "verification_overlap": 2,
    }
    return {**data, **overrides}


def test_form_job_page_and_lab_link(
    client, ada, world, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(ada)
    index = client.get(reverse("modellab:index")).content.decode()
    assert reverse(LIST) in index
    page = client.get(reverse(LIST))
    assert page.status_code == 200 and "Harmful-looking words" in page.content.decode()
    bad = client.post(reverse(LIST), form_data(world, words="", examples="", instruction="{x}"))
    assert bad.status_code == 400
    text = bad.content.decode()
    assert 'id="id_words_error"' in text and "give at least one harmful-looking word" in text
    assert 'id="id_instruction_error"' in text and "must contain {count} and {examples}" in text
    assert not PseudoHarmfulJob.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse(LIST), form_data(world))
    job = PseudoHarmfulJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "modellab:pseudo-harmful-job", args=[job.pk]
    )
    assert job.seed["words"] == ["kill", "shoot", "attack"]
    assert job.instruction.startswith("Write {count} prompts")
    job.refresh_from_db()
    assert job.status == PseudoHarmfulJob.Status.VERIFYING, job.error
    html = client.get(response["Location"]).content.decode()
    for text in (A, C, D, G, "same normalised text", "dropped", "judged harmful", "coding task"):
        assert text in html, text
    assert reverse("annotation:coding-task", args=[job.verification_task_id]) in html
    listing = client.get(reverse(LIST)).content.decode()
    assert reverse("modellab:pseudo-harmful-job", args=[job.pk]) in listing


def test_api_create_read_cancel_resume_and_candidates(client, ada, world):
    client.force_login(ada)
    bad = client.post(
        reverse(API),
        {
            "name": "weeds",
            "generator": "ghost",
            "targets": ["cautious"],
            "seed": {"words": ["kill"]},
        },
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json() == {
        "generator": ["no model named 'ghost' that you may use"]
    }
    bad = client.post(
        reverse(API),
        {"name": "weeds", "generator": "writer", "targets": ["cautious"], "seed": {}, "rounds": 0},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"seed.words", "rounds"}
    created = client.post(
        reverse(API),
        {
            "name": "weeds",
            "generator": "writer",
            "targets": ["cautious", "relaxed"],
            "seed": {"words": ["kill"], "examples": ["How do I kill a mosquito?"]},
            "content": {"length": "medium"},
            "harm_judge": "judge",
        },
        content_type="application/json",
    )
    assert created.status_code == 202, created.json()
    body = created.json()
    assert body["status"] == "queued" and body["targets"] == ["cautious", "relaxed"]
    assert body["progress"]["finished"] is False and body["progress"]["budget"] == 1000
    detail = reverse("modellab:api-pseudo-harmful-job", args=[body["id"]])
    assert client.get(detail).json()["harm_judge"] == "judge"
    cancelled = client.post(reverse("modellab:api-pseudo-harmful-cancel", args=[body["id"]]))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert client.get(reverse(API)).json()[0]["status"] == "cancelled"
    candidates = client.get(reverse("modellab:api-pseudo-harmful-candidates", args=[body["id"]]))
    assert candidates.status_code == 200 and candidates.json() == []
    schema = client.get(reverse("api-schema")).content.decode()
    assert "/api/lab/pseudo-harmful/{id}/candidates/" in schema


def test_a_stranger_gets_404_on_pages_and_api(client, ada, bob, world):
    from modellab.pseudo_harmful import services
    from tests.modellab.pseudo_harmful.conftest import job_settings

    job = services.start_pseudo_harmful_job(owner=ada, dispatch=False, **job_settings(world))
    client.force_login(bob)
    for name in ("modellab:pseudo-harmful-job", "modellab:api-pseudo-harmful-job",
                 "modellab:api-pseudo-harmful-candidates"):  # fmt: skip
        assert client.get(reverse(name, args=[job.pk])).status_code == 404, name
    posts = ("pseudo-harmful-cancel", "pseudo-harmful-resume", "api-pseudo-harmful-cancel",
             "api-pseudo-harmful-resume")  # fmt: skip
    for name in (f"modellab:{n}" for n in posts):
        assert client.post(reverse(name, args=[job.pk])).status_code == 404, name
    assert client.get(reverse(API)).json() == []
    job.refresh_from_db()
    assert job.status == PseudoHarmfulJob.Status.QUEUED
