"""Creating a study in the browser: from a starting design or from an uploaded spec file."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from studies import selectors
from studies.models import AuditEvent, Study, StudyMembership
from studies.spec import load_spec, spec_dict
from tests.builder.conftest import errors_of
from tests.conftest import SEED_SPEC


def _start(client: Client, design: str = "every_type", **fields: str):
    data = {"source": "form", "start-design": design}
    data.update({f"start-{name}": value for name, value in fields.items()})
    return client.post("/studies/new/", data)


def test_new_study_page_needs_login():
    response = Client().get("/studies/new/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_create_every_type_study_from_the_form(clients, users):
    response = _start(clients["owner"], title="Five types", slug="five-types")
    assert response.status_code == 302
    assert response["Location"] == "/studies/five-types/design/"
    study = Study.objects.get(slug="five-types")
    assert study.status == Study.Status.DRAFT
    assert study.title == "Five types"
    membership = StudyMembership.objects.get(study=study)
    assert (membership.user, membership.role) == (users["owner"], "owner")
    spec = spec_dict(selectors.study_spec(study))
    assert [(f["name"], f["assignment"]) for f in spec["factors"]] == [
        ("response_type", "within"),
        ("motivation", "between"),
    ]
    assert len(spec["factors"][0]["levels"]) == 5
    assert [q["key"] for q in spec["questions"]] == ["helpfulness"]
    # The creator finds it on the design page and in the list.
    page = clients["owner"].get(response["Location"]).content.decode()
    assert "Five types" in page and "response_type" in page


def test_create_from_the_seed_design_copies_it_without_stimuli(clients):
    response = _start(clients["owner"], "seed", title="Seed copy", slug="seed-copy")
    assert response.status_code == 302
    study = Study.objects.get(slug="seed-copy")
    expected = spec_dict(load_spec(SEED_SPEC.read_text(), str(SEED_SPEC)))
    expected.pop("stimuli", None)
    expected.update(slug="seed-copy", title="Seed copy")
    assert spec_dict(selectors.study_spec(study)) == expected
    assert study.queries.count() == 0


def test_slug_clash_is_shown_next_to_the_slug_and_changes_nothing(clients, new_study):
    other = new_study(slug="taken")
    before = Study.objects.count()
    response = _start(clients["other"], title="Mine", slug="taken")
    assert response.status_code == 400
    assert "exists already" in errors_of(response.content.decode(), "start-slug")
    assert Study.objects.count() == before
    other.refresh_from_db()
    assert other.title == "My study"


def test_an_invalid_slug_is_refused_next_to_the_slug(clients):
    response = _start(clients["owner"], title="T", slug="Not a slug")
    assert response.status_code == 400
    assert "lowercase slug" in errors_of(response.content.decode(), "start-slug")
    assert not Study.objects.exists()


def _upload(client: Client, text: str, name: str = "study.yaml", slug: str = ""):
    return client.post(
        "/studies/new/",
        {
            "source": "upload",
            "upload-spec_file": SimpleUploadedFile(name, text.encode()),
            "upload-slug": slug,
        },
    )


def test_create_from_an_uploaded_spec_file(clients, users):
    response = _upload(clients["owner"], SEED_SPEC.read_text())
    assert response.status_code == 302
    study = Study.objects.get(slug="refusal-perception")
    assert StudyMembership.objects.get(study=study).user == users["owner"]
    assert study.questions.filter(block__isnull=True, is_attention_check=False).count() == 10
    assert AuditEvent.objects.filter(study=study, actor=users["owner"]).exists()


def test_uploaded_json_with_another_slug(clients):
    import json

    data = spec_dict(load_spec(SEED_SPEC.read_text()))
    data.pop("stimuli")
    response = _upload(clients["owner"], json.dumps(data), name="s.json", slug="from-json")
    assert response.status_code == 302
    assert Study.objects.filter(slug="from-json").exists()


def test_a_bad_spec_file_lists_its_problems_with_line_numbers_and_creates_nothing(clients):
    text = (
        SEED_SPEC.read_text()
        .replace("points: 7", "points: 1")
        .replace("target_participants: 480", "target_participants: many")
    )
    response = _upload(clients["owner"], text)
    assert response.status_code == 400
    errors = errors_of(response.content.decode(), "upload-spec_file")
    assert "line 42" in errors and "target_participants" in errors
    assert "questions[0].scale.points" in errors and "line 87" in errors
    assert not Study.objects.exists()


def test_an_upload_never_overwrites_another_researchers_study(clients, new_study):
    theirs = new_study(slug="refusal-perception", title="Theirs")
    response = _upload(clients["other"], SEED_SPEC.read_text())
    assert response.status_code == 400
    assert "exists already" in errors_of(response.content.decode(), "upload-slug")
    theirs.refresh_from_db()
    assert theirs.title == "Theirs"
    assert (
        not StudyMembership.objects.filter(study=theirs, role="owner")
        .exclude(user__username="owner")
        .exists()
    )
